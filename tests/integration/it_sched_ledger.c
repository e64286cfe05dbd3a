/* it_sched_ledger.c - the scheduler's ledger against a real PostgreSQL (SY_PG_URL): job rows,
 * claims under fencing tokens, takeover of unconfirmed claims with their bytes intact, marking
 * ticks published, manual ticks, pruning and the recorded fence. Every test writes its own
 * group, so reruns and other users of the database never see each other's rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "scheduler/ledger.h"
#include "sy/err.h"
#include "sy/pg.h"

static char run[17];
static struct sy_pg *pg;

/* 2023-11-14T22:13:20Z, and the ticks of a job that runs every minute from there. */
#define T0         INT64_C(1700000000)
#define TICK(i)    (T0 + 60 * (int64_t)(i))
#define INSTANCE_A "it-ledger-a"
#define INSTANCE_B "it-ledger-b"

/* A msgpack map {"b": bin 00 ff 7f 80 00, "s": "x"}: binary bytes, NULs included, that a
 * text round trip would mangle. */
static const unsigned char data_bytes[] = {0x82, 0xa1, 'b',  0xc4, 0x05, 0x00, 0xff,
                                           0x7f, 0x80, 0x00, 0xa1, 's',  0xa1, 'x'};

/* --- Helpers -------------------------------------------------------------------------------- */

/* A group of this run for one test: its fence and rows are the test's alone. */
static void group_name(char *buf, size_t n, const char *test)
{
    snprintf(buf, n, "itl-%s-%s", run, test);
    assert_true(sched_ledger_group_ok(buf));
}

static struct sched_job make_job(const char *name)
{
    struct sched_job j = {0};
    j.name = (char *)name;
    j.type = "probe.work";
    j.data = (void *)data_bytes;
    j.data_len = sizeof data_bytes;
    j.every_s = 60;
    j.when = "every 1m";
    j.grace_s = 30;
    return j;
}

static struct sched_plan make_plan(size_t n, size_t first)
{
    struct sched_plan p = {0};
    for (size_t i = 0; i < n; i++)
        p.ticks[i] = TICK(first + i);
    p.n = n;
    p.next_due = -1;
    return p;
}

static void expect_ok(int rc, const char *what)
{
    if (rc != 0)
        fail_msg("%s: %s (%s)", what, sy_strerror(rc), sy_pg_error(pg));
}

/* A single value of a query with text parameters, as text (caller frees); NULL for SQL NULL
 * or when there is no row. */
static char *query_text(const char *sql, int n, const char *const *params)
{
    struct sy_pg_res *res = NULL;
    int rc = sy_pg_exec(pg, sql, n, params, &res);
    expect_ok(rc, sql);
    const char *v = sy_pg_res_rows(res) > 0 ? sy_pg_res_get(res, 0, 0) : NULL;
    char *copy = v ? strdup(v) : NULL;
    sy_pg_res_free(res);
    return copy;
}

static long long query_ll(const char *sql, int n, const char *const *params)
{
    char *v = query_text(sql, n, params);
    if (!v)
        fail_msg("no value: %s", sql);
    long long x = atoll(v);
    free(v);
    return x;
}

static long long count_ticks(const char *group, const char *job, const char *state)
{
    const char *params[] = {group, job, state};
    return query_ll("SELECT count(*) FROM sy_schedule_ticks WHERE grp = $1 AND job = $2 "
                    "AND ($3::text IS NULL OR state = $3)",
                    3, params);
}

/* "state fence instance message_id" of one tick row, or NULL without one (caller frees). */
static char *tick_row(const char *group, const char *job, const char *kind, int64_t tick)
{
    char t[24];
    snprintf(t, sizeof t, "%lld", (long long)tick);
    const char *params[] = {group, job, kind, t};
    return query_text("SELECT state || ' ' || coalesce(fence::text, '-') || ' ' || instance || ' ' "
                      "|| message_id FROM sy_schedule_ticks WHERE grp = $1 AND job = $2 AND "
                      "kind = $3 AND tick = to_timestamp($4::bigint)",
                      4, params);
}

static void expect_tick_row(const char *group, const char *job, const char *kind, int64_t tick,
                            const char *want)
{
    char *got = tick_row(group, job, kind, tick);
    if (!got || strcmp(got, want) != 0)
        fail_msg("tick row %s/%s/%s/%lld: '%s', expected '%s'", group, job, kind, (long long)tick,
                 got ? got : "(none)", want);
    free(got);
}

