-- Places held in each item's current round, kept in `items.places_held` by triggers, so that
-- choosing a grader's next item walks one index instead of counting the assignments of every
-- item in grading.
--
-- An assignment holds its place when it is completed, or when it is a lease (leased_until
-- > 0; places in adjudication rounds have 0) that has not been marked expired. The grading
-- code marks each lease whose time ran out as expired before it chooses an item, so at that
-- moment the column equals the number of completed and unexpired assignments.
ALTER TABLE assignments ADD COLUMN expired BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE items ADD COLUMN places_held INTEGER NOT NULL DEFAULT 0;

UPDATE assignments SET expired = TRUE
WHERE completed_at IS NULL AND leased_until > 0
  AND leased_until <= (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT;

UPDATE items SET places_held = (
    SELECT COUNT(*) FROM assignments a
    WHERE a.item_id = items.id AND a.round = items.round
      AND (a.completed_at IS NOT NULL OR (a.leased_until > 0 AND NOT a.expired))
);

-- Unexpired leases, for finding the ones whose time ran out.
CREATE INDEX assignments_open_leases ON assignments (leased_until) WHERE completed_at IS NULL AND NOT expired;

-- Candidates in the order they are offered; the trailing columns answer the filters without
-- reading the row.
DROP INDEX items_project_status;
CREATE INDEX items_project_status ON items
    (project_id, status, priority DESC, places_held DESC, created_at, id, extra_grades, round);

CREATE FUNCTION assignments_places() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE')
       AND (OLD.completed_at IS NOT NULL OR (OLD.leased_until > 0 AND NOT OLD.expired)) THEN
        UPDATE items SET places_held = places_held - 1 WHERE id = OLD.item_id AND round = OLD.round;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT')
       AND (NEW.completed_at IS NOT NULL OR (NEW.leased_until > 0 AND NOT NEW.expired)) THEN
        UPDATE items SET places_held = places_held + 1 WHERE id = NEW.item_id AND round = NEW.round;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER assignments_places_insert_delete AFTER INSERT OR DELETE ON assignments
FOR EACH ROW EXECUTE FUNCTION assignments_places();

CREATE TRIGGER assignments_places_update AFTER UPDATE ON assignments
FOR EACH ROW WHEN (OLD.item_id <> NEW.item_id OR OLD.round <> NEW.round
    OR (OLD.completed_at IS NOT NULL OR (OLD.leased_until > 0 AND NOT OLD.expired))
       <> (NEW.completed_at IS NOT NULL OR (NEW.leased_until > 0 AND NOT NEW.expired)))
EXECUTE FUNCTION assignments_places();

-- A new round starts with the places already made for it (adjudication makes them first).
CREATE FUNCTION items_places_round() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE items SET places_held = (
        SELECT COUNT(*) FROM assignments a
        WHERE a.item_id = NEW.id AND a.round = NEW.round
          AND (a.completed_at IS NOT NULL OR (a.leased_until > 0 AND NOT a.expired))
    ) WHERE id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER items_places_round AFTER UPDATE OF round ON items
FOR EACH ROW WHEN (OLD.round IS DISTINCT FROM NEW.round) EXECUTE FUNCTION items_places_round();
