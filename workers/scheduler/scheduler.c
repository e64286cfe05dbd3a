/* scheduler.c - the scheduler's loop. Every replica runs it; only the one holding the leader
 * lease publishes. Per due tick: claim it in the ledger under the lease's fence (the
 * per-(job, tick) key), publish it and wait for the broker's confirm, then mark it published.
 * A tick claimed but never confirmed (a publish that failed, a leader that died between claim
 * and confirm) stays pending in the ledger, and the next leader publishes it under the same
 * message id. Cursors live in PostgreSQL, so neither a new leader nor a Redis that lost its
 * data can publish a tick twice. */
#include "scheduler.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scheduler/leader.h"
#include "scheduler/ledger.h"
#include "scheduler/schedule.h"
#include "sy/clock.h"
#include "sy/config.h"
#include "sy/err.h"
#include "sy/log.h"
#include "sy/metrics.h"
#include "sy/pg.h"
#include "sy/redis.h"

#define REDIS_TIMEOUT_MS   2000
#define PUBLISH_TIMEOUT_MS 10000
#define IDLE_MAX_MS        1000  /* the loop looks at the lease at least this often */
#define RETRY_FIRST_MS     500   /* after a store or broker failure ... */
#define RETRY_MAX_MS       5000  /* ... doubling up to this */
#define PENDING_EVERY_MS   10000 /* how often a leader looks for unconfirmed claims */
#define PENDING_BATCH      64
#define PRUNE_EVERY_MS     (3600 * 1000)
#define PG_CHECK_EVERY_MS  10000 /* a follower's PostgreSQL check, for readiness */

_Static_assert(SCHED_PLAN_MAX <= 64, "the claimed mask has one bit per plan slot");

struct sched_conf {
    char *schedule;
    char *group;
    long long lease_ms;
    long long keep_ms;
};

#define C_(field) offsetof(struct sched_conf, field)
static const struct sy_conf_key sched_conf_keys[] = {
    {"SY_SCHEDULE", SY_CONF_STR, SY_DEFAULT_ROOT "/deploy/config/schedule.yaml", 0, 0, C_(schedule),
     0, "the schedule file: jobs, when they tick, what they publish"},
    {"SY_SCHEDULER_GROUP", SY_CONF_STR, "default", 0, 0, C_(group), 0,
     "replicas of one group share a lease and a ledger ([A-Za-z0-9._-], at most 64)"},
    {"SY_SCHEDULER_LEASE", SY_CONF_MS, "10s", 2000, 60000, C_(lease_ms), 0,
     "leader lease: a dead leader's ticks resume within this plus about a second"},
    {"SY_SCHEDULER_KEEP", SY_CONF_MS, "7d", 3600000, 366LL * 86400000, C_(keep_ms), 0,
     "how long published ticks stay in the ledger"},
    {NULL, SY_CONF_STR, NULL, 0, 0, 0, 0, NULL},
};
#undef C_

struct job_metrics {
    struct sy_counter *published, *dropped;
};

struct sched {
    struct sy_worker *w;
    const struct sched_conf *conf;
    struct sched_schedule *schedule;
    struct sched_leader *leader;
    char resource[SCHED_GROUP_MAX + 16];
    const char *redis_url, *pg_url;
    struct sy_redis *redis;
    struct sy_pg *pg;

    /* Per job, valid while `loaded`: every tick <= cursor is handled. */
    struct sched_job_state *states;
    struct job_metrics *jm;
    bool loaded;
    uint64_t loaded_fence;

    bool pending_check;  /* look for unconfirmed claims before anything else */
    int64_t pending_at;  /* monotonic ms of the next routine look */
    int64_t prune_at;    /* monotonic ms */
    int64_t pg_check_at; /* monotonic ms */
    int64_t retry_at;    /* no ledger work before this (monotonic ms) */
    int64_t retry_ms;    /* current backoff */
    bool was_leader;

    atomic_bool redis_ok, pg_ok;

    struct sy_gauge *m_leader;
    struct sy_counter *m_takeovers;
    struct sy_histogram *m_lag;
};

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* --- connections -------------------------------------------------------------------------- */

static int ensure_redis(struct sched *s)
{
    char err[256];

    if (s->redis)
        return 0;
    s->redis = sy_redis_connect(s->redis_url, REDIS_TIMEOUT_MS, err, sizeof err);
    if (!s->redis) {
        if (atomic_exchange(&s->redis_ok, false))
            sy_log_write(SY_LOG_WARN, "scheduler.redis", -1, err, "Redis is unreachable");
        return -SY_ECONN;
    }
    return 0;
}

