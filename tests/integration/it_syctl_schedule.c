/* it_syctl_schedule.c - `syctl schedule` run as an operator runs it, against the real broker
 * and database, with the test schedule tests/data/sched/probe.yaml (jobs publishing
 * probe.work, routed to sy.probe, which nothing consumes here): list shows every job and its
 * ledger state, trigger publishes exactly one confirmed message and records it, and the exit
 * codes for an unknown job, a repeated trigger, a broken schedule and an unreachable ledger
 * or broker. Every test uses a scheduler group of its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "scheduler/ledger.h"
#include "sy/amqp.h"
#include "sy/err.h"
#include "sy/msg.h"
#include "sy/pg.h"
#include "sy/topology.h"

#define RUN_TIMEOUT_MS 60000

static char run_id[17];
static const char *syctl_bin;
static char schedule_path[1024], broken_path[1024];
static struct sy_amqp *amqp;
static struct sy_topology *topo;
static struct sy_pg *pg;

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

/* Runs syctl with the test schedule and `group` (unless env overrides them) plus env ("K=V"
 * sets, "K" alone unsets), args NULL-terminated. */
static struct out syctl(const char *group, const char *const *env, const char *const *args)
{
    const char *all[32];
    char sched[1200], grp[200];
    size_t n = 0;
    struct out o = {0};

    snprintf(sched, sizeof sched, "SY_SCHEDULE=%s", schedule_path);
    snprintf(grp, sizeof grp, "SY_SCHEDULER_GROUP=%s", group);
    all[n++] = sched;
    all[n++] = grp;
    for (size_t i = 0; env && env[i] && n < 31; i++)
        all[n++] = env[i];
    all[n] = NULL;
    o.code = th_run(syctl_bin, args, all, RUN_TIMEOUT_MS, &o.out, &o.err);
    if (o.code < 0)
        fail_msg("syctl could not be run, or did not finish within %d ms", RUN_TIMEOUT_MS);
    return o;
}

#define ARGS(...)                      ((const char *const[]){__VA_ARGS__, NULL})
#define run_syctl(group, ...)          syctl(group, NULL, ARGS(__VA_ARGS__))
#define run_syctl_env(group, env, ...) syctl(group, env, ARGS(__VA_ARGS__))

static void expect_code(const struct out *o, int code)
{
    if (o->code != code)
        fail_msg("exit %d, expected %d\n--- stdout\n%s--- stderr\n%s", o->code, code, o->out,
                 o->err);
}

/* An error is one line on stderr, "syctl: ..." containing needle. */
static void expect_error(const struct out *o, const char *needle)
{
    const char *nl = strchr(o->err, '\n');
    if (strncmp(o->err, "syctl: ", 7) != 0 || !nl || nl[1] != '\0' || !strstr(o->err, needle))
        fail_msg("expected one error line with '%s' on stderr, got:\n%s", needle, o->err);
}

static void group_name(char *buf, size_t n, const char *test)
{
    snprintf(buf, n, "its-%s-%s", run_id, test);
}

static json_t *parse_json(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (!v)
        fail_msg("not JSON (%s): %s", e.text, text);
    return v;
}

static const json_t *job_named(const json_t *arr, const char *name)
{
    size_t i;
    const json_t *o;
    json_array_foreach(arr, i, o)
    {
        if (strcmp(json_string_value(json_object_get(o, "name")), name) == 0)
            return o;
    }
    fail_msg("no job '%s' in the JSON output", name);
    return NULL;
}

/* The line of the text table that starts with the job's name. */
static const char *line_of(const char *text, const char *job)
{
    size_t n = strlen(job);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, job, n) == 0 && p[n] == ' ')
            return p;
    }
    fail_msg("no line for job '%s' in:\n%s", job, text);
    return NULL;
}

static bool line_has(const char *line, const char *needle)
{
    const char *end = strchr(line, '\n');
    const char *hit = strstr(line, needle);
    return hit && (!end || hit < end);
}

