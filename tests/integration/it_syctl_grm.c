/* it_syctl_grm.c - `syctl grm status|history` run as an operator runs it, against the real
 * PostgreSQL and MariaDB: every figure of status after seeding the ledger, the newest rows of
 * history, a GRM that is away (reported, exit 0), a ledger that is away (exit 69), a bad map
 * (exit 78) and bad arguments (exit 2).
 *
 * The ledger's tables are shared with every other test and with any sy-grievance writing to
 * the same database, possibly while this test runs. So each count syctl prints is checked
 * against the rows that are not this run's, counted here right before and right after syctl
 * ran (tried again while they moved), plus exactly what was seeded; the monitor's figures
 * likewise against what the table holds. The rows status and history must pick by time (the
 * newest push, the newest failures, the newest exchanges) are seeded an hour in the future, so
 * nothing written meanwhile is newer; the watermark lives under a GRM table named after the
 * run, and the oldest pending change is from 2001. Every seeded row carries the run's id and
 * is removed at the end, with the ones an earlier run that crashed left behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "sy/pg.h"

#define RUN_TIMEOUT_MS 60000
#define ID_PREFIX      "itsg-" /* every grievance and task id this test makes */

static char run_id[17];
static const char *syctl_bin;
static char map_path[1100], off_path[1100], table[32], prefix[40];
static struct sy_pg *pg;
static json_t *saved_monitor; /* system_monitoring's 'grm' rows as they were */

/* --- Running syctl -------------------------------------------------------------------------- */

struct out {
    int code;
    char *out, *err;
};

static void out_free(struct out *o)
{
    free(o->out);
    free(o->err);
    memset(o, 0, sizeof *o);
}

/* Runs syctl with SY_GRM_MAP = the run's map unless env ("K=V" sets, "K" alone unsets) says
 * otherwise; args NULL-terminated. */
static struct out syctl(const char *const *env, const char *const *args)
{
    const char *all[32];
    char map[1200];
    size_t n = 0;
    struct out o = {0};

    snprintf(map, sizeof map, "SY_GRM_MAP=%s", map_path);
    all[n++] = map;
    for (size_t i = 0; env && env[i] && n < 31; i++)
        all[n++] = env[i];
    all[n] = NULL;
    o.code = th_run(syctl_bin, args, all, RUN_TIMEOUT_MS, &o.out, &o.err);
    if (o.code < 0)
        fail_msg("syctl could not be run, or did not finish within %d ms", RUN_TIMEOUT_MS);
    return o;
}

#define ARGS(...)               ((const char *const[]){__VA_ARGS__, NULL})
#define run_syctl(...)          syctl(NULL, ARGS(__VA_ARGS__))
#define run_syctl_env(env, ...) syctl(env, ARGS(__VA_ARGS__))

static void expect_code(const struct out *o, int code)
{
    if (o->code != code)
        fail_msg("exit %d, expected %d\n--- stdout\n%s--- stderr\n%s", o->code, code, o->out,
                 o->err);
}

static void expect_error(const struct out *o, const char *needle)
{
    const char *nl = strchr(o->err, '\n');
    if (strncmp(o->err, "syctl: ", 7) != 0 || !nl || nl[1] != '\0' || !strstr(o->err, needle))
        fail_msg("expected one error line with '%s' on stderr, got:\n%s", needle, o->err);
}

static json_t *parse_json(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (!v)
        fail_msg("not JSON (%s): %s", e.text, text);
    return v;
}

static json_t *status_json(void)
{
    struct out o = run_syctl("grm", "status", "--json");
    expect_code(&o, 0);
    json_t *st = parse_json(o.out);
    out_free(&o);
    assert_true(json_is_true(json_object_get(st, "ledger")));
    return st;
}

/* st at a path of object keys ("sync", "last_24h", "push", "ok"). */
static const json_t *at_path(const json_t *st, const char *const *keys)
{
    const json_t *v = st;
    for (size_t i = 0; keys[i]; i++) {
        v = json_object_get(v, keys[i]);
        if (!v)
            fail_msg("no '%s' in the status", keys[i]);
    }
    return v;
}
#define PATH(...) ((const char *const[]){__VA_ARGS__, NULL})

static long long count_of(const json_t *st, const char *const *keys)
{
    const json_t *v = at_path(st, keys);
    if (!json_is_integer(v))
        fail_msg("'%s…' is not an integer", keys[0]);
    return (long long)json_integer_value(v);
}

