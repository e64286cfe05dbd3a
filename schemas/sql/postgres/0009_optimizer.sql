-- 0009_optimizer.sql - sy-optimizer: every planning run (the issue's "optimizer.runs" is the
-- table optimizer_runs: schemas by concern share one namespace here, like ingest_sources), and
-- the datasets `syctl optimizer load` stored for optimizer.solve to name.

-- One row per run, keyed by the solve message's data.run_id or, without one, its message id:
-- a redelivered solve finds its run here. status: queued (recorded, or only a cancel seen so
-- far: kind is then NULL), running (instance holds it; heartbeat_at moves every second while it
-- solves, so a run whose worker died is taken over once it stops moving), then one of the
-- final statuses of optimizer.result. cancel_requested is set by optimizer.cancel on any
-- replica; the solving replica reads it every second. progress: the last {incumbent, bound,
-- gap, seconds, nodes} published. result: optimizer.result's data, the plan included.
CREATE TABLE optimizer_runs (
    run_id           text PRIMARY KEY CHECK (run_id ~ '^[A-Za-z0-9_.:@-]{1,96}$'),
    kind             text CHECK (kind IN ('scenario', 'model')),
    dataset          text,  -- the optimizer_datasets name solved, NULL for an inline scenario
    options          jsonb NOT NULL DEFAULT '{}',
    status           text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running',
                         'optimal', 'feasible', 'infeasible', 'unbounded', 'cancelled', 'error')),
    reason           text,
    objective        double precision,
    bound            double precision,
    gap              double precision,
    seconds          double precision,
    instance         text,
    cancel_requested boolean NOT NULL DEFAULT false,
    progress         jsonb,
    result           jsonb,
    queued_at        timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    heartbeat_at     timestamptz,
    finished_at      timestamptz
);
CREATE INDEX optimizer_runs_queued ON optimizer_runs (queued_at);

-- A scenario loaded from the public dataset's CSV files, in the JSON layout optimizer.solve
-- carries inline (workers/optimizer/scenario.h), checked before it was stored. rows: per sheet,
-- the rows read.
CREATE TABLE optimizer_datasets (
    name      text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    scenario  jsonb NOT NULL,
    rows      jsonb NOT NULL DEFAULT '{}',
    loaded_at timestamptz NOT NULL DEFAULT now()
);