static uint32_t probe_depth(void)
{
    return th_queue_depth(amqp, "sy.probe");
}

/* A manual tick id "<job>@YYYY-MM-DDTHH:MM:SSZ/manual" within a few seconds of now. */
static void expect_manual_id(const char *id, const char *job)
{
    size_t n = strlen(job);
    struct tm tm = {0};
    if (strncmp(id, job, n) != 0 || id[n] != '@')
        fail_msg("id '%s' does not start with '%s@'", id, job);
    const char *rest = strptime(id + n + 1, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!rest || strcmp(rest, "/manual") != 0)
        fail_msg("id '%s' is not <job>@<UTC time>Z/manual", id);
    int64_t t = (int64_t)timegm(&tm), now = th_now_ms() / 1000;
    assert_true(t <= now && t >= now - 60);
}

/* --- list ----------------------------------------------------------------------------------- */

static void list_shows_every_job_with_its_next_tick(void **state)
{
    (void)state;
    char g[96];
    group_name(g, sizeof g, "list");
    struct out o = run_syctl(g, "schedule", "list");
    expect_code(&o, 0);
    const char *jobs[] = {"probe-hourly", "probe-jittered", "probe-nightly"};
    for (size_t i = 0; i < 3; i++) {
        const char *line = line_of(o.out, jobs[i]);
        /* NEXT: an RFC 3339 UTC time and how long until it is due. */
        assert_true(line_has(line, "Z (in "));
    }
    assert_true(line_has(line_of(o.out, "probe-hourly"), "every 1h"));
    assert_true(line_has(line_of(o.out, "probe-nightly"), "Asia/Kolkata"));
    assert_string_equal(o.err, "");
    out_free(&o);

    o = run_syctl(g, "schedule", "list", "--json");
    expect_code(&o, 0);
    json_t *root = parse_json(o.out);
    assert_string_equal(json_string_value(json_object_get(root, "group")), g);
    assert_true(json_is_true(json_object_get(root, "ledger")));
    const json_t *arr = json_object_get(root, "jobs");
    assert_int_equal(json_array_size(arr), 3);
    assert_int_equal(json_array_size(json_object_get(root, "removed")), 0);
    int64_t now = th_now_ms() / 1000;
    const int64_t period[] = {3600, 300, 86400};
    for (size_t i = 0; i < 3; i++) {
        const json_t *j = job_named(arr, jobs[i]);
        assert_string_equal(json_string_value(json_object_get(j, "type")), "probe.work");
        assert_non_null(json_string_value(json_object_get(j, "next")));
        json_int_t in = json_integer_value(json_object_get(j, "due_in_s"));
        assert_true(in > 0 && in <= period[i] + 20);
        assert_true(json_is_null(json_object_get(j, "last_id")));
        assert_int_equal(json_integer_value(json_object_get(j, "pending")), 0);
    }
    /* The interval job ticks on whole hours, so its next tick is the next hour. */
    struct tm tm = {0};
    const char *next = json_string_value(json_object_get(job_named(arr, "probe-hourly"), "next"));
    assert_non_null(strptime(next, "%Y-%m-%dT%H:%M:%SZ", &tm));
    int64_t t = (int64_t)timegm(&tm);
    assert_int_equal(t % 3600, 0);
    assert_true(t > now - 5 && t <= now + 3600);
    json_decref(root);
    out_free(&o);
}

