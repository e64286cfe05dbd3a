-- 0005_ops.sql - the operations ledger of sy-grievance: what each message did (tasks,
-- task_logs), every exchange with the legacy GRM (sync_history, grm_sync, grm_watermark) and
-- the integration's latest state (system_monitoring), for `syctl grm status|history`.

-- One row per handled message (task_id = the message id): how far it got, so a redelivery
-- repeats only what is missing. stored: its PostgreSQL effects are committed, the GRM copy or
-- the announcement is still due; done: nothing is left to do; rejected: refused for its data.
CREATE TABLE tasks (
    task_id     text PRIMARY KEY CHECK (length(task_id) BETWEEN 1 AND 128),
    task_name   text NOT NULL,
    status      text NOT NULL CHECK (status IN ('stored', 'done', 'rejected')),
    retry_count integer NOT NULL DEFAULT 0,
    result      jsonb,
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_pending ON tasks (updated_at) WHERE status = 'stored';

CREATE TABLE task_logs (
    id      bigserial PRIMARY KEY,
    task_id text NOT NULL,
    at      timestamptz NOT NULL DEFAULT now(),
    level   text NOT NULL CHECK (level IN ('info', 'warn', 'error')),
    message text NOT NULL
);
CREATE INDEX task_logs_task ON task_logs (task_id, at);

-- Every push to and pull from the GRM, one row per grievance and outcome. A conflict (both
-- sides changed the status since the last sync) names both values and the winner in detail.
CREATE TABLE sync_history (
    id           bigserial PRIMARY KEY,
    direction    text NOT NULL CHECK (direction IN ('push', 'pull')),
    grievance_id text,
    outcome      text NOT NULL CHECK (outcome IN ('ok', 'failed', 'conflict', 'skipped')),
    pg_status    text,
    grm_status   text,
    detail       text,
    message_id   text,
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sync_history_at ON sync_history (at DESC, id DESC);
CREATE INDEX sync_history_outcome ON sync_history (outcome, at DESC);

-- Per grievance: whether PostgreSQL holds a change the GRM has not received (pending), and
-- what was last exchanged. A pull that finds the GRM changed while pending is a conflict.
CREATE TABLE grm_sync (
    grievance_id   text PRIMARY KEY REFERENCES grievances (grievance_id),
    pending        boolean NOT NULL DEFAULT true,
    changed_at     timestamptz NOT NULL DEFAULT now(), -- when PostgreSQL last changed it
    pushed_at      timestamptz,
    pushed_status  text,
    grm_updated_at text, -- the GRM row's last change seen by a pull
    attempts       integer NOT NULL DEFAULT 0,
    last_error     text
);
CREATE INDEX grm_sync_pending ON grm_sync (changed_at) WHERE pending;

-- How far pulls have read the GRM: its rows ordered by (updated, key), this one included.
CREATE TABLE grm_watermark (
    name      text PRIMARY KEY,
    updated   text NOT NULL,
    key       text NOT NULL,
    pulled_at timestamptz NOT NULL DEFAULT now()
);

-- The latest value of each figure an integration reports (component 'grm': enabled,
-- connected, last_push_at, last_pull_at, last_error, ...).
CREATE TABLE system_monitoring (
    component text NOT NULL,
    name      text NOT NULL,
    value     text,
    at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component, name)
);
