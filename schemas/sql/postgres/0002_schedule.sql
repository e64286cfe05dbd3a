-- 0002_schedule.sql - the scheduler's ledger (workers/scheduler/ledger.h): what each job of a
-- scheduler group has handled, and one claim row per tick, taken before the tick is published.
-- Ticks are whole seconds. A group is one scheduler deployment ("default"); its fencing token
-- is the sy_fences row "scheduler:<group>".

-- One row per job of a group. cursor_tick is the newest tick the scheduler claimed or dropped:
-- ticks up to it are never planned again. last_* describe the newest scheduled tick whose
-- publish the broker confirmed (manual ticks only set last_manual_at, their confirm time);
-- the totals count confirmed scheduled ticks and ticks dropped by the job's missed policy.
-- Rows stay when a job leaves the schedule file, so its history and totals survive.
CREATE TABLE sy_schedule_jobs (
    grp               text NOT NULL,
    job               text NOT NULL,
    cursor_tick       timestamptz NOT NULL,
    last_tick         timestamptz,
    last_published_at timestamptz,
    last_message_id   text,
    last_instance     text,
    last_manual_at    timestamptz,
    published_total   bigint NOT NULL DEFAULT 0 CHECK (published_total >= 0),
    dropped_total     bigint NOT NULL DEFAULT 0 CHECK (dropped_total >= 0),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (grp, job)
);

-- One row per tick a scheduler (kind 'tick') or an operator (kind 'manual', `syctl schedule
-- trigger`) claimed. The row holds the message id, type and packed msgpack data the tick
-- publishes, so a claim whose publish was never confirmed can be published again byte for byte
-- by the next leader, even after its job left the file. state 'claimed' until the broker
-- confirmed the publish, then 'published'. fence is the leader's fencing token when the claim
-- was made or taken over; a manual claim has none until a leader takes it over. instance is
-- the process that claimed (or took over, or confirmed) it. Published rows are pruned after a
-- while; claimed ones stay until published. A manual tick needs no job row: triggering a job
-- the scheduler has not seen yet must not set that job's cursor.
CREATE TABLE sy_schedule_ticks (
    grp          text NOT NULL,
    job          text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('tick', 'manual')),
    tick         timestamptz NOT NULL,
    message_id   text NOT NULL,
    type         text NOT NULL,
    data         bytea NOT NULL,
    state        text NOT NULL DEFAULT 'claimed' CHECK (state IN ('claimed', 'published')),
    fence        bigint CHECK (fence > 0),
    instance     text NOT NULL,
    claimed_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    PRIMARY KEY (grp, job, kind, tick),
    CHECK (kind = 'manual' OR fence IS NOT NULL),
    CHECK ((state = 'published') = (published_at IS NOT NULL))
);

-- The unconfirmed claims of a group, oldest first: what a new leader publishes first. Small,
-- since rows leave it once published.
CREATE INDEX sy_schedule_ticks_claimed ON sy_schedule_ticks (grp, tick) WHERE state = 'claimed';

-- Pruning finds a group's old published rows by confirm time.
CREATE INDEX sy_schedule_ticks_published ON sy_schedule_ticks (grp, published_at)
    WHERE state = 'published';