static void expect_str(const json_t *st, const char *const *keys, const char *want)
{
    const char *got = json_string_value(at_path(st, keys));
    if (!got || strcmp(got, want) != 0)
        fail_msg("'%s…': got '%s', expected '%s'", keys[0], got ? got : "(not a string)", want);
}

static const char *str_or_empty(const json_t *st, const char *const *keys)
{
    const char *v = json_string_value(at_path(st, keys));
    return v ? v : "";
}

/* --- The database ----------------------------------------------------------------------------- */

static void sql(const char *text, int n, const char *const *params)
{
    struct sy_pg_res *res = NULL;
    if (sy_pg_exec(pg, text, n, params, &res) != 0)
        fail_msg("%s: %s", text, sy_pg_error(pg));
    sy_pg_res_free(res);
}

/* The first cell of a one-row query, copied into out. */
static void sql_text(const char *text, int n, const char *const *params, char *out, size_t len)
{
    struct sy_pg_res *res = NULL;
    if (sy_pg_exec(pg, text, n, params, &res) != 0 || sy_pg_res_rows(res) != 1)
        fail_msg("%s: %s", text, sy_pg_error(pg));
    snprintf(out, len, "%s", sy_pg_res_get(res, 0, 0) ? sy_pg_res_get(res, 0, 0) : "");
    sy_pg_res_free(res);
}

#define UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* Removes what a run of this test seeded: this run's (pattern prefix%), or what any earlier
 * run left behind after a crash (ID_PREFIX%). */
static void remove_seeded(const char *pattern)
{
    const char *p[] = {pattern};
    sql("DELETE FROM sync_history WHERE grievance_id LIKE $1", 1, p);
    sql("DELETE FROM tasks WHERE task_id LIKE $1", 1, p);
    sql("DELETE FROM grm_sync WHERE grievance_id LIKE $1", 1, p);
    sql("DELETE FROM grievances WHERE grievance_id LIKE $1", 1, p);
    sql("DELETE FROM users u WHERE name = 'it_syctl_grm'"
        " AND NOT EXISTS (SELECT 1 FROM grievances g WHERE g.phone_number = u.phone_number)",
        0, NULL);
}

static void save_monitor(void)
{
    struct sy_pg_res *res = NULL;
    assert_int_equal(sy_pg_exec(pg,
                                "SELECT name, value, at::text FROM system_monitoring"
                                " WHERE component = 'grm' AND name IN ('last_push', 'last_error')",
                                0, NULL, &res),
                     0);
    saved_monitor = json_array();
    for (int i = 0; i < sy_pg_res_rows(res); i++) {
        const char *v = sy_pg_res_get(res, i, 1);
        json_array_append_new(saved_monitor, json_pack("[s, o, s]", sy_pg_res_get(res, i, 0),
                                                       v ? json_string(v) : json_null(),
                                                       sy_pg_res_get(res, i, 2)));
    }
    sy_pg_res_free(res);
}

/* Puts system_monitoring's rows back unless a worker wrote them meanwhile. */
static void restore_monitor(void)
{
    if (!saved_monitor)
        return;
    sql("DELETE FROM system_monitoring WHERE component = 'grm' AND name IN ('last_push',"
        " 'last_error') AND at IN ('2026-01-02 03:06:00+00', '2026-01-02 03:07:00+00')",
        0, NULL);
    size_t i;
    json_t *row;
    json_array_foreach(saved_monitor, i, row)
    {
        const char *p[] = {json_string_value(json_array_get(row, 0)),
                           json_string_value(json_array_get(row, 1)),
                           json_string_value(json_array_get(row, 2))};
        sql("INSERT INTO system_monitoring (component, name, value, at)"
            " VALUES ('grm', $1, $2, $3::timestamptz) ON CONFLICT DO NOTHING",
            3, p);
    }
    json_decref(saved_monitor);
    saved_monitor = NULL;
}