static struct sched_job_state load_one(const char *group, const char *job)
{
    struct sched_job j = make_job(job);
    struct sched_schedule s = {.jobs = &j, .njobs = 1, .path = "it"};
    struct sched_job_state st;
    expect_ok(sched_ledger_load(pg, group, &s, &st), "load");
    assert_string_equal(st.job, job);
    return st;
}

/* --- Job rows ------------------------------------------------------------------------------- */

static void init_job_is_idempotent_and_load_fills_missing_jobs(void **state)
{
    (void)state;
    char g[80];
    group_name(g, sizeof g, "init");
    expect_ok(sched_ledger_init_job(pg, g, "alpha", T0, 1), "init alpha");
    /* Again, later and under a newer fence: the first cursor stays. */
    expect_ok(sched_ledger_init_job(pg, g, "alpha", T0 + 3600, 2), "init alpha again");

    struct sched_job jobs[] = {make_job("never-seen"), make_job("alpha")};
    struct sched_schedule s = {.jobs = jobs, .njobs = 2, .path = "it"};
    struct sched_job_state st[2];
    memset(st, 0x55, sizeof st);
    expect_ok(sched_ledger_load(pg, g, &s, st), "load");
    assert_string_equal(st[0].job, "never-seen");
    assert_int_equal(st[0].cursor, 0);
    assert_int_equal(st[0].last_tick, 0);
    assert_int_equal(st[0].published, 0);
    assert_string_equal(st[0].last_id, "");
    assert_string_equal(st[1].job, "alpha");
    assert_int_equal(st[1].cursor, T0);
    assert_int_equal(st[1].last_tick, 0);
    assert_int_equal(st[1].published, 0);
    assert_int_equal(st[1].dropped, 0);
    const char *params[] = {g};
    assert_int_equal(query_ll("SELECT count(*) FROM sy_schedule_jobs WHERE grp = $1", 1, params),
                     1);
}

/* --- Claims --------------------------------------------------------------------------------- */

static void claim_takes_all_ticks_once_per_fence(void **state)
{
    (void)state;
    char g[80];
    group_name(g, sizeof g, "claim");
    struct sched_job j = make_job("every-minute");
    struct sched_plan p = make_plan(3, 1);
    uint64_t mask = 99;

    expect_ok(sched_ledger_init_job(pg, g, j.name, T0, 5), "init");
    expect_ok(sched_ledger_claim(pg, g, &j, &p, 5, INSTANCE_A, 0, &mask), "claim");
    assert_int_equal(mask, 0x7);
    expect_tick_row(g, j.name, "tick", TICK(1),
                    "claimed 5 " INSTANCE_A " every-minute@2023-11-14T22:14:20Z");
    expect_tick_row(g, j.name, "tick", TICK(3),
                    "claimed 5 " INSTANCE_A " every-minute@2023-11-14T22:16:20Z");
    assert_int_equal(load_one(g, j.name).cursor, TICK(3));

    /* The same fence again (a repeated plan): nothing is claimed a second time. */
    expect_ok(sched_ledger_claim(pg, g, &j, &p, 5, INSTANCE_B, 0, &mask), "claim again");
    assert_int_equal(mask, 0);
    expect_tick_row(g, j.name, "tick", TICK(2),
                    "claimed 5 " INSTANCE_A " every-minute@2023-11-14T22:15:20Z");
    assert_int_equal(count_ticks(g, j.name, NULL), 3);

    /* The data went in byte for byte. */
    const char *params[] = {g, j.name};
    char *hex = query_text("SELECT encode(data, 'hex') FROM sy_schedule_ticks WHERE grp = $1 "
                           "AND job = $2 ORDER BY tick LIMIT 1",
                           2, params);
    assert_non_null(hex);
    assert_string_equal(hex, "82a162c40500ff7f8000a173a178");
    free(hex);
}

