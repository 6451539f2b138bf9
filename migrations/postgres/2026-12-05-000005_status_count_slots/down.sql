DROP TRIGGER items_count_update ON items;
DROP TRIGGER items_count_insert_delete ON items;
DROP FUNCTION items_count_status();
DROP TABLE item_status_counts;

CREATE TABLE item_status_counts (
    project_id BIGINT NOT NULL REFERENCES projects (id),
    status TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (project_id, status)
);

INSERT INTO item_status_counts (project_id, status, n)
SELECT project_id, status, COUNT(*) FROM items GROUP BY project_id, status;

CREATE FUNCTION items_count_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' OR TG_OP = 'DELETE' THEN
        UPDATE item_status_counts SET n = n - 1 WHERE project_id = OLD.project_id AND status = OLD.status;
    END IF;
    IF TG_OP = 'UPDATE' OR TG_OP = 'INSERT' THEN
        INSERT INTO item_status_counts (project_id, status, n) VALUES (NEW.project_id, NEW.status, 1)
        ON CONFLICT (project_id, status) DO UPDATE SET n = item_status_counts.n + 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER items_count_insert_delete AFTER INSERT OR DELETE ON items
FOR EACH ROW EXECUTE FUNCTION items_count_status();

CREATE TRIGGER items_count_update AFTER UPDATE OF status ON items
FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION items_count_status();