/* The figures of rows that are not this run's, and the monitor's, as {"path": value}. */
static json_t *others(void)
{
    static const char *const q[] = {
        "SELECT 'sync/all_time/' || direction || '/' || outcome, count(*)::text FROM sync_history"
        " WHERE grievance_id IS NULL OR grievance_id NOT LIKE $1 GROUP BY direction, outcome",
        "SELECT 'sync/last_24h/' || direction || '/' || outcome, count(*)::text FROM sync_history"
        " WHERE (grievance_id IS NULL OR grievance_id NOT LIKE $1)"
        " AND at > now() - interval '24 hours' GROUP BY direction, outcome",
        "SELECT 'tasks/' || status, count(*)::text FROM tasks WHERE task_id NOT LIKE $1"
        " GROUP BY status",
        "SELECT 'pending', count(*)::text FROM grm_sync WHERE pending"
        " AND grievance_id NOT LIKE $1",
        "SELECT 'monitor/' || name, coalesce(value, '') || ' @ ' || " UTC(
            "at") " FROM system_monitoring WHERE component = 'grm' AND name IN ('last_push', "
                  "'last_error')",
    };
    char pattern[64];
    json_t *o = json_object();
    snprintf(pattern, sizeof pattern, "%s%%", prefix);
    const char *p[] = {pattern};
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        struct sy_pg_res *res = NULL;
        int np = strstr(q[i], "$1") ? 1 : 0;
        if (sy_pg_exec(pg, q[i], np, p, &res) != 0)
            fail_msg("%s: %s", q[i], sy_pg_error(pg));
        for (int r = 0; r < sy_pg_res_rows(res); r++)
            json_object_set_new(o, sy_pg_res_get(res, r, 0), json_string(sy_pg_res_get(res, r, 1)));
        sy_pg_res_free(res);
    }
    return o;
}

static long long other_count(const json_t *o, const char *path)
{
    const char *v = json_string_value(json_object_get(o, path));
    return v ? strtoll(v, NULL, 10) : 0;
}

/* syctl's status, with the figures of the rows that are not this run's as they were while it
 * ran: read before and after, and run again while they differ. */
static json_t *status_between(json_t **other)
{
    for (int attempt = 0; attempt < 10; attempt++) {
        json_t *before = others();
        json_t *st = status_json();
        json_t *after = others();
        if (json_equal(before, after)) {
            json_decref(before);
            *other = after;
            return st;
        }
        json_decref(before);
        json_decref(after);
        json_decref(st);
        th_sleep_ms(200);
    }
    fail_msg("the ledger kept changing under syctl");
    return NULL;
}

/* What seed() put in and what status must therefore show. */
struct seeded {
    char pushed_at[32]; /* the newest grm_sync.pushed_at */
    char newest_failed[5][96];
};

/* Ids of the run: <prefix>g1..g4 grievances; sync_history rows for each outcome and
 * direction, inside and outside the last 24 hours; tasks in each status; a watermark for the
 * run's table; the monitor's last push and last error. */
