-- 0008_telemetry.sql - sy-telemetry: the history of plant readings, the readings refused and
-- why, threshold alerts and the state behind them, and how far each replica's local spool is
-- stored for good.

-- One row per reading. A redelivered reading has the same key and is not stored twice: the
-- worker copies a batch into a temporary table and merges it with ON CONFLICT DO NOTHING.
-- A device is named within its plant (plant '' when the topic has no plant level). value holds
-- numeric metrics, text the text ones (a vehicle's driver and route).
CREATE TABLE telemetry_readings (
    plant  text NOT NULL,
    device text NOT NULL,
    metric text NOT NULL,
    ts     timestamptz NOT NULL,
    kind   text NOT NULL,
    value  double precision,
    text   text,
    PRIMARY KEY (plant, device, metric, ts),
    CHECK ((value IS NULL) <> (text IS NULL))
);

-- What could not become a reading: the whole message (unknown topic, not JSON or msgpack) or one
-- metric of it (out of range, unknown, too old), with the names as far as they were known and
-- the first KiB of the payload.
CREATE TABLE telemetry_rejects (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL,
    topic       text NOT NULL,
    plant       text,
    kind        text,
    device      text,
    metric      text,
    reason      text NOT NULL,
    payload     bytea NOT NULL
);
CREATE INDEX telemetry_rejects_received ON telemetry_rejects (received_at);

-- Per rule and device: raised or not, the readings in a row towards the next change, and the
-- newest reading's time (older ones arriving late change nothing). Rows are locked in key order
-- inside the batch's transaction, so replicas sharing the stream keep one state.
CREATE TABLE telemetry_alert_state (
    rule       text NOT NULL,
    plant      text NOT NULL,
    device     text NOT NULL,
    active     boolean NOT NULL DEFAULT false,
    streak     integer NOT NULL DEFAULT 0,
    last_ts_us bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rule, plant, device)
);

-- Every raise and clear, written with the readings that caused it and then published as
-- telemetry.alert.<severity> (message id "telemetry-alert-<id>"); published_at is set when the
-- broker confirmed it, so one not yet published is sent again after a restart.
CREATE TABLE telemetry_alerts (
    id           bigserial PRIMARY KEY,
    rule         text NOT NULL,
    severity     text NOT NULL,
    state        text NOT NULL CHECK (state IN ('raised', 'cleared')),
    plant        text NOT NULL,
    kind         text NOT NULL,
    device       text NOT NULL,
    metric       text NOT NULL,
    value        double precision NOT NULL,
    threshold    double precision NOT NULL,
    ts           timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    UNIQUE (rule, plant, device, ts, state)
);
CREATE INDEX telemetry_alerts_unpublished ON telemetry_alerts (id) WHERE published_at IS NULL;

-- Per replica (its MQTT client id): the spool position up to which everything is in the tables
-- above, written in the same transaction as the batch that got there. spool_id tells a spool
-- made anew (its directory lost) from the one the position belongs to.
CREATE TABLE telemetry_spool (
    client_id  text PRIMARY KEY,
    spool_id   text NOT NULL,
    seg        bigint NOT NULL,
    off        bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
