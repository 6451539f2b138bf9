DROP TRIGGER items_places_round;
DROP TRIGGER assignments_places_update;
DROP TRIGGER assignments_places_delete;
DROP TRIGGER assignments_places_insert;
DROP INDEX items_project_status;
CREATE INDEX items_project_status ON items (project_id, status, priority DESC, created_at, id);
DROP INDEX assignments_open_leases;
ALTER TABLE items DROP COLUMN places_held;
ALTER TABLE assignments DROP COLUMN expired;