static void seed(struct seeded *s)
{
    char phone[24], ids[4][64];
    unsigned long long digits = strtoull(run_id + 6, NULL, 16) % 10000000000ULL;
    snprintf(phone, sizeof phone, "+1%010llu", digits);
    for (int i = 0; i < 4; i++)
        snprintf(ids[i], sizeof ids[i], "%sg%d", prefix, i + 1);

    const char *pu[] = {phone};
    sql("INSERT INTO users (phone_number, name) VALUES ($1, 'it_syctl_grm')"
        " ON CONFLICT DO NOTHING",
        1, pu);
    for (int i = 0; i < 4; i++) {
        const char *p[] = {ids[i], phone};
        sql("INSERT INTO grievances (grievance_id, phone_number, project_type, description)"
            " VALUES ($1, $2, 'road', 'seeded by it_syctl_grm')",
            2, p);
    }
    /* g1, g2 pending (g1 the oldest change anywhere); g3 pushed "in an hour" (the newest push
     * anywhere), g4 a day ago. */
    const char *g[] = {ids[0], ids[1], ids[2], ids[3]};
    sql("INSERT INTO grm_sync (grievance_id, pending, changed_at, pushed_at) VALUES"
        " ($1, true, '2001-02-03 04:05:06+00', NULL),"
        " ($2, true, now(), NULL),"
        " ($3, false, now() - interval '1 hour', now() + interval '1 hour'),"
        " ($4, false, now() - interval '2 days', now() - interval '1 day')",
        4, g);
    sql_text("SELECT " UTC("pushed_at") " FROM grm_sync WHERE grievance_id = $1", 1, &g[2],
             s->pushed_at, sizeof s->pushed_at);

    /* sync_history, an hour ahead and newest first by a millisecond each: the first five
     * failed rows are the newest failures anywhere, the first three rows the newest rows. */
    static const struct {
        const char *dir, *outcome;
        int gi;
        bool old; /* three days ago: all time, not the last 24 h */
    } rows[] = {
        {"push", "failed", 0, false},  {"pull", "failed", 1, false}, {"push", "failed", 2, false},
        {"push", "failed", 3, false},  {"pull", "failed", 0, false}, {"push", "ok", 1, false},
        {"push", "ok", 2, false},      {"pull", "ok", 3, false},     {"pull", "conflict", 0, false},
        {"push", "skipped", 1, false}, {"push", "ok", 2, true},      {"pull", "failed", 3, true},
        {"pull", "conflict", 0, true},
    };
    /* One transaction, so now() is one instant for every row. */
    assert_int_equal(sy_pg_begin(pg), 0);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char ms[16], detail[96];
        snprintf(ms, sizeof ms, "%zu", i + 1);
        snprintf(detail, sizeof detail, "seeded %zu: %s %s", i, rows[i].dir, rows[i].outcome);
        const char *p[] = {rows[i].dir,
                           ids[rows[i].gi],
                           rows[i].outcome,
                           detail,
                           ms,
                           rows[i].old ? "3 days" : "0 days"};
        sql("INSERT INTO sync_history (direction, grievance_id, outcome, pg_status, grm_status,"
            " detail, at) VALUES ($1, $2, $3, 'submitted', 'pending', $4,"
            " now() + interval '1 hour' - $5::int * interval '1 millisecond' - $6::interval)",
            6, p);
        if (i < 5)
            snprintf(s->newest_failed[i], sizeof s->newest_failed[i], "%s", detail);
    }
    assert_int_equal(sy_pg_commit(pg), 0);

    static const char *const task_states[] = {"stored", "done", "done", "rejected"};
    for (int i = 0; i < 4; i++) {
        char tid[64];
        snprintf(tid, sizeof tid, "%st%d", prefix, i + 1);
        const char *p[] = {tid, task_states[i]};
        sql("INSERT INTO tasks (task_id, task_name, status) VALUES ($1, 'grievance.submitted', $2)",
            2, p);
    }

    const char *w[] = {table, ids[2]};
    sql("INSERT INTO grm_watermark (name, updated, key, pulled_at)"
        " VALUES ($1, '2026-01-02 03:04:05.000000', $2, '2026-01-02 03:05:00+00')",
        2, w);

    const char *m[] = {ids[2]};
    sql("INSERT INTO system_monitoring (component, name, value, at) VALUES"
        " ('grm', 'last_push', $1, '2026-01-02 03:06:00+00'),"
        " ('grm', 'last_error', 'seeded error\nsecond line', '2026-01-02 03:07:00+00')"
        " ON CONFLICT (component, name) DO UPDATE SET value = EXCLUDED.value, at = EXCLUDED.at",
        1, m);
}

/* --- status ----------------------------------------------------------------------------------- */

