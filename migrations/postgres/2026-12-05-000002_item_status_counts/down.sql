DROP TRIGGER items_count_update ON items;
DROP TRIGGER items_count_insert_delete ON items;
DROP FUNCTION items_count_status();
DROP TABLE item_status_counts;
