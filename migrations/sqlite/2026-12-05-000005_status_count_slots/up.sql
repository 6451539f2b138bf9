-- Status counts split into 32 slots per study and status (slot = item id modulo 32), the
-- same layout as on PostgreSQL, where one row per study and status made every status change
-- wait for the commit of the one before it. Readers add up the slots.
DROP TRIGGER items_count_delete;
DROP TRIGGER items_count_update;
DROP TRIGGER items_count_insert;
DROP TABLE item_status_counts;

CREATE TABLE item_status_counts (
    project_id BIGINT NOT NULL REFERENCES projects (id),
    status TEXT NOT NULL,
    slot INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (project_id, status, slot)
);

INSERT INTO item_status_counts (project_id, status, slot, n)
SELECT project_id, status, id % 32, COUNT(*) FROM items GROUP BY project_id, status, id % 32;

CREATE TRIGGER items_count_insert AFTER INSERT ON items
BEGIN
    INSERT INTO item_status_counts (project_id, status, slot, n) VALUES (NEW.project_id, NEW.status, NEW.id % 32, 1)
    ON CONFLICT (project_id, status, slot) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER items_count_update AFTER UPDATE OF status ON items WHEN OLD.status <> NEW.status
BEGIN
    UPDATE item_status_counts SET n = n - 1
    WHERE project_id = OLD.project_id AND status = OLD.status AND slot = OLD.id % 32;
    INSERT INTO item_status_counts (project_id, status, slot, n) VALUES (NEW.project_id, NEW.status, NEW.id % 32, 1)
    ON CONFLICT (project_id, status, slot) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER items_count_delete AFTER DELETE ON items
BEGIN
    UPDATE item_status_counts SET n = n - 1
    WHERE project_id = OLD.project_id AND status = OLD.status AND slot = OLD.id % 32;
END;