static void status_shows_every_figure_of_the_ledger(void **state)
{
    (void)state;
    static const char *const dirs[] = {"push", "pull"};
    static const char *const outcomes[] = {"ok", "failed", "conflict", "skipped"};
    static const char *const spans[] = {"last_24h", "all_time"};
    /* What seed() adds: [last 24 h, all time][push, pull][ok, failed, conflict, skipped]. */
    static const long long added[2][2][4] = {
        {{2, 3, 0, 1}, {1, 2, 1, 0}},
        {{3, 3, 0, 1}, {1, 3, 2, 0}},
    };
    static const char *const tasks[] = {"stored", "done", "rejected"};
    static const long long added_tasks[] = {1, 2, 1};
    struct seeded s;
    json_t *other = NULL;
    char path[96];

    seed(&s);
    json_t *st = status_between(&other);

    assert_true(json_is_true(json_object_get(st, "enabled")));
    expect_str(st, PATH("table"), table);
    expect_str(st, PATH("map"), map_path);

    for (int sp = 0; sp < 2; sp++)
        for (int d = 0; d < 2; d++)
            for (int k = 0; k < 4; k++) {
                snprintf(path, sizeof path, "sync/%s/%s/%s", spans[sp], dirs[d], outcomes[k]);
                long long got = count_of(st, PATH("sync", spans[sp], dirs[d], outcomes[k]));
                long long want = other_count(other, path) + added[sp][d][k];
                if (got != want)
                    fail_msg("%s: %lld, expected %lld (%lld seeded)", path, got, want,
                             added[sp][d][k]);
            }
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "tasks/%s", tasks[i]);
        assert_int_equal(count_of(st, PATH("tasks", tasks[i])),
                         other_count(other, path) + added_tasks[i]);
    }
    assert_int_equal(count_of(st, PATH("pending", "count")), other_count(other, "pending") + 2);
    expect_str(st, PATH("pending", "oldest_changed_at"), "2001-02-03T04:05:06Z");

    char g3[64], want[600];
    snprintf(g3, sizeof g3, "%sg3", prefix);
    expect_str(st, PATH("last_push", "at"), s.pushed_at);
    expect_str(st, PATH("last_pull", "updated"), "2026-01-02 03:04:05.000000");
    expect_str(st, PATH("last_pull", "key"), g3);
    expect_str(st, PATH("last_pull", "pulled_at"), "2026-01-02T03:05:00Z");
    /* The monitor's rows, seeded but perhaps rewritten meanwhile by a worker. */
    snprintf(want, sizeof want, "%s @ %s", str_or_empty(st, PATH("last_push", "grievance_id")),
             str_or_empty(st, PATH("last_push", "reported_at")));
    assert_string_equal(want, json_string_value(json_object_get(other, "monitor/last_push")));
    snprintf(want, sizeof want, "%s @ %s", str_or_empty(st, PATH("last_error", "text")),
             str_or_empty(st, PATH("last_error", "at")));
    assert_string_equal(want, json_string_value(json_object_get(other, "monitor/last_error")));

    const json_t *errors = json_object_get(st, "recent_errors");
    assert_int_equal(json_array_size(errors), 5);
    for (size_t i = 0; i < 5; i++) {
        const json_t *e = json_array_get(errors, i);
        expect_str(e, PATH("detail"), s.newest_failed[i]);
        const char *gid = json_string_value(json_object_get(e, "grievance_id"));
        assert_non_null(gid);
        assert_true(strncmp(gid, prefix, strlen(prefix)) == 0);
        assert_non_null(json_string_value(json_object_get(e, "at")));
        assert_non_null(json_string_value(json_object_get(e, "direction")));
    }
    json_decref(other);
    json_decref(st);

    /* The same figures for people: one aligned "key: value" line each, text on one line. */
    struct out o = run_syctl("grm", "status");
    expect_code(&o, 0);
    assert_string_equal(o.err, "");
    char line[256];
    snprintf(line, sizeof line, "\ntable:           %s\n", table);
    assert_non_null(strstr(o.out, line));
    assert_non_null(strstr(o.out, "\nenabled:         yes\n"));
    assert_non_null(strstr(o.out, "\npending copies:  "));
    assert_non_null(strstr(o.out, ", the oldest changed 2001-02-03T04:05:06Z\n"));
    snprintf(line, sizeof line,
             "\nlast pull:       2026-01-02T03:05:00Z, watermark 2026-01-02 03:04:05.000000, "
             "key %s\n",
             g3);
    assert_non_null(strstr(o.out, line));
    assert_non_null(strstr(o.out, "\nlast error:      "));
    assert_non_null(strstr(o.out, "\nsync (24 h):     push ok "));
    assert_non_null(strstr(o.out, "\nsync (all time): push ok "));
    assert_non_null(strstr(o.out, "\nrecent failures:\n  "));
    assert_non_null(strstr(o.out, s.newest_failed[0]));
    out_free(&o);
}

static void status_with_the_grm_away_says_so_and_exits_0(void **state)
{
    (void)state;
    struct out o = run_syctl_env(ARGS("SY_GRM_MYSQL_URL=mysql://root@127.0.0.1:1/grm"), "grm",
                                 "status", "--json");
    expect_code(&o, 0);
    json_t *st = parse_json(o.out);
    assert_true(json_is_false(json_object_get(st, "connected")));
    assert_non_null(json_string_value(json_object_get(st, "connect_error")));
    assert_true(json_is_true(json_object_get(st, "ledger")));
    assert_non_null(json_object_get(json_object_get(st, "sync"), "all_time"));
    json_decref(st);
    out_free(&o);

    o = run_syctl_env(ARGS("SY_GRM_MYSQL_URL=mysql://root@127.0.0.1:1/grm?read_timeout=5"), "grm",
                      "status");
    expect_code(&o, 0);
    assert_non_null(strstr(o.out, "\nconnected:       no: "));
    assert_non_null(strstr(o.out, "\nsync (all time): "));
    out_free(&o);

    o = run_syctl_env(ARGS("SY_GRM_MYSQL_URL"), "grm", "status");
    expect_code(&o, 0);
    assert_non_null(strstr(o.out, "\nconnected:       no: SY_GRM_MYSQL_URL is not set\n"));
    out_free(&o);
}