static void published_marks_the_tick_and_updates_the_job_row(void **state)
{
    (void)state;
    char g[80];
    group_name(g, sizeof g, "pub");
    struct sched_job j = make_job("marked");
    struct sched_plan p = make_plan(3, 1);
    uint64_t mask = 0;

    expect_ok(sched_ledger_init_job(pg, g, j.name, T0, 5), "init");
    expect_ok(sched_ledger_claim(pg, g, &j, &p, 5, INSTANCE_A, 0, &mask), "claim");
    expect_ok(sched_ledger_published(pg, g, j.name, TICK(1), 0, 5, INSTANCE_B), "published 1");
    expect_tick_row(g, j.name, "tick", TICK(1),
                    "published 5 " INSTANCE_B " marked@2023-11-14T22:14:20Z");
    struct sched_job_state st = load_one(g, j.name);
    assert_int_equal(st.last_tick, TICK(1));
    assert_string_equal(st.last_id, "marked@2023-11-14T22:14:20Z");
    assert_string_equal(st.last_instance, INSTANCE_B);
    assert_int_equal(st.published, 1);
    assert_true(st.last_published > T0);
    assert_int_equal(st.last_manual, 0);

    /* Newest first, then an older one confirmed late: last_* stay with the newest. */
    expect_ok(sched_ledger_published(pg, g, j.name, TICK(3), 0, 5, INSTANCE_A), "published 3");
    expect_ok(sched_ledger_published(pg, g, j.name, TICK(2), 0, 5, INSTANCE_B), "published 2");
    st = load_one(g, j.name);
    assert_int_equal(st.last_tick, TICK(3));
    assert_string_equal(st.last_id, "marked@2023-11-14T22:16:20Z");
    assert_string_equal(st.last_instance, INSTANCE_A);
    assert_int_equal(st.published, 3);

    /* A repeated call (its commit reply was lost) succeeds and counts nothing twice. */
    expect_ok(sched_ledger_published(pg, g, j.name, TICK(3), 0, 5, INSTANCE_A), "repeated");
    assert_int_equal(load_one(g, j.name).published, 3);
    assert_int_equal(count_ticks(g, j.name, "published"), 3);

    /* A tick nobody claimed. */
    assert_int_equal(sched_ledger_published(pg, g, j.name, TICK(9), 0, 5, INSTANCE_A),
                     -SY_ENOTFOUND);
}

static void older_fence_is_refused_and_writes_nothing(void **state)
{
    (void)state;
    char g[80];
    group_name(g, sizeof g, "stale");
    struct sched_job j = make_job("fenced");
    struct sched_plan p = make_plan(2, 1);
    uint64_t mask = 0;

    expect_ok(sched_ledger_init_job(pg, g, j.name, T0, 5), "init");
    expect_ok(sched_ledger_claim(pg, g, &j, &p, 5, INSTANCE_A, 0, &mask), "claim 5");
    expect_ok(sched_ledger_published(pg, g, j.name, TICK(1), 0, 5, INSTANCE_A), "published");

    /* A leader whose lease ran out (fence 4) plans later ticks and drops some. */
    struct sched_plan late = make_plan(2, 3);
    late.dropped = 2;
    late.dropped_last = TICK(5);
    mask = 77;
    assert_int_equal(sched_ledger_claim(pg, g, &j, &late, 4, INSTANCE_B, 0, &mask), -SY_ESTALE);
    assert_int_equal(mask, 0);
    assert_int_equal(sched_ledger_published(pg, g, j.name, TICK(2), 0, 4, INSTANCE_B), -SY_ESTALE);
    assert_int_equal(sched_ledger_init_job(pg, g, "other", T0, 4), -SY_ESTALE);
    struct sched_pending *pend = NULL;
    size_t n = 5;
    assert_int_equal(sched_ledger_pending(pg, g, 4, INSTANCE_B, 0, &pend, &n, 10), -SY_ESTALE);
    assert_null(pend);
    assert_int_equal(n, 0);

    /* Nothing of it was written. */
    assert_int_equal(count_ticks(g, j.name, NULL), 2);
    expect_tick_row(g, j.name, "tick", TICK(2),
                    "claimed 5 " INSTANCE_A " fenced@2023-11-14T22:15:20Z");
    struct sched_job_state st = load_one(g, j.name);
    assert_int_equal(st.cursor, TICK(2));
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.published, 1);
    assert_int_equal(load_one(g, "other").cursor, 0);
    uint64_t fence = 0;
    expect_ok(sched_ledger_fence(pg, g, &fence), "fence");
    assert_int_equal(fence, 5);
}