static int ensure_pg(struct sched *s)
{
    char err[256];

    if (s->pg)
        return 0;
    s->pg = sy_pg_connect(s->pg_url, err, sizeof err);
    if (!s->pg) {
        if (atomic_exchange(&s->pg_ok, false))
            sy_log_write(SY_LOG_WARN, "scheduler.pg", -1, err, "PostgreSQL is unreachable");
        return -SY_ECONN;
    }
    atomic_store(&s->pg_ok, true);
    return 0;
}

/* A store failed: wait before touching the ledger again (doubling), and remember why. */
static void back_off(struct sched *s, int64_t now, int rc, const char *what)
{
    s->retry_ms = s->retry_ms ? min64(s->retry_ms * 2, RETRY_MAX_MS) : RETRY_FIRST_MS;
    s->retry_at = now + s->retry_ms;
    if (rc == -SY_ECONN || rc == -SY_EDB) {
        if (atomic_exchange(&s->pg_ok, false))
            sy_log_write(SY_LOG_WARN, "scheduler.pg", -1, s->pg ? sy_pg_error(s->pg) : NULL,
                         "%s failed: %s; retrying", what, sy_strerror(rc));
    } else {
        sy_log_write(SY_LOG_WARN, "scheduler.ledger", -1, s->pg ? sy_pg_error(s->pg) : NULL,
                     "%s failed: %s; retrying in %" PRId64 " ms", what, sy_strerror(rc),
                     s->retry_ms);
    }
}

static void recovered(struct sched *s)
{
    s->retry_ms = 0;
    if (!atomic_exchange(&s->pg_ok, true))
        sy_log_info("scheduler.pg", "PostgreSQL is reachable again");
}

/* The ledger refused our fence: a newer one wrote the group. Either another replica leads
 * now, or Redis lost its counter and handed out a number below the record: raise the counter
 * past the record and give the lease up; whoever takes it next gets a fence that counts. */
static void fence_refused(struct sched *s)
{
    uint64_t recorded = 0;

    sched_ledger_fence(s->pg, s->conf->group, &recorded);
    sy_log_warn("scheduler.lease",
                "the ledger refused fence %" PRIu64 " (it recorded %" PRIu64
                "): giving the lease up",
                sched_leader_fence(s->leader), recorded);
    sched_leader_refence(s->leader, s->redis, recorded);
    s->loaded = false;
}

/* --- publishing ---------------------------------------------------------------------------- */

/* Publishes one claimed tick and marks it: 0, or the failure (the claim stays pending). */
static int publish_tick(struct sched *s, const char *job, int64_t tick, int manual,
                        const char *type, const void *data, size_t len, int64_t due_s)
{
    char id[SCHED_TICK_ID_MAX + 1];
    uint64_t fence = sched_leader_fence(s->leader);
    int rc;

    /* Only inside the lease: past it another replica may lead, and the broker cannot refuse
     * an old leader's publish the way the ledger refuses its writes. */
    if (!sched_leader_valid(s->leader, sy_mono_ms()))
        return -SY_ESTALE;
    sched_tick_id(job, tick, manual, id, sizeof id);
    rc = sy_worker_publish(s->w, type, id, data, len, PUBLISH_TIMEOUT_MS, NULL);
    if (rc != 0) {
        sy_log_write(SY_LOG_WARN, "scheduler.publish", -1, sy_strerror(rc),
                     "tick %s not confirmed by the broker; it stays pending", id);
        s->pending_check = true;
        return rc;
    }
    if (!manual && due_s > 0) {
        double lag = (double)(sy_wall_ms() - due_s * 1000) / 1000.0;
        sy_histogram_observe(s->m_lag, lag < 0 ? 0 : lag);
    }
    rc = sched_ledger_published(s->pg, s->conf->group, job, tick, manual, fence,
                                sy_worker_instance(s->w));
    if (rc != 0) {
        /* Out, but not marked: a later leader publishes it again under the same id. */
        sy_log_write(SY_LOG_WARN, "scheduler.publish", -1, sy_strerror(rc),
                     "tick %s was confirmed but could not be marked published", id);
        s->pending_check = true;
        return rc;
    }
    sy_log_debug("scheduler.tick", "published %s", id);
    return 0;
}

/* Another leader's claim is abandoned once older than a lease: that leader publishes only
 * inside its lease. A second on top covers the two clocks' rounding. Replicas of one group
 * share SY_SCHEDULER_LEASE. */
