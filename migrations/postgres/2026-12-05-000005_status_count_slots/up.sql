-- Status counts split into 32 slots per study and status (slot = item id modulo 32). Every
-- change of an item's status updates its count row, and on PostgreSQL that row stays locked
-- until the transaction commits. With one row per study and status, every lease that starts
-- an item's grading and every grade that completes one waited for the commit of the one
-- before it. Readers add up the slots.
DROP TRIGGER items_count_update ON items;
DROP TRIGGER items_count_insert_delete ON items;
DROP FUNCTION items_count_status();
DROP TABLE item_status_counts;

CREATE TABLE item_status_counts (
    project_id BIGINT NOT NULL REFERENCES projects (id),
    status TEXT NOT NULL,
    slot INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (project_id, status, slot)
);

INSERT INTO item_status_counts (project_id, status, slot, n)
SELECT project_id, status, (id % 32)::INTEGER, COUNT(*) FROM items GROUP BY project_id, status, id % 32;

CREATE FUNCTION items_count_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' OR TG_OP = 'DELETE' THEN
        UPDATE item_status_counts SET n = n - 1
        WHERE project_id = OLD.project_id AND status = OLD.status AND slot = OLD.id % 32;
    END IF;
    IF TG_OP = 'UPDATE' OR TG_OP = 'INSERT' THEN
        INSERT INTO item_status_counts (project_id, status, slot, n) VALUES (NEW.project_id, NEW.status, NEW.id % 32, 1)
        ON CONFLICT (project_id, status, slot) DO UPDATE SET n = item_status_counts.n + 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER items_count_insert_delete AFTER INSERT OR DELETE ON items
FOR EACH ROW EXECUTE FUNCTION items_count_status();

CREATE TRIGGER items_count_update AFTER UPDATE OF status ON items
FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION items_count_status();