static void pending_returns_unconfirmed_claims_and_takes_them_over(void **state)
{
    (void)state;
    char g[80];
    group_name(g, sizeof g, "pend");
    struct sched_job a = make_job("pa"), b = make_job("pb");
    struct sched_plan pa = make_plan(2, 1), pb = make_plan(1, 0);
    uint64_t mask = 0;
    char manual_id[SCHED_TICK_ID_MAX + 1];

    expect_ok(sched_ledger_claim(pg, g, &a, &pa, 5, INSTANCE_A, 0, &mask), "claim a");
    expect_ok(sched_ledger_claim(pg, g, &b, &pb, 5, INSTANCE_A, 0, &mask), "claim b");
    expect_ok(sched_ledger_published(pg, g, a.name, TICK(1), 0, 5, INSTANCE_A), "published a1");
    expect_ok(sched_ledger_claim_manual(pg, g, &b, TICK(1) + 30, "syctl", manual_id), "manual");

    /* A manual claim just made may still be publishing in its syctl: not taken yet. */
    struct sched_pending *p = NULL;
    size_t n = 0;
    expect_ok(sched_ledger_pending(pg, g, 6, INSTANCE_B, 0, &p, &n, 100), "pending, fresh manual");
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(p[i].manual, 0);
    sched_pending_free(p, n);
    const char *gp[] = {g};
    expect_ok(sy_pg_exec(pg,
                         "UPDATE sy_schedule_ticks SET claimed_at = now() - interval '1 minute' "
                         "WHERE grp = $1 AND kind = 'manual'",
                         1, gp, NULL),
              "age the manual claim");

    /* A new leader (fence 6): the three unconfirmed claims, oldest first, bytes intact. */
    expect_ok(sched_ledger_pending(pg, g, 6, INSTANCE_B, 0, &p, &n, 100), "pending");
    assert_int_equal(n, 3);
    assert_string_equal(p[0].job, "pb");
    assert_int_equal(p[0].tick, TICK(0));
    assert_int_equal(p[0].manual, 0);
    assert_string_equal(p[0].id, "pb@2023-11-14T22:13:20Z");
    assert_string_equal(p[1].job, "pb");
    assert_int_equal(p[1].tick, TICK(1) + 30);
    assert_int_equal(p[1].manual, 1);
    assert_string_equal(p[1].id, manual_id);
    assert_string_equal(p[1].id, "pb@2023-11-14T22:14:50Z/manual");
    assert_string_equal(p[2].job, "pa");
    assert_int_equal(p[2].tick, TICK(2));
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(p[i].type, "probe.work");
        assert_int_equal(p[i].fence, 6);
        assert_int_equal(p[i].data_len, sizeof data_bytes);
        assert_memory_equal(p[i].data, data_bytes, sizeof data_bytes);
    }
    sched_pending_free(p, n);
    expect_tick_row(g, "pb", "manual", TICK(1) + 30,
                    "claimed 6 " INSTANCE_B " pb@2023-11-14T22:14:50Z/manual");

    /* The old leader can no longer mark them; the new one can. */
    assert_int_equal(sched_ledger_published(pg, g, "pa", TICK(2), 0, 5, INSTANCE_A), -SY_ESTALE);
    assert_int_equal(sched_ledger_published(pg, g, "pb", TICK(1) + 30, 1, 0, "syctl"), -SY_ESTALE);
    expect_ok(sched_ledger_published(pg, g, "pa", TICK(2), 0, 6, INSTANCE_B), "published a2");
    expect_ok(sched_ledger_published(pg, g, "pb", TICK(1) + 30, 1, 6, INSTANCE_B), "manual");
    assert_int_equal(count_ticks(g, "pa", "published"), 2);
    assert_int_equal(count_ticks(g, "pb", "claimed"), 1);
    assert_int_equal(load_one(g, "pa").published, 2);
    /* A manual tick counts in last_manual, not in the scheduled totals. */
    struct sched_job_state st = load_one(g, "pb");
    assert_int_equal(st.published, 0);
    assert_true(st.last_manual > 0);

    /* At most max, and what was left is still there for the next call. */
    expect_ok(sched_ledger_pending(pg, g, 7, INSTANCE_A, 0, &p, &n, 1), "pending max 1");
    assert_int_equal(n, 1);
    assert_string_equal(p[0].id, "pb@2023-11-14T22:13:20Z");
    assert_int_equal(p[0].fence, 7);
    sched_pending_free(p, n);
}