static int takeover_s(const struct sched *s)
{
    return (int)((s->conf->lease_ms + 999) / 1000) + 1;
}

static struct job_metrics *metrics_of(struct sched *s, const char *job)
{
    const struct sched_job *j = sched_schedule_find(s->schedule, job);

    return j ? &s->jm[j - s->schedule->jobs] : NULL;
}

/* Claimed ticks nobody confirmed: ours that failed, or a dead leader's. Published first, in
 * their order, before any newer tick. */
static int publish_pending(struct sched *s)
{
    struct sched_pending *p = NULL;
    size_t n = 0;
    int rc = sched_ledger_pending(s->pg, s->conf->group, sched_leader_fence(s->leader),
                                  sy_worker_instance(s->w), takeover_s(s), &p, &n, PENDING_BATCH);

    if (rc != 0)
        return rc;
    if (n > 0)
        sy_log_info("scheduler.pending", "%zu claimed tick(s) without a confirm: publishing them",
                    n);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const struct sched_job *j = sched_schedule_find(s->schedule, p[i].job);
        int64_t due = j && !p[i].manual ? p[i].tick + sched_job_jitter(j, p[i].tick) : 0;

        rc = publish_tick(s, p[i].job, p[i].tick, p[i].manual, p[i].type, p[i].data, p[i].data_len,
                          due);
        if (rc == 0 && !p[i].manual) {
            struct job_metrics *m = metrics_of(s, p[i].job);

            if (m)
                sy_counter_add(m->published, 1);
        }
    }
    s->pending_check = rc != 0 || n == PENDING_BATCH;
    sched_pending_free(p, n);
    return rc;
}

/* Everything due for job i at now_s. Returns 0 and lowers *next_due_s to when the job's next
 * tick is due, or the failure. */
static int run_job(struct sched *s, size_t i, int64_t now_s, int64_t *next_due_s)
{
    const struct sched_job *j = &s->schedule->jobs[i];
    struct sched_job_state *st = &s->states[i];
    uint64_t fence = sched_leader_fence(s->leader);

    for (;;) {
        struct sched_plan plan;
        uint64_t mask = 0;
        int rc;

        sched_job_plan(j, st->cursor, now_s, &plan);
        if (plan.n == 0 && plan.dropped == 0) {
            if (plan.next_due >= 0 && (*next_due_s < 0 || plan.next_due < *next_due_s))
                *next_due_s = plan.next_due;
            return 0;
        }
        if (!sched_leader_valid(s->leader, sy_mono_ms()))
            return -SY_ESTALE;
        rc = sched_ledger_claim(s->pg, s->conf->group, j, &plan, fence, sy_worker_instance(s->w),
                                takeover_s(s), &mask);
        if (rc != 0)
            return rc;
        if (plan.dropped > 0) {
            char newest[SCHED_TICK_ID_MAX + 1];

            sched_tick_id(j->name, plan.dropped_last, 0, newest, sizeof newest);
            sy_log_warn("scheduler.dropped",
                        "job %s: %" PRIu64 " missed tick(s) dropped by its policy (%s), the "
                        "newest %s",
                        j->name, plan.dropped, j->missed == SCHED_SKIP ? "skip" : "catch_up",
                        newest);
            sy_counter_add(s->jm[i].dropped, plan.dropped);
        }
        if (plan.dropped_last > st->cursor)
            st->cursor = plan.dropped_last;
        if (plan.n > 0 && plan.ticks[plan.n - 1] > st->cursor)
            st->cursor = plan.ticks[plan.n - 1];
        for (size_t k = 0; k < plan.n; k++) {
            if (!(mask & (UINT64_C(1) << k)))
                continue; /* already published (by an earlier leader) */
            rc = publish_tick(s, j->name, plan.ticks[k], 0, j->type, j->data, j->data_len,
                              plan.ticks[k] + sched_job_jitter(j, plan.ticks[k]));
            if (rc != 0)
                return rc;
            sy_counter_add(s->jm[i].published, 1);
        }
        if (!plan.more) {
            if (plan.next_due >= 0 && (*next_due_s < 0 || plan.next_due < *next_due_s))
                *next_due_s = plan.next_due;
            return 0;
        }
    }
}

