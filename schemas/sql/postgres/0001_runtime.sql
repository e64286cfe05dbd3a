-- 0001_runtime.sql - tables the runtime itself needs.

-- The newest fencing token that wrote each resource guarded by a Redis lock (sy_pg_fence).
-- A write carrying an older token than the one recorded here comes from a holder whose lease
-- ran out, and is refused.
CREATE TABLE sy_fences (
    resource   text PRIMARY KEY,
    fence      bigint NOT NULL CHECK (fence > 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
