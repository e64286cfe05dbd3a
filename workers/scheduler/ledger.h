/* ledger.h - the scheduler's durable record in PostgreSQL (migration 0002_schedule.sql):
 * per job a cursor (the newest tick handled) and per tick a claim row, the per-(job, tick) key
 * taken before a tick is published. A claim made under the leader's fencing token commits
 * together with the fence check, so a leader whose lease ran out can neither claim nor mark
 * ticks; a tick whose publish was never confirmed stays 'claimed' until a leader publishes it.
 *
 * Rows belong to a group (the scheduler deployment; "default"), so separate schedules can
 * share one database. Every function returns 0 or a negative SY_E code: -SY_ESTALE when
 * a newer fence already wrote the group, -SY_ECONN/-SY_EDB (retriable), -SY_EDBDATA. */
#ifndef SCHED_LEDGER_H
#define SCHED_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schedule.h"

struct sy_pg;

/* A group name: 1 to SCHED_GROUP_MAX characters of [A-Za-z0-9._-]. An instance (who claimed
 * or confirmed a tick, for operators): 1 to SCHED_INSTANCE_MAX bytes. Every function refuses
 * others with -SY_EINVAL, as it does a job name longer than SCHED_JOB_NAME_MAX, a tick outside
 * 1970..9999 and data over SY_MSG_MAX_BYTES. */
#define SCHED_GROUP_MAX    64
#define SCHED_INSTANCE_MAX 159
bool sched_ledger_group_ok(const char *group);

/* A job's row: ticks are Unix seconds, 0 when never. */
struct sched_job_state {
    char job[SCHED_JOB_NAME_MAX + 1];
    int64_t cursor;         /* newest tick claimed or dropped */
    int64_t last_tick;      /* newest tick published (scheduled, not manual) */
    int64_t last_published; /* when it was confirmed */
    char last_id[SCHED_TICK_ID_MAX + 1];
    char last_instance[160];
    int64_t last_manual;         /* when the newest manual tick was confirmed */
    uint64_t published, dropped; /* totals */
};

/* A claimed tick whose publish is not confirmed yet. */
struct sched_pending {
    char job[SCHED_JOB_NAME_MAX + 1];
    int64_t tick;
    int manual;
    char id[SCHED_TICK_ID_MAX + 1];
    char type[256];
    void *data; /* packed msgpack map; owned */
    size_t data_len;
    uint64_t fence;
};

/* The rows of the group's jobs named in s, in s's order (a job without a row gets cursor 0).
 * states has s->njobs entries. */
int sched_ledger_load(struct sy_pg *pg, const char *group, const struct sched_schedule *s,
                      struct sched_job_state *states);

/* Creates the row of a job seen for the first time with cursor `now` (ticks before it are
 * not the scheduler's to publish), under fence. Leaves an existing row alone. */
int sched_ledger_init_job(struct sy_pg *pg, const char *group, const char *job, int64_t now,
                          uint64_t fence);

/* One transaction under `fence`: claims the planned ticks of job j (rows 'claimed' with their
 * ids, type and data), records `dropped` dropped ticks, and moves the cursor to the newest of
 * the ticks and dropped_last. A tick already published is not claimed again; a tick claimed
 * under an older fence more than takeover_s ago is taken over (a younger claim may still be
 * in its owner's hands: it is left, and comes back through sched_ledger_pending once it is old
 * enough, if nobody marked it by then). *claimed_mask gets bit i set for each plan tick i now
 * claimed by this fence (the ones to publish).
 * Plan ticks must be strictly ascending. A tick at or before the stored cursor that has no
 * claim row (it was dropped, or precedes the job's first cursor, or its row was pruned) is
 * never claimed, whatever the plan says; dropped ticks count once, when dropped_last is past
 * the stored cursor. Creates the job's row if it has none. */
int sched_ledger_claim(struct sy_pg *pg, const char *group, const struct sched_job *j,
                       const struct sched_plan *plan, uint64_t fence, const char *instance,
                       int takeover_s, uint64_t *claimed_mask);

/* Claimed, unconfirmed ticks of the group (any job, including jobs no longer in the file),
 * oldest first, at most max (and at most SCHED_PENDING_MAX); taken over by `fence` in the same
 * transaction (so an older leader can no longer mark them). This fence's own claims count at
 * once; another's only once claimed more than takeover_s ago (the lease: its owner publishes
 * only inside its lease, so by then it cannot be sending the tick any more), and a manual one
 * not before SCHED_MANUAL_SETTLE_S either (the syctl that made it may still be publishing it;
 * its publish gives up well before). Caller frees with sched_pending_free. */
#define SCHED_PENDING_MAX       10000
#define SCHED_MANUAL_SETTLE_S   30
#define SCHED_MANUAL_SETTLE_TXT "30"
int sched_ledger_pending(struct sy_pg *pg, const char *group, uint64_t fence, const char *instance,
                         int takeover_s, struct sched_pending **out, size_t *n, size_t max);
void sched_pending_free(struct sched_pending *p, size_t n);

/* Marks a claimed tick published (the broker confirmed it) and updates the job's last_*
 * columns and totals. fence 0 is for manual ticks (not fenced). Only the claim's own fence is
 * checked, not the group's: a leader that lost its lease after its publish went out still
 * records it, so no later leader sends it again. -SY_ESTALE when the claim now belongs to
 * another fence, -SY_ENOTFOUND when there is no such claim. Marking a tick that
 * the same fence (or, with fence 0, nobody) already marked succeeds and counts nothing twice,
 * so a call whose commit was lost may be repeated. A scheduled tick moves last_* only when it
 * is the job's newest published one; a manual tick sets only last_manual (when the job has a
 * row). */
int sched_ledger_published(struct sy_pg *pg, const char *group, const char *job, int64_t tick,
                           int manual, uint64_t fence, const char *instance);

/* A manual tick at `now`: claims it (kind manual, no fence) with its id, type and data.
 * -SY_EEXISTS when this job already has a manual tick in that second. Touches no job row, so
 * triggering a job the scheduler has not seen yet sets no cursor for it. id_out holds
 * SCHED_TICK_ID_MAX + 1 bytes. */
int sched_ledger_claim_manual(struct sy_pg *pg, const char *group, const struct sched_job *j,
                              int64_t now, const char *instance, char *id_out);

/* Deletes published tick rows confirmed before `before` (job rows stay). *deleted may be
 * NULL. */
int sched_ledger_prune(struct sy_pg *pg, const char *group, int64_t before, long long *deleted);

/* For operators (`syctl schedule list`): every job of the group the ledger knows, from its job
 * row or its tick rows, in name order, at most max. Read only: takes nothing over. A job with
 * tick rows only (manual ticks) has cursor 0. Caller frees *out. */
struct sched_ledger_job {
    struct sched_job_state state; /* last_manual: the newest manual confirm, row or tick */
    char last_manual_id[SCHED_TICK_ID_MAX + 1]; /* "" when no published manual row is left */
    uint64_t pending;                           /* claimed, unconfirmed ticks (both kinds) */
    int64_t pending_oldest;                     /* the oldest of them, 0 if none */
};
int sched_ledger_jobs(struct sy_pg *pg, const char *group, struct sched_ledger_job **out, size_t *n,
                      size_t max);

/* The newest fence recorded for the group's fence resource ("scheduler:<group>"), 0 if none:
 * a leader whose Redis fence counter restarted below it raises the counter past it. */
int sched_ledger_fence(struct sy_pg *pg, const char *group, uint64_t *fence);

#endif