/* Takes over the ledger for a new fence: cursors, and rows for jobs seen the first time. */
static int load_ledger(struct sched *s, int64_t now_s)
{
    uint64_t fence = sched_leader_fence(s->leader);
    int rc = sched_ledger_load(s->pg, s->conf->group, s->schedule, s->states);

    for (size_t i = 0; rc == 0 && i < s->schedule->njobs; i++) {
        if (s->states[i].cursor != 0)
            continue;
        rc = sched_ledger_init_job(s->pg, s->conf->group, s->schedule->jobs[i].name, now_s, fence);
        if (rc == 0)
            s->states[i].cursor = now_s;
    }
    if (rc != 0)
        return rc;
    s->loaded = true;
    s->loaded_fence = fence;
    s->pending_check = true;
    return 0;
}

/* The leader's round: returns the wall-clock ms at which the next tick is due (-1: none). */
static int64_t lead(struct sched *s, int64_t now)
{
    int64_t now_s = sy_wall_ms() / 1000, next_due_s = -1;
    int rc;

    if (now < s->retry_at)
        return -1;
    if ((rc = ensure_pg(s)) != 0) {
        back_off(s, now, rc, "connecting to PostgreSQL");
        return -1;
    }
    if (!s->loaded || s->loaded_fence != sched_leader_fence(s->leader)) {
        if ((rc = load_ledger(s, now_s)) != 0)
            goto failed;
    }
    if (s->pending_check || now >= s->pending_at) {
        s->pending_at = now + PENDING_EVERY_MS;
        if ((rc = publish_pending(s)) != 0)
            goto failed;
    }
    for (size_t i = 0; i < s->schedule->njobs; i++) {
        if ((rc = run_job(s, i, now_s, &next_due_s)) != 0)
            goto failed;
    }
    if (now >= s->prune_at) {
        long long deleted = 0;

        s->prune_at = now + PRUNE_EVERY_MS;
        rc = sched_ledger_prune(s->pg, s->conf->group, now_s - s->conf->keep_ms / 1000, &deleted);
        if (rc == 0 && deleted > 0)
            sy_log_info("scheduler.prune", "removed %lld published tick(s) older than %lld s",
                        deleted, s->conf->keep_ms / 1000);
        else if (rc != 0)
            goto failed;
    }
    recovered(s);
    return next_due_s < 0 ? -1 : next_due_s * 1000;
failed:
    if (rc == -SY_ESTALE && sched_leader_valid(s->leader, sy_mono_ms())) {
        fence_refused(s);
        return -1;
    }
    if (rc != -SY_ESTALE)
        back_off(s, now, rc, "the ledger");
    return -1;
}

/* A follower keeps its PostgreSQL connection checked so /readyz tells the truth. */
static void check_pg(struct sched *s, int64_t now)
{
    struct sy_pg_res *res = NULL;

    if (now < s->pg_check_at)
        return;
    s->pg_check_at = now + PG_CHECK_EVERY_MS;
    if (ensure_pg(s) != 0)
        return;
    if (sy_pg_exec(s->pg, "SELECT 1", 0, NULL, &res) == 0)
        recovered(s);
    else if (atomic_exchange(&s->pg_ok, false))
        sy_log_write(SY_LOG_WARN, "scheduler.pg", -1, sy_pg_error(s->pg),
                     "PostgreSQL is unreachable");
    sy_pg_res_free(res);
}

static int sched_run(void *state)
{
    struct sched *s = state;

    while (!sy_worker_stopping(s->w)) {
        int64_t now = sy_mono_ms(), wake = now + IDLE_MAX_MS;
        bool gained = false, leading;

        if (ensure_redis(s) == 0) {
            int rc = sched_leader_step(s->leader, s->redis, now, &gained);

            if (rc == -SY_ECONN) {
                if (atomic_exchange(&s->redis_ok, false))
                    sy_log_warn("scheduler.redis", "Redis is unreachable");
            } else if (!atomic_exchange(&s->redis_ok, true)) {
                sy_log_info("scheduler.redis", "Redis is reachable");
            }
            wake = min64(wake, sched_leader_due(s->leader));
        }
        leading = sched_leader_valid(s->leader, now);
        if (gained) {
            sy_counter_add(s->m_takeovers, 1);
            sy_log_info("scheduler.leader", "leading group %s with fence %" PRIu64, s->conf->group,
                        sched_leader_fence(s->leader));
        } else if (s->was_leader && !leading) {
            sy_log_warn("scheduler.leader", "no longer leading group %s", s->conf->group);
        }
        if (leading != s->was_leader || gained)
            s->loaded = false;
        s->was_leader = leading;
        sy_gauge_set(s->m_leader, leading ? 1 : 0);

        if (leading) {
            int64_t due = lead(s, now);

            if (due >= 0)
                wake = min64(wake, sy_mono_ms() + (due - sy_wall_ms()));
            if (s->retry_at > now)
                wake = min64(wake, s->retry_at);
        } else {
            check_pg(s, now);
        }
        now = sy_mono_ms();
        if (wake > now)
            sy_worker_sleep(s->w, wake - now);
    }
    /* A clean stop hands the lease on at once instead of after its TTL. */
    sched_leader_drop(s->leader, s->redis);
    sy_gauge_set(s->m_leader, 0);
    return 0;
}

