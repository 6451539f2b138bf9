-- Active learning on SQLite: a study's pre-annotation switch and pseudolabel threshold,
-- the settings, stage and last progress time of each model run, and each prediction's priority, so
-- the ranked queue of a run is one indexed query.
-- At most one run per study is running: the partial unique index makes a second
-- start fail even when two server processes start runs at the same moment.

ALTER TABLE projects ADD COLUMN preannotation BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN pseudolabel_threshold DOUBLE PRECISION NOT NULL DEFAULT 0.9;

ALTER TABLE model_runs ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
ALTER TABLE model_runs ADD COLUMN stage TEXT NOT NULL DEFAULT '';
ALTER TABLE model_runs ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX model_runs_project ON model_runs (project_id, id);
CREATE UNIQUE INDEX model_runs_one_active ON model_runs (project_id) WHERE status = 'running';

ALTER TABLE predictions ADD COLUMN priority DOUBLE PRECISION NOT NULL DEFAULT 0;
CREATE INDEX predictions_run_priority ON predictions (run_id, priority DESC, item_id);
CREATE INDEX predictions_item ON predictions (item_id, run_id);