static void list_names_jobs_that_left_the_schedule(void **state)
{
    (void)state;
    char g[96], id[SCHED_TICK_ID_MAX + 1];
    group_name(g, sizeof g, "gone");
    /* A manual claim of a job the file does not have: pending until a leader publishes it. */
    static const unsigned char data[] = {0x80};
    struct sched_job j = {
        .name = "retired-job", .type = "probe.work", .data = (void *)data, .data_len = sizeof data};
    assert_int_equal(
        sched_ledger_claim_manual(pg, g, &j, th_now_ms() / 1000, "it-syctl-schedule", id), 0);

    struct out o = run_syctl(g, "schedule", "list");
    expect_code(&o, 0);
    const char *gone = strstr(o.out, "no longer in the schedule");
    assert_non_null(gone);
    assert_non_null(strstr(gone, "retired-job"));
    assert_non_null(strstr(gone, "pending 1"));
    out_free(&o);

    o = run_syctl(g, "schedule", "list", "--json");
    expect_code(&o, 0);
    json_t *root = parse_json(o.out);
    const json_t *removed = json_object_get(root, "removed");
    assert_int_equal(json_array_size(removed), 1);
    const json_t *r = job_named(removed, "retired-job");
    assert_int_equal(json_integer_value(json_object_get(r, "pending")), 1);
    assert_non_null(json_string_value(json_object_get(r, "pending_oldest")));
    json_decref(root);
    out_free(&o);
}

static void list_without_postgres_prints_the_schedule_and_exits_69(void **state)
{
    (void)state;
    char g[96];
    group_name(g, sizeof g, "nopg");
    struct out o = run_syctl_env(g, ARGS("SY_PG_URL=postgresql://postgres@127.0.0.1:1/switchyard"),
                                 "schedule", "list");
    expect_code(&o, 69);
    expect_error(&o, "unreachable");
    assert_true(line_has(line_of(o.out, "probe-hourly"), "Z (in "));
    assert_true(line_has(line_of(o.out, "probe-nightly"), "Z (in "));
    out_free(&o);

    o = run_syctl_env(g, ARGS("SY_PG_URL=postgresql://postgres@127.0.0.1:1/switchyard"), "schedule",
                      "list", "--json");
    expect_code(&o, 69);
    json_t *root = parse_json(o.out);
    assert_true(json_is_false(json_object_get(root, "ledger")));
    assert_int_equal(json_array_size(json_object_get(root, "jobs")), 3);
    json_decref(root);
    out_free(&o);
}

/* --- trigger -------------------------------------------------------------------------------- */

