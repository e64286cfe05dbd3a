-- 0008_telemetry.sql - sy-telemetry: the history of plant readings (series and points), the
-- readings refused and why, threshold alerts and the state behind them, and how far each
-- replica's local spool is stored for good.

-- A series is one metric of one device: (plant, device, metric) named once here, a number in
-- every reading. Readings are the bulk of the database, and an index of two fixed-width columns
-- costs a fraction of one over three names at every insert. A device is named within its plant
-- (plant '' when the topic has no plant level); the names compare byte by byte (COLLATE "C"):
-- they are identifiers, not words.
CREATE TABLE telemetry_series (
    id         serial PRIMARY KEY,
    plant      text COLLATE "C" NOT NULL,
    device     text COLLATE "C" NOT NULL,
    metric     text COLLATE "C" NOT NULL,
    kind       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (plant, device, metric)
);

-- One row per reading: value for numeric metrics, text for the text ones (a vehicle's driver
-- and route). A redelivered reading has the same key and is not stored twice: the worker copies
-- a batch into a temporary table and merges it with ON CONFLICT DO NOTHING. Series are never
-- removed while readings name them (no foreign key: its check would cost an index lookup per
-- reading).
CREATE TABLE telemetry_points (
    series integer NOT NULL,
    ts     timestamptz NOT NULL,
    value  double precision,
    text   text,
    PRIMARY KEY (series, ts),
    CHECK ((value IS NULL) <> (text IS NULL))
);

-- The readings by name, for people and reports.
CREATE VIEW telemetry_readings AS
    SELECT s.plant, s.kind, s.device, s.metric, p.ts, p.value, p.text
    FROM telemetry_points p JOIN telemetry_series s ON s.id = p.series;

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