static void published_tick_is_never_claimed_again(void **state)
{
    (void)state;
    char g[80];
    group_name(g, sizeof g, "never");
    struct sched_job j = make_job("once");
    struct sched_plan p = make_plan(3, 1);
    uint64_t mask = 0;

    expect_ok(sched_ledger_init_job(pg, g, j.name, T0, 5), "init");
    expect_ok(sched_ledger_claim(pg, g, &j, &p, 5, INSTANCE_A, 0, &mask), "claim");
    expect_ok(sched_ledger_published(pg, g, j.name, TICK(2), 0, 5, INSTANCE_A), "published");

    /* A newer leader with the same plan takes over the unconfirmed ticks only. */
    expect_ok(sched_ledger_claim(pg, g, &j, &p, 9, INSTANCE_B, 0, &mask), "claim 9");
    assert_int_equal(mask, 0x5);
    expect_tick_row(g, j.name, "tick", TICK(2),
                    "published 5 " INSTANCE_A " once@2023-11-14T22:15:20Z");
    expect_tick_row(g, j.name, "tick", TICK(1),
                    "claimed 9 " INSTANCE_B " once@2023-11-14T22:14:20Z");

    /* Nor after its row was pruned: a tick at or before the cursor without a row (pruned or
     * dropped) is not the scheduler's to publish. */
    const char *params[] = {g};
    expect_ok(sy_pg_exec(pg,
                         "UPDATE sy_schedule_ticks SET published_at = now() - interval '3 days' "
                         "WHERE grp = $1 AND state = 'published'",
                         1, params, NULL),
              "age");
    long long deleted = 0;
    expect_ok(sched_ledger_prune(pg, g, th_now_ms() / 1000 - 86400, &deleted), "prune");
    assert_int_equal(deleted, 1);
    struct sched_plan again = make_plan(1, 2);
    expect_ok(sched_ledger_claim(pg, g, &j, &again, 10, INSTANCE_B, 0, &mask), "claim pruned");
    assert_int_equal(mask, 0);
    assert_null(tick_row(g, j.name, "tick", TICK(2)));
}

/* Two replicas that both believe they lead (Redis lost the lease and granted it again): the
 * newer fence leaves the other's fresh claims alone, because their owner may be sending them
 * right now; the owner records its publish even though the group's fence moved on; only a
 * claim older than the lease, which nobody can still be sending, is taken over. */
static void young_claims_of_another_fence_are_left_to_their_owner(void **state)
{
    (void)state;
    char g[80];
    group_name(g, sizeof g, "young");
    struct sched_job j = make_job("split");
    struct sched_plan p = make_plan(3, 1);
    uint64_t mask = 0;
    struct sched_pending *pend = NULL;
    size_t n = 0;

    expect_ok(sched_ledger_init_job(pg, g, j.name, T0, 5), "init");
    expect_ok(sched_ledger_claim(pg, g, &j, &p, 5, INSTANCE_A, 60, &mask), "claim 5");
    assert_int_equal(mask, 0x7);

    /* The newer fence plans the same ticks: none is its to publish yet. */
    expect_ok(sched_ledger_claim(pg, g, &j, &p, 6, INSTANCE_B, 60, &mask), "claim 6");
    assert_int_equal(mask, 0);
    expect_ok(sched_ledger_pending(pg, g, 6, INSTANCE_B, 60, &pend, &n, 10), "pending 6");
    assert_int_equal(n, 0);
    sched_pending_free(pend, n);

    /* The old owner's publish of tick 1 went out: it records it. */
    expect_ok(sched_ledger_published(pg, g, j.name, TICK(1), 0, 5, INSTANCE_A), "published 5");
    expect_tick_row(g, j.name, "tick", TICK(1),
                    "published 5 " INSTANCE_A " split@2023-11-14T22:14:20Z");

    /* Past the lease, the two left are abandoned and taken over; the published one is not. */
    const char *params[] = {g};
    expect_ok(sy_pg_exec(pg,
                         "UPDATE sy_schedule_ticks SET claimed_at = now() - interval '2 minutes' "
                         "WHERE grp = $1",
                         1, params, NULL),
              "age");
    expect_ok(sched_ledger_pending(pg, g, 6, INSTANCE_B, 60, &pend, &n, 10), "pending 6 later");
    assert_int_equal(n, 2);
    assert_int_equal(pend[0].tick, TICK(2));
    assert_int_equal(pend[1].tick, TICK(3));
    sched_pending_free(pend, n);
    /* Taken over means ours now, with a fresh age: the old owner can no longer mark them, and
     * our own pending list returns them at once. */
    assert_int_equal(sched_ledger_published(pg, g, j.name, TICK(2), 0, 5, INSTANCE_A), -SY_ESTALE);
    expect_ok(sched_ledger_pending(pg, g, 6, INSTANCE_B, 60, &pend, &n, 10), "pending 6 own");
    assert_int_equal(n, 2);
    sched_pending_free(pend, n);
    expect_ok(sched_ledger_published(pg, g, j.name, TICK(2), 0, 6, INSTANCE_B), "published 6");
    assert_int_equal(count_ticks(g, j.name, "published"), 2);
    assert_int_equal(count_ticks(g, j.name, "claimed"), 1);
}