static void trigger_publishes_one_confirmed_message_and_list_shows_it(void **state)
{
    (void)state;
    char g[96];
    group_name(g, sizeof g, "trigger");
    th_purge_worker(amqp, topo, "probe");

    struct out o = run_syctl(g, "schedule", "trigger", "probe-jittered");
    expect_code(&o, 0);
    assert_string_equal(o.err, "");
    char *nl = strchr(o.out, '\n');
    assert_non_null(nl);
    assert_string_equal(nl + 1, "");
    *nl = '\0';
    char id[SCHED_TICK_ID_MAX + 1];
    snprintf(id, sizeof id, "%s", o.out);
    expect_manual_id(id, "probe-jittered");
    out_free(&o);

    /* Exactly one message, with the tick's id, carrying the job's data. */
    assert_int_equal(probe_depth(), 1);
    struct sy_amqp_msg *m = NULL;
    assert_int_equal(sy_amqp_get(amqp, "sy.probe", &m), 0);
    assert_int_equal(sy_amqp_settle(amqp, m, 1, 0), 0);
    assert_string_equal(m->message_id, id);
    assert_string_equal(m->routing_key, "probe.work");
    struct sy_msg *msg = NULL;
    char err[256];
    if (sy_msg_decode(m->body, m->len, &msg, err, sizeof err) != 0)
        fail_msg("body is not an envelope: %s", err);
    assert_string_equal(sy_msg_id(msg), id);
    assert_string_equal(sy_msg_type(msg), "probe.work");
    assert_string_equal(sy_msg_source(msg), "syctl");
    char run[64], note[64];
    int64_t n = 0;
    assert_int_equal(sy_msg_copy_str(msg, "run", run, sizeof run), 0);
    assert_string_equal(run, "sched-it");
    assert_int_equal(sy_msg_get_int(msg, "n", &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(sy_msg_copy_str(msg, "note", note, sizeof note), 0);
    assert_string_equal(note, "from the schedule");
    size_t fields = 0;
    assert_int_equal(sy_msg_get_len(msg, "", &fields), 0);
    assert_int_equal(fields, 3);
    sy_msg_destroy(msg);
    sy_amqp_msg_free(m);
    assert_int_equal(probe_depth(), 0);

    /* The ledger marked it published. */
    const char *params[] = {g, id};
    struct sy_pg_res *res = NULL;
    assert_int_equal(sy_pg_exec(pg,
                                "SELECT state, kind, fence IS NULL FROM sy_schedule_ticks "
                                "WHERE grp = $1 AND message_id = $2",
                                2, params, &res),
                     0);
    assert_int_equal(sy_pg_res_rows(res), 1);
    assert_string_equal(sy_pg_res_get(res, 0, 0), "published");
    assert_string_equal(sy_pg_res_get(res, 0, 1), "manual");
    assert_string_equal(sy_pg_res_get(res, 0, 2), "t");
    sy_pg_res_free(res);

    /* list shows it: the manual trigger's id and a MANUAL time, nothing pending. */
    o = run_syctl(g, "schedule", "list", "--json");
    expect_code(&o, 0);
    json_t *root = parse_json(o.out);
    const json_t *j = job_named(json_object_get(root, "jobs"), "probe-jittered");
    assert_string_equal(json_string_value(json_object_get(j, "last_manual_id")), id);
    assert_non_null(json_string_value(json_object_get(j, "last_manual")));
    assert_int_equal(json_integer_value(json_object_get(j, "pending")), 0);
    const json_t *other = job_named(json_object_get(root, "jobs"), "probe-hourly");
    assert_true(json_is_null(json_object_get(other, "last_manual_id")));
    json_decref(root);
    out_free(&o);

    o = run_syctl(g, "schedule", "list");
    expect_code(&o, 0);
    assert_true(line_has(line_of(o.out, "probe-jittered"), "s ago"));
    assert_false(line_has(line_of(o.out, "probe-hourly"), "ago"));
    out_free(&o);
}

static void trigger_within_the_same_second_publishes_nothing(void **state)
{
    (void)state;
    char g[96], id[SCHED_TICK_ID_MAX + 1];
    group_name(g, sizeof g, "twice");
    th_purge_worker(amqp, topo, "probe");
    /* Manual ticks of this job already taken for the next seconds, as a trigger an instant
     * earlier would have: whenever syctl runs within them, its claim collides. */
    static const unsigned char data[] = {0x80};
    struct sched_job j = {.name = "probe-hourly",
                          .type = "probe.work",
                          .data = (void *)data,
                          .data_len = sizeof data};
    int64_t now = th_now_ms() / 1000;
    for (int64_t s = now; s < now + 30; s++)
        assert_int_equal(sched_ledger_claim_manual(pg, g, &j, s, "it-syctl-schedule", id), 0);

    struct out o = run_syctl(g, "schedule", "trigger", "probe-hourly");
    expect_code(&o, 1);
    expect_error(&o, "already triggered within this second");
    assert_string_equal(o.out, "");
    assert_int_equal(probe_depth(), 0);
    out_free(&o);
}

static void trigger_of_an_unknown_job_exits_4(void **state)
{
    (void)state;
    char g[96];
    group_name(g, sizeof g, "unknown");
    th_purge_worker(amqp, topo, "probe");
    struct out o = run_syctl(g, "schedule", "trigger", "no-such-job");
    expect_code(&o, 4);
    expect_error(&o, "no-such-job");
    assert_non_null(strstr(o.err, "probe-hourly"));
    out_free(&o);
    assert_int_equal(probe_depth(), 0);
    const char *params[] = {g};
    struct sy_pg_res *res = NULL;
    assert_int_equal(
        sy_pg_exec(pg, "SELECT 1 FROM sy_schedule_ticks WHERE grp = $1", 1, params, &res), 0);
    assert_int_equal(sy_pg_res_rows(res), 0);
    sy_pg_res_free(res);
}

static void trigger_with_the_broker_unreachable_claims_nothing(void **state)
{
    (void)state;
    char g[96];
    group_name(g, sizeof g, "nobroker");
    struct out o = run_syctl_env(g, ARGS("SY_AMQP_URL=amqp://guest:guest@127.0.0.1:1/"), "schedule",
                                 "trigger", "probe-hourly");
    expect_code(&o, 69);
    expect_error(&o, "RabbitMQ");
    out_free(&o);
    const char *params[] = {g};
    struct sy_pg_res *res = NULL;
    assert_int_equal(
        sy_pg_exec(pg, "SELECT 1 FROM sy_schedule_ticks WHERE grp = $1", 1, params, &res), 0);
    assert_int_equal(sy_pg_res_rows(res), 0);
    sy_pg_res_free(res);
}

/* --- Configuration -------------------------------------------------------------------------- */

static void broken_schedule_exits_78_naming_the_job(void **state)
{
    (void)state;
    char g[96], env[1100];
    group_name(g, sizeof g, "broken");
    snprintf(env, sizeof env, "SY_SCHEDULE=%s", broken_path);
    const char *subs[][2] = {{"list", NULL}, {"trigger", "probe-fine"}};
    for (size_t i = 0; i < 2; i++) {
        struct out o = subs[i][1] ? run_syctl_env(g, ARGS(env), "schedule", subs[i][0], subs[i][1])
                                  : run_syctl_env(g, ARGS(env), "schedule", subs[i][0]);
        expect_code(&o, 78);
        expect_error(&o, "probe-missing-n");
        assert_non_null(strstr(o.err, "broken.yaml:"));
        assert_string_equal(o.out, "");
        out_free(&o);
    }
    /* A group name the ledger would refuse. */
    struct out o = run_syctl("bad group", "schedule", "list");
    expect_code(&o, 78);
    expect_error(&o, "SY_SCHEDULER_GROUP");
    out_free(&o);
    /* And usage errors. */
    o = run_syctl(g, "schedule", "trigger");
    expect_code(&o, 2);
    out_free(&o);
    o = run_syctl(g, "schedule", "frobnicate");
    expect_code(&o, 2);
    out_free(&o);
    o = run_syctl(g, "schedule", "list", "--help");
    expect_code(&o, 0);
    assert_non_null(strstr(o.out, "SY_SCHEDULER_GROUP"));
    assert_null(strstr(o.out, "SY_AMQP_URL"));
    out_free(&o);
}

static int setup(void **state)
{
    (void)state;
    char err[512] = "", dir[1024];
    const char *src = th_need_env("SY_SOURCE_DIR");
    snprintf(schedule_path, sizeof schedule_path, "%s/tests/data/sched/probe.yaml", src);
    snprintf(broken_path, sizeof broken_path, "%s/tests/data/sched/broken.yaml", src);
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
    amqp = th_amqp(&topo);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sy_amqp_destroy(amqp);
    sy_topology_destroy(topo);
    sy_pg_destroy(pg);
    return 0;
}

int main(void)
{
    th_need_env("SY_PG_URL");
    th_need_env("SY_AMQP_URL");
    syctl_bin = th_need_env("SYCTL_BIN");
    th_run_id(run_id);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(list_shows_every_job_with_its_next_tick),
        cmocka_unit_test(list_names_jobs_that_left_the_schedule),
        cmocka_unit_test(list_without_postgres_prints_the_schedule_and_exits_69),
        cmocka_unit_test(trigger_publishes_one_confirmed_message_and_list_shows_it),
        cmocka_unit_test(trigger_within_the_same_second_publishes_nothing),
        cmocka_unit_test(trigger_of_an_unknown_job_exits_4),
        cmocka_unit_test(trigger_with_the_broker_unreachable_claims_nothing),
        cmocka_unit_test(broken_schedule_exits_78_naming_the_job),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
