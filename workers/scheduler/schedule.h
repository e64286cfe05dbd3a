/* schedule.h - the schedule file (deploy/config/schedule.yaml): jobs, when each ticks, what it
 * publishes, and which ticks are due at a given moment under the job's policy.
 *
 *   jobs:
 *     - name: ingest.poll.email        # [a-z0-9._-], at most 64 characters, unique
 *       every: 5m                      # an interval: ticks at whole multiples since the epoch
 *       type: ingest.poll.email        # message type published (routing key)
 *       data: {source: email}          # its data (a map; checked against the type's schema)
 *       jitter: 20s                    # optional: each tick goes out up to this much later
 *       missed: catch_up               # skip (default) or catch_up
 *       catch_up_max: 1                # catch_up: at most this many missed ticks (1..1000)
 *       grace: 30s                     # a tick this late is still on time (default 30s)
 *     - name: fleet.cleanup
 *       cron: "0 2 * * *"              # instead of every: five cron fields ...
 *       tz: Asia/Kolkata               # ... in this zone (default UTC)
 *       type: fleet.cleanup
 *
 * Values of every, offset, cron, tz, jitter, grace, catch_up_max may use ${NAME} or
 * ${NAME:-default} from the environment ("every: ${GRM_SYNC_INTERVAL_MINUTES:-5}m"). */
#ifndef SCHED_SCHEDULE_H
#define SCHED_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#include "cron.h"

#define SCHED_JOB_NAME_MAX 64
#define SCHED_CATCH_UP_MAX 1000
#define SCHED_JOBS_MAX     1000 /* jobs in one file */
#define SCHED_PLAN_MAX     64   /* ticks one plan holds */
/* A cron job's plan looks at most this far back from `now` (see sched_job_plan). */
#define SCHED_CRON_LOOKBACK_S (35 * 86400)
/* "<job>@YYYY-MM-DDTHH:MM:SSZ" (+ "/manual"): fits a message id. */
#define SCHED_TICK_ID_MAX (SCHED_JOB_NAME_MAX + 1 + 20 + 7)

struct sy_schemas;
struct sy_topology;
struct sched_tz;

enum sched_missed {
    SCHED_SKIP,    /* ticks later than grace are dropped */
    SCHED_CATCH_UP /* the newest catch_up_max of them are published, older ones dropped */
};

struct sched_job {
    char *name;
    char *type;
    void *data; /* packed msgpack map (an empty map when the file has no data) */
    size_t data_len;
    /* Exactly one of: every_s > 0 (interval; ticks at k * every_s + offset_s), or a cron
     * expression in tz. */
    int64_t every_s;
    int64_t offset_s; /* 0 <= offset_s < every_s */
    struct sched_cron cron;
    struct sched_tz *tz; /* cron jobs only; owned */
    char *when;          /* for people: "every 5m" or "0 2 * * * (Asia/Kolkata)" */
    int64_t jitter_s;    /* 0: none */
    enum sched_missed missed;
    unsigned catch_up_max; /* catch_up only */
    int64_t grace_s;
    int line; /* where the job starts in the file */
};

struct sched_schedule {
    struct sched_job *jobs;
    size_t njobs;
    char *path;
};

/* Loads and checks the whole file. `schemas` and `topo`, when given, also check each job's
 * message: a schema for the type that accepts the data, and at least one worker whose routes
 * match the type (else nothing would consume it). On the first bad entry returns NULL with
 * "path:line: job 'name': why" in err (a job without a usable name is "job #N", N counting
 * from 1). Durations: a number with s, m, h or d ("90s", "5m").
 *
 * Limits: at most SCHED_JOBS_MAX jobs; every 1s..31d, 0 <= offset < every; jitter below
 * every (interval) or below 1h (cron); grace 1s..1d; a value at most 255 bytes after ${}
 * expansion; data at most 8 levels deep and 64 KiB packed. An unset variable without a default
 * is an error naming it. In data, unquoted scalars are typed the YAML 1.2 core way (null, ~
 * and empty: nil; true/false: bool; decimal integers: int, refused beyond 64 bits; floats:
 * float64; anything else: str), quoted scalars are always str, map keys are always str, and
 * `data:` left empty counts as no data. */
struct sched_schedule *sched_schedule_load(const char *path, const struct sy_schemas *schemas,
                                           const struct sy_topology *topo, char *err,
                                           size_t errlen);
void sched_schedule_destroy(struct sched_schedule *s); /* accepts NULL */
const struct sched_job *sched_schedule_find(const struct sched_schedule *s, const char *name);

/* The job's first nominal tick strictly after `after` (Unix seconds), or -1 if there is none
 * (a cron expression that stopped matching within five years). */
int64_t sched_job_next(const struct sched_job *j, int64_t after);

/* How long after its nominal time tick goes out: the same for every replica (a hash of the job
 * name and the tick), in [0, jitter_s). 0 without jitter. */
int64_t sched_job_jitter(const struct sched_job *j, int64_t tick);

/* The message id of a tick: "<job>@<tick as YYYY-MM-DDTHH:MM:SSZ>", with "/manual" appended
 * for a tick an operator asked for. buf holds SCHED_TICK_ID_MAX + 1 bytes. */
void sched_tick_id(const char *job, int64_t tick, int manual, char *buf, size_t bufsz);

/* What is due at `now` for a job whose ticks up to `cursor` are handled (published or
 * dropped). A tick is due once now >= tick + jitter; due ticks with now - (tick + jitter) <=
 * grace_s are on time and all planned; older ones are missed: SCHED_SKIP drops them all,
 * SCHED_CATCH_UP plans the newest catch_up_max of them and drops the rest.
 *
 * Ticks are taken in order and the first one not yet due ends the plan, so the cursor never
 * passes a tick that still waits for its jitter (with cron jitter wider than the gap between
 * ticks, a later tick then waits behind an earlier one). The cost is bounded whatever the
 * cursor: interval jobs are counted arithmetically; cron jobs enumerate only the ticks of the
 * last SCHED_CRON_LOOKBACK_S before now, and older ticks after the cursor are dropped
 * unenumerated: they add 1 to `dropped` (then a lower bound) and make dropped_last at least
 * now - SCHED_CRON_LOOKBACK_S. When more than SCHED_PLAN_MAX ticks are planned, `ticks` holds
 * the oldest of them and `more` is set: the caller handles these, moves the cursor and plans
 * again. Times are clamped to +-2^60 seconds. */
struct sched_plan {
    int64_t ticks[SCHED_PLAN_MAX]; /* planned ticks, oldest first */
    size_t n;
    int more;             /* more due ticks than fit: plan again after handling these */
    uint64_t dropped;     /* missed ticks dropped by the policy (counted before `ticks`) */
    int64_t dropped_last; /* the newest dropped tick (the cursor moves past it), 0 if none */
    int64_t next_due;     /* when the next tick after the planned ones is due (tick +
                           * jitter), -1 if none */
};
void sched_job_plan(const struct sched_job *j, int64_t cursor, int64_t now, struct sched_plan *p);

#endif
