DROP TRIGGER items_count_delete;
DROP TRIGGER items_count_update;
DROP TRIGGER items_count_insert;
DROP TABLE item_status_counts;