/* --- lifecycle --------------------------------------------------------------------------- */

static void sched_exit(void *state)
{
    struct sched *s = state;

    if (!s)
        return;
    sched_leader_destroy(s->leader, s->redis);
    sy_redis_destroy(s->redis);
    sy_pg_destroy(s->pg);
    sched_schedule_destroy(s->schedule);
    free(s->states);
    free(s->jm);
    free(s);
}

static int sched_init(struct sy_worker *w, void **state)
{
    const struct sched_conf *conf = sy_worker_conf(w);
    struct sched *s = calloc(1, sizeof *s);
    char err[1024], labels[160];
    int rc = -SY_ECONFIG;

    if (!s)
        return -SY_ENOMEM;
    s->w = w;
    s->conf = conf;
    s->redis_url = sy_worker_url(w, "redis");
    s->pg_url = sy_worker_url(w, "pg");
    atomic_init(&s->redis_ok, false);
    atomic_init(&s->pg_ok, false);
    if (!s->redis_url || !s->pg_url) {
        sy_log_error("worker.config",
                     "%s is required: the lease lives in Redis, the ledger in "
                     "PostgreSQL",
                     !s->redis_url ? "SY_REDIS_URL" : "SY_PG_URL");
        goto fail;
    }
    if (!sched_ledger_group_ok(conf->group)) {
        sy_log_error("worker.config",
                     "SY_SCHEDULER_GROUP: expected 1 to %d of [A-Za-z0-9._-], got '%.80s'",
                     SCHED_GROUP_MAX, conf->group);
        goto fail;
    }
    s->schedule = sched_schedule_load(conf->schedule, sy_worker_schemas(w), sy_worker_topology(w),
                                      err, sizeof err);
    if (!s->schedule) {
        sy_log_write(SY_LOG_ERROR, "worker.config", -1, err, "SY_SCHEDULE: bad schedule");
        goto fail;
    }
    snprintf(s->resource, sizeof s->resource, "scheduler:%s", conf->group);
    s->leader = sched_leader_new(s->resource, (int)conf->lease_ms);
    s->states = calloc(s->schedule->njobs, sizeof *s->states);
    s->jm = calloc(s->schedule->njobs, sizeof *s->jm);
    if (!s->leader || !s->states || !s->jm) {
        rc = -SY_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < s->schedule->njobs; i++) {
        snprintf(labels, sizeof labels, "job=\"%s\"", s->schedule->jobs[i].name);
        s->jm[i].published =
            sy_counter_get("sy_scheduler_published_total", "Ticks published", labels);
        s->jm[i].dropped = sy_counter_get("sy_scheduler_dropped_total",
                                          "Missed ticks dropped by the job's policy", labels);
    }
    s->m_leader = sy_gauge_get("sy_scheduler_leader", "1 while this replica holds the lease", "");
    s->m_takeovers =
        sy_counter_get("sy_scheduler_takeovers_total", "Times this replica took the lease", "");
    s->m_lag = sy_histogram_get("sy_scheduler_lag_seconds",
                                "How long after its due time a tick was confirmed", "");
    sy_log_info("scheduler.start", "%zu job(s) from %s; group %s; lease %lld ms",
                s->schedule->njobs, conf->schedule, conf->group, conf->lease_ms);
    *state = s;
    return 0;
fail:
    sched_exit(s);
    return rc;
}

static int sched_ready(void *state)
{
    struct sched *s = state;

    return atomic_load(&s->redis_ok) && atomic_load(&s->pg_ok) ? 0 : -1;
}

const struct sy_handler scheduler_handler = {
    .name = "scheduler",
    .conf = sched_conf_keys,
    .conf_size = sizeof(struct sched_conf),
    .init = sched_init,
    .run = sched_run,
    .ready = sched_ready,
    .exit = sched_exit,
};