static void dropped_ticks_move_the_cursor_and_count_once(void **state)
{
    (void)state;
    char g[80];
    group_name(g, sizeof g, "drop");
    struct sched_job j = make_job("lossy");
    uint64_t mask = 0;

    expect_ok(sched_ledger_init_job(pg, g, j.name, T0, 3), "init");
    /* Ticks 1..4 missed and dropped, 5 and 6 planned. */
    struct sched_plan p = make_plan(2, 5);
    p.dropped = 4;
    p.dropped_last = TICK(4);
    expect_ok(sched_ledger_claim(pg, g, &j, &p, 3, INSTANCE_A, 0, &mask), "claim");
    assert_int_equal(mask, 0x3);
    struct sched_job_state st = load_one(g, j.name);
    assert_int_equal(st.cursor, TICK(6));
    assert_int_equal(st.dropped, 4);
    /* Repeated: the cursor is past the dropped ticks, so they are not counted again. */
    expect_ok(sched_ledger_claim(pg, g, &j, &p, 3, INSTANCE_A, 0, &mask), "claim again");
    assert_int_equal(load_one(g, j.name).dropped, 4);

    /* A plan of dropped ticks only moves the cursor; a dropped tick is never claimed later. */
    struct sched_plan d = {.dropped = 2, .dropped_last = TICK(8), .next_due = -1};
    expect_ok(sched_ledger_claim(pg, g, &j, &d, 3, INSTANCE_A, 0, &mask), "drop only");
    assert_int_equal(mask, 0);
    st = load_one(g, j.name);
    assert_int_equal(st.cursor, TICK(8));
    assert_int_equal(st.dropped, 6);
    struct sched_plan late = make_plan(1, 7);
    expect_ok(sched_ledger_claim(pg, g, &j, &late, 4, INSTANCE_B, 0, &mask), "claim dropped");
    assert_int_equal(mask, 0);
    assert_int_equal(count_ticks(g, j.name, NULL), 2);
    assert_int_equal(load_one(g, j.name).cursor, TICK(8));
}

/* --- Manual ticks, pruning, fences, listing ------------------------------------------------- */

static void manual_claim_is_once_per_second(void **state)
{
    (void)state;
    char g[80], id[SCHED_TICK_ID_MAX + 1], id2[SCHED_TICK_ID_MAX + 1];
    group_name(g, sizeof g, "manual");
    struct sched_job j = make_job("by-hand");
    int64_t now = T0 + 7;

    expect_ok(sched_ledger_claim_manual(pg, g, &j, now, "syctl", id), "manual");
    assert_string_equal(id, "by-hand@2023-11-14T22:13:27Z/manual");
    strcpy(id2, "untouched");
    assert_int_equal(sched_ledger_claim_manual(pg, g, &j, now, "syctl", id2), -SY_EEXISTS);
    assert_string_equal(id2, "untouched");
    expect_ok(sched_ledger_claim_manual(pg, g, &j, now + 1, "syctl", id2), "next second");
    assert_string_equal(id2, "by-hand@2023-11-14T22:13:28Z/manual");
    expect_tick_row(g, j.name, "manual", now,
                    "claimed - syctl by-hand@2023-11-14T22:13:27Z/manual");

    /* No job row: a manual tick must not give the scheduler a cursor. */
    assert_int_equal(load_one(g, j.name).cursor, 0);
    expect_ok(sched_ledger_published(pg, g, j.name, now, 1, 0, "syctl"), "published");
    expect_tick_row(g, j.name, "manual", now,
                    "published - syctl by-hand@2023-11-14T22:13:27Z/manual");
    /* Marked before by nobody's fence: a repeat is fine. */
    expect_ok(sched_ledger_published(pg, g, j.name, now, 1, 0, "syctl"), "repeat");
    assert_int_equal(count_ticks(g, j.name, "published"), 1);
}

