-- Number of items each grader graded in each study on each UTC day (day = created_at divided
-- by 86,400,000 ms), kept by a trigger, so that a grader's "graded today" reads one row
-- instead of every grade of the day. A correction (a grade that supersedes another) grades
-- no new item and is not counted. Grades are never updated or deleted.
CREATE TABLE grader_day_counts (
    project_id BIGINT NOT NULL REFERENCES projects (id),
    grader_id BIGINT NOT NULL REFERENCES users (id),
    day BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (project_id, grader_id, day)
);

INSERT INTO grader_day_counts (project_id, grader_id, day, n)
SELECT i.project_id, g.grader_id, g.created_at / 86400000, COUNT(*)
FROM grades g JOIN items i ON i.id = g.item_id
WHERE g.supersedes IS NULL
GROUP BY i.project_id, g.grader_id, g.created_at / 86400000;

CREATE TRIGGER grades_count_day AFTER INSERT ON grades WHEN NEW.supersedes IS NULL
BEGIN
    INSERT INTO grader_day_counts (project_id, grader_id, day, n)
    SELECT i.project_id, NEW.grader_id, NEW.created_at / 86400000, 1 FROM items i WHERE i.id = NEW.item_id
    ON CONFLICT (project_id, grader_id, day) DO UPDATE SET n = n + 1;
END;