static void status_reaches_the_grm_when_it_is_there(void **state)
{
    (void)state;
    if (!getenv("SY_GRM_MYSQL_URL"))
        skip();
    json_t *st = status_json();
    if (!json_is_true(json_object_get(st, "connected")))
        fail_msg("not connected: %s", json_string_value(json_object_get(st, "connect_error")));
    assert_true(json_is_null(json_object_get(st, "connect_error")));
    json_decref(st);
}

static void status_of_a_disabled_integration_says_so(void **state)
{
    (void)state;
    char env[1200];
    snprintf(env, sizeof env, "SY_GRM_MAP=%s", off_path);
    struct out o = run_syctl_env(ARGS(env), "grm", "status", "--json");
    expect_code(&o, 0);
    json_t *st = parse_json(o.out);
    assert_true(json_is_false(json_object_get(st, "enabled")));
    json_decref(st);
    out_free(&o);
}

static void status_without_postgres_prints_the_rest_and_exits_69(void **state)
{
    (void)state;
    const char *const env[] = {"SY_PG_URL=postgresql://postgres@127.0.0.1:1/switchyard",
                               "SY_GRM_MYSQL_URL=mysql://root@127.0.0.1:1/grm", NULL};
    struct out o = syctl(env, ARGS("grm", "status", "--json"));
    expect_code(&o, 69);
    expect_error(&o, "unreachable");
    json_t *st = parse_json(o.out);
    assert_true(json_is_false(json_object_get(st, "ledger")));
    expect_str(st, PATH("table"), table);
    assert_true(json_is_null(json_object_get(st, "sync")));
    json_decref(st);
    out_free(&o);

    o = syctl(env, ARGS("grm", "status"));
    expect_code(&o, 69);
    assert_non_null(strstr(o.out, "\nconnected:       no: "));
    assert_null(strstr(o.out, "last push"));
    out_free(&o);
}

static void status_with_a_bad_map_exits_78(void **state)
{
    (void)state;
    struct out o = run_syctl_env(ARGS("SY_GRM_MAP=/nonexistent/grm.yaml"), "grm", "status");
    expect_code(&o, 78);
    expect_error(&o, "SY_GRM_MAP");
    assert_string_equal(o.out, "");
    out_free(&o);
}

/* --- history ---------------------------------------------------------------------------------- */

static void history_limit_3_gives_the_3_newest_rows(void **state)
{
    (void)state;
    /* Seeded by the status test, which runs first: rows 0, 1, 2 are the newest. */
    static const char *const want[][3] = {
        {"push", "failed", "seeded 0: push failed"},
        {"pull", "failed", "seeded 1: pull failed"},
        {"push", "failed", "seeded 2: push failed"},
    };
    struct out o = run_syctl("grm", "history", "--limit", "3", "--json");
    expect_code(&o, 0);
    json_t *arr = parse_json(o.out);
    assert_int_equal(json_array_size(arr), 3);
    for (size_t i = 0; i < 3; i++) {
        const json_t *r = json_array_get(arr, i);
        expect_str(r, PATH("direction"), want[i][0]);
        expect_str(r, PATH("outcome"), want[i][1]);
        expect_str(r, PATH("detail"), want[i][2]);
        expect_str(r, PATH("pg_status"), "submitted");
        expect_str(r, PATH("grm_status"), "pending");
        const char *gid = json_string_value(json_object_get(r, "grievance_id"));
        assert_non_null(gid);
        assert_true(strncmp(gid, prefix, strlen(prefix)) == 0);
        assert_non_null(json_string_value(json_object_get(r, "at")));
    }
    json_decref(arr);
    out_free(&o);

    o = run_syctl("grm", "history", "--limit=3");
    expect_code(&o, 0);
    assert_true(strncmp(o.out, "AT ", 3) == 0);
    int lines = 0;
    for (const char *p = o.out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 4);
    for (size_t i = 0; i < 3; i++)
        assert_non_null(strstr(o.out, want[i][2]));
    out_free(&o);

    o = run_syctl("grm", "history", "--json");
    expect_code(&o, 0);
    arr = parse_json(o.out);
    assert_true(json_array_size(arr) >= 13 && json_array_size(arr) <= 50);
    json_decref(arr);
    out_free(&o);
}