static void prune_keeps_claimed_and_recent_rows(void **state)
{
    (void)state;
    char g[80];
    group_name(g, sizeof g, "prune");
    struct sched_job j = make_job("pruned");
    struct sched_plan p = make_plan(3, 1);
    uint64_t mask = 0;

    expect_ok(sched_ledger_claim(pg, g, &j, &p, 2, INSTANCE_A, 0, &mask), "claim");
    expect_ok(sched_ledger_published(pg, g, j.name, TICK(1), 0, 2, INSTANCE_A), "published 1");
    expect_ok(sched_ledger_published(pg, g, j.name, TICK(2), 0, 2, INSTANCE_A), "published 2");
    /* Tick 1 was confirmed two days ago, tick 3 was claimed then and is still unconfirmed. */
    char t1[24];
    snprintf(t1, sizeof t1, "%lld", (long long)TICK(1));
    const char *params[] = {g, t1};
    expect_ok(
        sy_pg_exec(pg,
                   "UPDATE sy_schedule_ticks SET claimed_at = now() - interval '2 days', "
                   "published_at = CASE WHEN state = 'published' "
                   "THEN now() - interval '2 days' END "
                   "WHERE grp = $1 AND (tick = to_timestamp($2::bigint) OR state = 'claimed')",
                   2, params, NULL),
        "age");
    long long deleted = -1;
    expect_ok(sched_ledger_prune(pg, g, th_now_ms() / 1000 - 86400, &deleted), "prune");
    assert_int_equal(deleted, 1);
    assert_null(tick_row(g, j.name, "tick", TICK(1)));
    expect_tick_row(g, j.name, "tick", TICK(2),
                    "published 2 " INSTANCE_A " pruned@2023-11-14T22:15:20Z");
    expect_tick_row(g, j.name, "tick", TICK(3),
                    "claimed 2 " INSTANCE_A " pruned@2023-11-14T22:16:20Z");
    /* The job row stays, totals included. */
    assert_int_equal(load_one(g, j.name).published, 2);
    expect_ok(sched_ledger_prune(pg, g, th_now_ms() / 1000 - 86400, NULL), "prune again");
    assert_int_equal(count_ticks(g, j.name, NULL), 2);
}

static void fence_is_read_back(void **state)
{
    (void)state;
    char g[80], fresh[80];
    group_name(g, sizeof g, "fence");
    group_name(fresh, sizeof fresh, "fence-none");
    uint64_t fence = 99;
    expect_ok(sched_ledger_fence(pg, fresh, &fence), "fence of an unused group");
    assert_int_equal(fence, 0);
    expect_ok(sched_ledger_init_job(pg, g, "f", T0, 41), "init 41");
    expect_ok(sched_ledger_init_job(pg, g, "f", T0, 42), "init 42");
    expect_ok(sched_ledger_fence(pg, g, &fence), "fence");
    assert_int_equal(fence, 42);
}

static void jobs_lists_rows_manual_only_jobs_and_pending_counts(void **state)
{
    (void)state;
    char g[80], id[SCHED_TICK_ID_MAX + 1];
    group_name(g, sizeof g, "jobs");
    struct sched_job a = make_job("a-sched"), m = make_job("b-manual");
    struct sched_plan p = make_plan(3, 1);
    uint64_t mask = 0;

    expect_ok(sched_ledger_claim(pg, g, &a, &p, 2, INSTANCE_A, 0, &mask), "claim");
    expect_ok(sched_ledger_published(pg, g, a.name, TICK(3), 0, 2, INSTANCE_A), "published");
    expect_ok(sched_ledger_claim_manual(pg, g, &m, T0, "syctl", id), "manual 1");
    expect_ok(sched_ledger_published(pg, g, m.name, T0, 1, 0, "syctl"), "published manual");
    expect_ok(sched_ledger_claim_manual(pg, g, &m, T0 + 1, "syctl", id), "manual 2");

    struct sched_ledger_job *jobs = NULL;
    size_t n = 0;
    expect_ok(sched_ledger_jobs(pg, g, &jobs, &n, 100), "jobs");
    assert_int_equal(n, 2);
    assert_string_equal(jobs[0].state.job, "a-sched");
    assert_int_equal(jobs[0].state.cursor, TICK(3));
    assert_int_equal(jobs[0].state.last_tick, TICK(3));
    assert_string_equal(jobs[0].state.last_id, "a-sched@2023-11-14T22:16:20Z");
    assert_int_equal(jobs[0].pending, 2);
    assert_int_equal(jobs[0].pending_oldest, TICK(1));
    assert_string_equal(jobs[0].last_manual_id, "");
    assert_string_equal(jobs[1].state.job, "b-manual");
    assert_int_equal(jobs[1].state.cursor, 0);
    assert_true(jobs[1].state.last_manual > 0);
    assert_string_equal(jobs[1].last_manual_id, "b-manual@2023-11-14T22:13:20Z/manual");
    assert_int_equal(jobs[1].pending, 1);
    assert_int_equal(jobs[1].pending_oldest, T0 + 1);
    free(jobs);

    expect_ok(sched_ledger_jobs(pg, g, &jobs, &n, 1), "jobs max 1");
    assert_int_equal(n, 1);
    free(jobs);
}

