-- Quorum's data model on SQLite. Times are Unix epoch milliseconds (UTC) in both backends,
-- JSON documents are TEXT, so the same Rust types map to both.
-- Grades, resolutions and audit events are append-only: a correction is a new row whose
-- `supersedes` names the old one, and triggers reject UPDATE and DELETE on those tables.

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    is_admin BOOLEAN NOT NULL DEFAULT 0,
    disabled BOOLEAN NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE guidelines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    version TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    fields TEXT NOT NULL,
    source_toml TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (key, version)
);

CREATE TABLE projects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    guideline_id BIGINT NOT NULL REFERENCES guidelines (id),
    overlap INTEGER NOT NULL CHECK (overlap >= 1),
    policy TEXT NOT NULL,
    policy_params TEXT NOT NULL,
    blinding BOOLEAN NOT NULL DEFAULT 1,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE memberships (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id BIGINT NOT NULL REFERENCES projects (id),
    user_id BIGINT NOT NULL REFERENCES users (id),
    role TEXT NOT NULL CHECK (role IN ('grader', 'senior', 'lead')),
    pseudonym TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (project_id, user_id),
    UNIQUE (project_id, pseudonym)
);

CREATE TABLE items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id BIGINT NOT NULL REFERENCES projects (id),
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    stored_path TEXT NOT NULL,
    byte_size BIGINT NOT NULL,
    format TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    status TEXT NOT NULL,
    round INTEGER NOT NULL DEFAULT 0,
    extra_grades INTEGER NOT NULL DEFAULT 0,
    priority DOUBLE PRECISION NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    UNIQUE (project_id, name)
);
CREATE INDEX items_project_status ON items (project_id, status, priority DESC, created_at, id);

CREATE TABLE assignments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id BIGINT NOT NULL REFERENCES items (id),
    grader_id BIGINT NOT NULL REFERENCES users (id),
    round INTEGER NOT NULL,
    leased_until BIGINT NOT NULL,
    completed_at BIGINT,
    created_at BIGINT NOT NULL,
    UNIQUE (item_id, grader_id, round)
);
CREATE INDEX assignments_grader ON assignments (grader_id, completed_at);
CREATE INDEX assignments_item_round ON assignments (item_id, round);

CREATE TABLE grades (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id BIGINT NOT NULL REFERENCES items (id),
    grader_id BIGINT NOT NULL REFERENCES users (id),
    round INTEGER NOT NULL,
    guideline_id BIGINT NOT NULL REFERENCES guidelines (id),
    answers TEXT NOT NULL,
    comment TEXT NOT NULL,
    time_spent_ms BIGINT NOT NULL,
    source TEXT NOT NULL,
    supersedes BIGINT UNIQUE REFERENCES grades (id),
    created_at BIGINT NOT NULL
);
CREATE INDEX grades_item ON grades (item_id, round);
CREATE INDEX grades_grader ON grades (grader_id, created_at);

CREATE TABLE resolutions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id BIGINT NOT NULL REFERENCES items (id),
    answers TEXT NOT NULL,
    method TEXT NOT NULL CHECK (method IN ('unanimous', 'majority', 'arbitration', 'adjudication', 'model', 'imported')),
    decided_by BIGINT REFERENCES users (id),
    rounds_used INTEGER NOT NULL,
    reason TEXT NOT NULL,
    supersedes BIGINT UNIQUE REFERENCES resolutions (id),
    created_at BIGINT NOT NULL
);
CREATE INDEX resolutions_item ON resolutions (item_id);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id BIGINT NOT NULL REFERENCES items (id),
    round INTEGER NOT NULL,
    author_id BIGINT NOT NULL REFERENCES users (id),
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX messages_item ON messages (item_id, round);

CREATE TABLE model_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id BIGINT NOT NULL REFERENCES projects (id),
    field TEXT NOT NULL,
    strategy TEXT NOT NULL,
    model_kind TEXT NOT NULL,
    status TEXT NOT NULL,
    progress DOUBLE PRECISION NOT NULL DEFAULT 0,
    metrics TEXT NOT NULL,
    error TEXT,
    started_by BIGINT REFERENCES users (id),
    started_at BIGINT NOT NULL,
    finished_at BIGINT
);

CREATE TABLE predictions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id BIGINT NOT NULL REFERENCES model_runs (id),
    item_id BIGINT NOT NULL REFERENCES items (id),
    probabilities TEXT NOT NULL,
    scores TEXT NOT NULL,
    embedding BLOB,
    proposal TEXT,
    confidence DOUBLE PRECISION,
    accepted_resolution_id BIGINT REFERENCES resolutions (id),
    UNIQUE (run_id, item_id)
);

CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id BIGINT REFERENCES projects (id),
    actor_id BIGINT REFERENCES users (id),
    action TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id BIGINT,
    details TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX audit_events_project ON audit_events (project_id, created_at);

CREATE TRIGGER grades_append_only_update BEFORE UPDATE ON grades
BEGIN SELECT RAISE(ABORT, 'grades are append-only: insert a correction that supersedes the row'); END;
CREATE TRIGGER grades_append_only_delete BEFORE DELETE ON grades
BEGIN SELECT RAISE(ABORT, 'grades are append-only and cannot be deleted'); END;
CREATE TRIGGER resolutions_append_only_update BEFORE UPDATE ON resolutions
BEGIN SELECT RAISE(ABORT, 'resolutions are append-only: insert a resolution that supersedes the row'); END;
CREATE TRIGGER resolutions_append_only_delete BEFORE DELETE ON resolutions
BEGIN SELECT RAISE(ABORT, 'resolutions are append-only and cannot be deleted'); END;
CREATE TRIGGER audit_events_append_only_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER audit_events_append_only_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only and cannot be deleted'); END;