static void bad_arguments_exit_2(void **state)
{
    (void)state;
    const char *limits[] = {"0", "1001", "abc", "-1", ""};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        struct out o = run_syctl("grm", "history", "--limit", limits[i]);
        expect_code(&o, 2);
        expect_error(&o, "--limit");
        assert_string_equal(o.out, "");
        out_free(&o);
    }
    struct out o = run_syctl("grm", "history", "--limit");
    expect_code(&o, 2);
    out_free(&o);
    o = run_syctl("grm", "status", "--limit", "3");
    expect_code(&o, 2);
    out_free(&o);
    o = run_syctl("grm", "frobnicate");
    expect_code(&o, 2);
    out_free(&o);
    o = run_syctl("grm");
    expect_code(&o, 2);
    out_free(&o);
    o = run_syctl("grm", "status", "--help");
    expect_code(&o, 0);
    assert_non_null(strstr(o.out, "SY_GRM_MYSQL_URL"));
    assert_non_null(strstr(o.out, "SY_GRM_MAP"));
    out_free(&o);
    o = run_syctl("grm", "history", "--help");
    expect_code(&o, 0);
    assert_null(strstr(o.out, "SY_GRM_MAP"));
    out_free(&o);
}

/* --- Setup ------------------------------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    char err[512] = "", dir[1024], text[256];
    const char *src = th_need_env("SY_SOURCE_DIR");
    const char *build = getenv("SY_BUILD_DIR");

    snprintf(table, sizeof table, "grm_%s", run_id);
    snprintf(prefix, sizeof prefix, ID_PREFIX "%s-", run_id);
    snprintf(map_path, sizeof map_path, "%s/Testing/it_syctl_grm-%s.yaml", build ? build : ".",
             run_id);
    snprintf(off_path, sizeof off_path, "%s/Testing/it_syctl_grm-%s-off.yaml", build ? build : ".",
             run_id);
    snprintf(text, sizeof text, "enabled: true\ntable: %s\nkey: chatbot_ref\nupdated: updated_at\n",
             table);
    if (th_write_file(map_path, text) != 0) {
        fprintf(stderr, "%s: %s\n", map_path, strerror(errno));
        return -1;
    }
    snprintf(text, sizeof text,
             "enabled: false\ntable: %s\nkey: chatbot_ref\nupdated: updated_at\n", table);
    if (th_write_file(off_path, text) != 0) {
        fprintf(stderr, "%s: %s\n", off_path, strerror(errno));
        return -1;
    }
    pg = sy_pg_connect(th_need_env("SY_PG_URL"), err, sizeof err);
    if (!pg) {
        fprintf(stderr, "sy_pg_connect: %s\n", err);
        return -1;
    }
    snprintf(dir, sizeof dir, "%s/schemas/sql/postgres", src);
    if (sy_pg_migrate(pg, dir, NULL, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "migrate: %s\n", err);
        return -1;
    }
    remove_seeded(ID_PREFIX "%");
    save_monitor();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char pattern[64];
    snprintf(pattern, sizeof pattern, "%s%%", prefix);
    remove_seeded(pattern);
    const char *p[] = {table};
    sql("DELETE FROM grm_watermark WHERE name = $1", 1, p);
    restore_monitor();
    sy_pg_destroy(pg);
    unlink(map_path);
    unlink(off_path);
    return 0;
}

int main(void)
{
    th_need_env("SY_PG_URL");
    syctl_bin = th_need_env("SYCTL_BIN");
    th_run_id(run_id);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(status_shows_every_figure_of_the_ledger),
        cmocka_unit_test(history_limit_3_gives_the_3_newest_rows),
        cmocka_unit_test(status_with_the_grm_away_says_so_and_exits_0),
        cmocka_unit_test(status_reaches_the_grm_when_it_is_there),
        cmocka_unit_test(status_of_a_disabled_integration_says_so),
        cmocka_unit_test(status_without_postgres_prints_the_rest_and_exits_69),
        cmocka_unit_test(status_with_a_bad_map_exits_78),
        cmocka_unit_test(bad_arguments_exit_2),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