static void bad_arguments_are_refused_before_the_database(void **state)
{
    (void)state;
    char g[80], id[SCHED_TICK_ID_MAX + 1];
    group_name(g, sizeof g, "bad");
    struct sched_job j = make_job("bad");
    struct sched_plan p = make_plan(2, 1);
    uint64_t mask = 0;

    assert_false(sched_ledger_group_ok(""));
    assert_false(sched_ledger_group_ok("has space"));
    assert_false(sched_ledger_group_ok("quote'"));
    char long_group[SCHED_GROUP_MAX + 2];
    memset(long_group, 'g', sizeof long_group - 1);
    long_group[sizeof long_group - 1] = '\0';
    assert_false(sched_ledger_group_ok(long_group));
    assert_int_equal(sched_ledger_init_job(pg, long_group, "x", T0, 1), -SY_EINVAL);
    /* Out of order, duplicated, or out of range ticks. */
    p.ticks[1] = p.ticks[0];
    assert_int_equal(sched_ledger_claim(pg, g, &j, &p, 1, INSTANCE_A, 0, &mask), -SY_EINVAL);
    p = make_plan(1, 0);
    p.ticks[0] = -5;
    assert_int_equal(sched_ledger_claim(pg, g, &j, &p, 1, INSTANCE_A, 0, &mask), -SY_EINVAL);
    p = make_plan(1, 0);
    assert_int_equal(sched_ledger_claim(pg, g, &j, &p, 0, INSTANCE_A, 0, &mask), -SY_EINVAL);
    char long_instance[SCHED_INSTANCE_MAX + 2];
    memset(long_instance, 'i', sizeof long_instance - 1);
    long_instance[sizeof long_instance - 1] = '\0';
    assert_int_equal(sched_ledger_claim(pg, g, &j, &p, 1, long_instance, 0, &mask), -SY_EINVAL);
    /* A scheduled tick always has a fence. */
    assert_int_equal(sched_ledger_published(pg, g, "bad", T0, 0, 0, INSTANCE_A), -SY_EINVAL);
    j.data_len = 0;
    assert_int_equal(sched_ledger_claim_manual(pg, g, &j, T0, "syctl", id), -SY_EINVAL);
    const char *params[] = {g};
    assert_int_equal(query_ll("SELECT count(*) FROM sy_schedule_ticks WHERE grp = $1", 1, params),
                     0);
    uint64_t fence = 7;
    expect_ok(sched_ledger_fence(pg, g, &fence), "fence");
    assert_int_equal(fence, 0);
}

static int setup(void **state)
{
    (void)state;
    char err[512] = "", dir[1024];
    pg = sy_pg_connect(th_need_env("SY_PG_URL"), err, sizeof err);
    if (!pg) {
        fprintf(stderr, "sy_pg_connect: %s\n", err);
        return -1;
    }
    snprintf(dir, sizeof dir, "%s/schemas/sql/postgres", th_need_env("SY_SOURCE_DIR"));
    int rc = sy_pg_migrate(pg, dir, NULL, NULL, err, sizeof err);
    if (rc) {
        fprintf(stderr, "migrate: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sy_pg_destroy(pg);
    pg = NULL;
    return 0;
}

int main(void)
{
    th_need_env("SY_PG_URL");
    th_run_id(run);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(init_job_is_idempotent_and_load_fills_missing_jobs),
        cmocka_unit_test(claim_takes_all_ticks_once_per_fence),
        cmocka_unit_test(published_marks_the_tick_and_updates_the_job_row),
        cmocka_unit_test(older_fence_is_refused_and_writes_nothing),
        cmocka_unit_test(pending_returns_unconfirmed_claims_and_takes_them_over),
        cmocka_unit_test(published_tick_is_never_claimed_again),
        cmocka_unit_test(young_claims_of_another_fence_are_left_to_their_owner),
        cmocka_unit_test(dropped_ticks_move_the_cursor_and_count_once),
        cmocka_unit_test(manual_claim_is_once_per_second),
        cmocka_unit_test(prune_keeps_claimed_and_recent_rows),
        cmocka_unit_test(fence_is_read_back),
        cmocka_unit_test(jobs_lists_rows_manual_only_jobs_and_pending_counts),
        cmocka_unit_test(bad_arguments_are_refused_before_the_database),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
