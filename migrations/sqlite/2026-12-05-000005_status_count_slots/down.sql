DROP TRIGGER items_count_delete;
DROP TRIGGER items_count_update;
DROP TRIGGER items_count_insert;
DROP TABLE item_status_counts;

CREATE TABLE item_status_counts (
    project_id BIGINT NOT NULL REFERENCES projects (id),
    status TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (project_id, status)
);

INSERT INTO item_status_counts (project_id, status, n)
SELECT project_id, status, COUNT(*) FROM items GROUP BY project_id, status;

CREATE TRIGGER items_count_insert AFTER INSERT ON items
BEGIN
    INSERT INTO item_status_counts (project_id, status, n) VALUES (NEW.project_id, NEW.status, 1)
    ON CONFLICT (project_id, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER items_count_update AFTER UPDATE OF status ON items WHEN OLD.status <> NEW.status
BEGIN
    UPDATE item_status_counts SET n = n - 1 WHERE project_id = OLD.project_id AND status = OLD.status;
    INSERT INTO item_status_counts (project_id, status, n) VALUES (NEW.project_id, NEW.status, 1)
    ON CONFLICT (project_id, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER items_count_delete AFTER DELETE ON items
BEGIN
    UPDATE item_status_counts SET n = n - 1 WHERE project_id = OLD.project_id AND status = OLD.status;
END;
