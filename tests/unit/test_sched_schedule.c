/* test_sched_schedule.c - the scheduler's schedule file: the fleet's own file against the real
 * schemas and topology, every error named with its job and line, ${} expansion, data typing,
 * next ticks, jitter, tick ids, and plans that stay cheap and exact whatever the cursor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "scheduler/schedule.h"
#include "sy/err.h"
#include "sy/schema.h"
#include "sy/topology.h"

#define DAY     86400
#define T2024   INT64_C(1704067200) /* 2024-01-01T00:00:00Z */
#define ERR_LEN 1024

static struct sy_schemas *g_schemas;    /* schemas/messages */
static struct sy_topology *g_topology;  /* schemas/topology.yaml */
static struct sy_topology *g_wildcards; /* tests/unit/data/sched/topology.yaml */

static const char *source_dir(void)
{
    const char *d = getenv("SY_SOURCE_DIR");
    return d && *d ? d : ".";
}

static int setup(void **state)
{
    char path[1024], err[ERR_LEN];

    (void)state;
    snprintf(path, sizeof path, "%s/schemas/messages", source_dir());
    g_schemas = sy_schemas_load(path, err, sizeof err);
    if (!g_schemas) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    snprintf(path, sizeof path, "%s/schemas/topology.yaml", source_dir());
    g_topology = sy_topology_load(path, err, sizeof err);
    if (!g_topology) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    snprintf(path, sizeof path, "%s/tests/unit/data/sched/topology.yaml", source_dir());
    g_wildcards = sy_topology_load(path, err, sizeof err);
    if (!g_wildcards) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sy_schemas_destroy(g_schemas);
    sy_topology_destroy(g_topology);
    sy_topology_destroy(g_wildcards);
    return 0;
}

/* Loads `yaml` from a temporary file (removed again) with the given checks. */
static struct sched_schedule *load_text(const char *yaml, const struct sy_schemas *schemas,
                                        const struct sy_topology *topo, char *err)
{
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : P_tmpdir;
    char path[512];
    struct sched_schedule *s;
    size_t len = strlen(yaml);
    int fd;

    snprintf(path, sizeof path, "%s/test_sched_schedule_XXXXXX", dir);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, len), (ssize_t)len);
    close(fd);
    err[0] = '\0';
    s = sched_schedule_load(path, schemas, topo, err, ERR_LEN);
    unlink(path);
    return s;
}

static struct sched_schedule *load_ok(const char *yaml, const struct sy_schemas *schemas,
                                      const struct sy_topology *topo)
{
    char err[ERR_LEN];
    struct sched_schedule *s = load_text(yaml, schemas, topo, err);

    if (!s)
        fail_msg("expected the schedule to load, got: %s", err);
    return s;
}

/* A schedule of one job, built in place, for the tick and planning tests. */
static struct sched_job interval_job(const char *name, int64_t every, int64_t offset,
                                     int64_t jitter, enum sched_missed missed,
                                     unsigned catch_up_max, int64_t grace)
{
    struct sched_job j = {0};

    j.name = (char *)name;
    j.every_s = every;
    j.offset_s = offset;
    j.jitter_s = jitter;
    j.missed = missed;
    j.catch_up_max = catch_up_max;
    j.grace_s = grace;
    return j;
}

/* --- the fleet's file ------------------------------------------------------------------ */

static void test_fleet_schedule_loads_against_the_real_schemas_and_topology(void **state)
{
    char path[1024], err[ERR_LEN];
    static const char *const names[] = {
        "ingest.poll.email", "ingest.poll.whatsapp", "ingest.poll.maximo", "ingest.poll.sharepoint",
        "grm.pull",          "fleet.health_check",   "fleet.cleanup"};
    static const int64_t every[] = {300, 600, 900, 1800, 300, 3600, 0};
    static const enum sched_missed missed[] = {SCHED_CATCH_UP, SCHED_CATCH_UP, SCHED_CATCH_UP,
                                               SCHED_CATCH_UP, SCHED_CATCH_UP, SCHED_SKIP,
                                               SCHED_CATCH_UP};
    static const unsigned char keep_days_30[] = {0x81, 0xa9, 'k', 'e', 'e', 'p',
                                                 '_',  'd',  'a', 'y', 's', 0x1e};

    (void)state;
    unsetenv("GRM_SYNC_INTERVAL_MINUTES");
    snprintf(path, sizeof path, "%s/deploy/config/schedule.yaml", source_dir());
    struct sched_schedule *s = sched_schedule_load(path, g_schemas, g_topology, err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    assert_string_equal(s->path, path);
    assert_int_equal(s->njobs, 7);
    for (size_t i = 0; i < 7; i++) {
        const struct sched_job *j = &s->jobs[i];

        assert_string_equal(j->name, names[i]);
        assert_string_equal(j->type, names[i]);
        assert_ptr_equal(sched_schedule_find(s, names[i]), j);
        assert_int_equal(j->every_s, every[i]);
        assert_int_equal(j->missed, missed[i]);
        assert_int_equal(j->grace_s, 30);
        if (j->missed == SCHED_CATCH_UP)
            assert_int_equal(j->catch_up_max, 1);
        if (i < 4) /* polls are spread out */
            assert_true(j->jitter_s > 0 && j->jitter_s < j->every_s);
        assert_true(j->line > 0);
    }
    assert_string_equal(s->jobs[0].when, "every 5m");
    assert_string_equal(s->jobs[5].when, "every 1h");
    assert_int_equal(s->jobs[0].data_len, 1); /* no data: the empty map */
    assert_int_equal(((const unsigned char *)s->jobs[0].data)[0], 0x80);

    const struct sched_job *c = sched_schedule_find(s, "fleet.cleanup");
    assert_string_equal(c->when, "0 2 * * * (Asia/Kolkata)");
    assert_int_equal(c->jitter_s, 0);
    assert_int_equal(c->data_len, sizeof keep_days_30);
    assert_memory_equal(c->data, keep_days_30, sizeof keep_days_30);
    /* 02:00 in Kolkata (UTC+5:30) is 20:30 UTC the day before */
    assert_int_equal(sched_job_next(c, T2024), T2024 + 20 * 3600 + 1800);
    assert_null(sched_schedule_find(s, "ingest.poll"));
    assert_null(sched_schedule_find(s, NULL));
    sched_schedule_destroy(s);
    sched_schedule_destroy(NULL);
}

static void test_grm_interval_comes_from_the_environment(void **state)
{
    char path[1024], err[ERR_LEN];
    struct sched_schedule *s;

    (void)state;
    snprintf(path, sizeof path, "%s/deploy/config/schedule.yaml", source_dir());
    setenv("GRM_SYNC_INTERVAL_MINUTES", "7", 1);
    s = sched_schedule_load(path, g_schemas, g_topology, err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    assert_int_equal(sched_schedule_find(s, "grm.pull")->every_s, 7 * 60);
    assert_string_equal(sched_schedule_find(s, "grm.pull")->when, "every 7m");
    sched_schedule_destroy(s);

    setenv("GRM_SYNC_INTERVAL_MINUTES", "0", 1);
    assert_null(sched_schedule_load(path, g_schemas, g_topology, err, sizeof err));
    assert_non_null(strstr(err, ": job 'grm.pull': every: '0m' (from "
                                "'${GRM_SYNC_INTERVAL_MINUTES:-5}m') is not a duration from 1s"));
    unsetenv("GRM_SYNC_INTERVAL_MINUTES");
}

/* --- errors ---------------------------------------------------------------------------- */

struct bad_case {
    const char *yaml;
    int line;
    const char *job; /* "job 'x'", "job #N", or NULL for the file's top level */
    const char *why;
};

static void expect_error(const struct bad_case *c, const struct sy_schemas *schemas,
                         const struct sy_topology *topo)
{
    char err[ERR_LEN], want[512];
    struct sched_schedule *s = load_text(c->yaml, schemas, topo, err);

    if (s) {
        sched_schedule_destroy(s);
        fail_msg("loaded although bad (expected '%s'):\n%s", c->why, c->yaml);
    }
    if (c->job)
        snprintf(want, sizeof want, ":%d: %s: ", c->line, c->job);
    else
        snprintf(want, sizeof want, ":%d: ", c->line);
    if (!strstr(err, want) || !strstr(err, c->why) || strstr(err, want) > strstr(err, c->why))
        fail_msg("expected '%s' ... '%s', got '%s'", want, c->why, err);
}

#define JOB_A "jobs:\n  - name: a\n    type: a.b\n"

static const struct bad_case bad_files[] = {
    {"", 1, NULL, "expected a map with a 'jobs' sequence"},
    {"jobs: []\n", 1, NULL, "jobs: expected a sequence of 1 to 1000 jobs"},
    {"jobs: {a: 1}\n", 1, NULL, "jobs: expected a sequence"},
    {"{}\n", 1, NULL, "jobs: required"},
    {"jobs:\n  - {name: a, every: 5m, type: a.b}\nextra: 1\n", 3, NULL, "unknown key 'extra'"},
    {"jobs:\n  - just text\n", 2, "job #1", "expected a map"},
    {"jobs:\n  - every: 5m\n    type: a.b\n", 2, "job #1", "name: required"},
    {"jobs:\n  - name: {x: 1}\n    every: 5m\n", 2, "job #1", "name: expected a value"},
    {"jobs:\n  - {name: ok, every: 5m, type: a.b}\n  - name: Bad\n    every: 5m\n", 3, "job #2",
     "name: 'Bad' is not a job name"},
    {"jobs:\n  - name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", 2,
     "job #1", "is not a job name ([a-z0-9._-], 1 to 64 characters)"},
    {"jobs:\n  - {name: a, every: 5m, type: a.b}\n  - {name: b, every: 5m, type: a.b}\n"
     "  - name: a\n    every: 1m\n    type: a.b\n",
     4, "job 'a'", "name: used by another job too (first at line 2)"},
    {JOB_A "    every: 5m\n    evry: 5m\n", 5, "job 'a'", "unknown key 'evry'"},
    {"jobs:\n  - name: a\n    every: 5m\n", 2, "job 'a'", "type: required"},
    {"jobs:\n  - name: a\n    every: 5m\n    type: Fleet.Ping\n", 4, "job 'a'",
     "type: 'Fleet.Ping' is not a message type"},
    {"jobs:\n  - name: a\n    every: 5m\n    type: fleet.#\n", 4, "job 'a'", "not a message type"},
    {JOB_A "    description: {x: 1}\n    every: 5m\n", 4, "job 'a'", "description: expected text"},
    {JOB_A "    every: 5m\n    cron: '* * * * *'\n", 2, "job 'a'",
     "either every or cron, not both"},
    {JOB_A "    jitter: 5s\n", 2, "job 'a'", "every or cron: one of them is required"},
    {JOB_A "    every: 0s\n", 4, "job 'a'", "every: '0s' is not a duration from 1s to 31d"},
    {JOB_A "    every: 32d\n", 4, "job 'a'", "every: '32d' is not a duration from 1s to 31d"},
    {JOB_A "    every: 5\n", 4, "job 'a'", "every: '5' is not a duration"},
    {JOB_A "    every: 5x\n", 4, "job 'a'", "every: '5x' is not a duration"},
    {JOB_A "    every: -5m\n", 4, "job 'a'", "every: '-5m' is not a duration"},
    {JOB_A "    every: 5m 2s\n", 4, "job 'a'", "every: '5m 2s' is not a duration"},
    {JOB_A "    every:\n", 4, "job 'a'", "every: expected a value"},
    {JOB_A "    every: 5m\n    offset: 5m\n", 5, "job 'a'",
     "offset: 5m must be less than every (5m)"},
    {JOB_A "    every: 5m\n    offset: 10\n", 5, "job 'a'", "offset: '10' is not a duration"},
    {JOB_A "    cron: '0 * * * *'\n    offset: 1m\n", 5, "job 'a'", "offset: only with every"},
    {JOB_A "    every: 1h\n    tz: UTC\n", 5, "job 'a'", "tz: only with cron"},
    {JOB_A "    cron: '61 * * * *'\n", 4, "job 'a'", "cron: '61 * * * *': "},
    {JOB_A "    cron: '0 0 31 2 *'\n", 4, "job 'a'", "cron: '0 0 31 2 *': "},
    {JOB_A "    cron: '0 2 * * *'\n    tz: Nowhere/Atlantis\n", 5, "job 'a'", "tz: "},
    {JOB_A "    cron: '0 2 * * *'\n    tz: ../etc/passwd\n", 5, "job 'a'", "tz: "},
    {JOB_A "    every: 5m\n    jitter: 5m\n", 5, "job 'a'",
     "jitter: 5m must be less than every (5m)"},
    {JOB_A "    cron: '*/5 * * * *'\n    jitter: 1h\n", 5, "job 'a'",
     "jitter: 1h must be less than 1h for a cron job"},
    {JOB_A "    every: 5m\n    grace: 0s\n", 5, "job 'a'",
     "grace: '0s' is not a duration from 1s to 1d"},
    {JOB_A "    every: 5m\n    grace: 25h\n", 5, "job 'a'", "grace: '25h' is not a duration"},
    {JOB_A "    every: 5m\n    missed: later\n", 5, "job 'a'",
     "missed: 'later' is not skip or catch_up"},
    {JOB_A "    every: 5m\n    catch_up_max: 3\n", 5, "job 'a'",
     "catch_up_max: only with missed: catch_up"},
    {JOB_A "    every: 5m\n    missed: skip\n    catch_up_max: 3\n", 6, "job 'a'",
     "catch_up_max: only with missed: catch_up"},
    {JOB_A "    every: 5m\n    missed: catch_up\n    catch_up_max: 0\n", 6, "job 'a'",
     "catch_up_max: '0' is not a whole number from 1 to 1000"},
    {JOB_A "    every: 5m\n    missed: catch_up\n    catch_up_max: 1001\n", 6, "job 'a'",
     "catch_up_max: '1001' is not a whole number from 1 to 1000"},
    {JOB_A "    every: 5m\n    missed: catch_up\n    catch_up_max: 99999999999999999999\n", 6,
     "job 'a'", "is not a whole number from 1 to 1000"},
    {JOB_A "    every: 5m\n    missed: catch_up\n    catch_up_max: 2x\n", 6, "job 'a'",
     "catch_up_max: '2x' is not a whole number"},
    {JOB_A "    every: 5m\n    data: [1, 2]\n", 5, "job 'a'", "data: expected a map"},
    {JOB_A "    every: 5m\n    data: text\n", 5, "job 'a'", "data: expected a map"},
    {JOB_A "    every: 5m\n    data: {a: {b: {c: {d: {e: {f: {g: {h: {i: 1}}}}}}}}}\n", 5,
     "job 'a'", "data.a.b.c.d.e.f.g.h: nested deeper than 8 levels"},
    {JOB_A "    every: 5m\n    data:\n      list: [1, [2, 99999999999999999999]]\n", 6, "job 'a'",
     "data.list[1][1]: 99999999999999999999 does not fit a 64-bit integer"},
    {JOB_A "    every: ${SCHEDT_NEVER_SET}m\n", 4, "job 'a'",
     "every: environment variable SCHEDT_NEVER_SET is not set (and has no default)"},
    {JOB_A "    every: ${1X:-5}m\n", 4, "job 'a'",
     "every: '${' must be followed by a variable name"},
    {JOB_A "    every: ${SCHEDT_OPEN\n", 4, "job 'a'", "every: '${SCHEDT_OPEN' is not closed"},
    {JOB_A "    every: ${SCHEDT_OPEN:-5m\n", 4, "job 'a'", "every: '${SCHEDT_OPEN' is not closed"},
    {JOB_A "    cron: '0 ${SCHEDT_HOUR} * * *'\n", 4, "job 'a'",
     "cron: environment variable SCHEDT_HOUR is not set"},
    {JOB_A "    cron: '0 2 * * *'\n    tz: ${SCHEDT_TZ}\n", 5, "job 'a'",
     "tz: environment variable SCHEDT_TZ is not set"},
};

static void test_every_error_names_the_job_and_line(void **state)
{
    (void)state;
    unsetenv("SCHEDT_NEVER_SET");
    unsetenv("SCHEDT_HOUR");
    unsetenv("SCHEDT_TZ");
    for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++)
        expect_error(&bad_files[i], NULL, NULL);
}

static void test_unreadable_files_say_so(void **state)
{
    char path[1024], err[ERR_LEN] = "";

    (void)state;
    snprintf(path, sizeof path, "%s/tests/unit/data/sched/no-such-file.yaml", source_dir());
    assert_null(sched_schedule_load(path, NULL, NULL, err, sizeof err));
    assert_non_null(strstr(err, "no-such-file.yaml"));
    assert_null(strstr(err, "out of memory"));

    /* YAML that does not parse: the document's own error, with its line */
    struct bad_case c = {"jobs:\n  - name: a\n    every: [5m\n", 4, NULL, "did not find expected"};
    expect_error(&c, NULL, NULL);
}

static void test_too_many_jobs_are_refused(void **state)
{
    size_t cap = 1001 * 64 + 16, used = 0;
    char *yaml = malloc(cap);

    (void)state;
    assert_non_null(yaml);
    used += (size_t)snprintf(yaml + used, cap - used, "jobs:\n");
    for (int i = 0; i < 1001; i++)
        used +=
            (size_t)snprintf(yaml + used, cap - used, "  - {name: j%d, every: 1m, type: a.b}\n", i);
    struct bad_case c = {yaml, 2, NULL, "jobs: expected a sequence of 1 to 1000 jobs"};
    expect_error(&c, NULL, NULL);

    /* exactly the limit loads */
    used = (size_t)snprintf(yaml, cap, "jobs:\n");
    for (int i = 0; i < 1000; i++)
        used +=
            (size_t)snprintf(yaml + used, cap - used, "  - {name: j%d, every: 1m, type: a.b}\n", i);
    struct sched_schedule *s = load_ok(yaml, NULL, NULL);
    assert_int_equal(s->njobs, 1000);
    assert_ptr_equal(sched_schedule_find(s, "j999"), &s->jobs[999]);
    sched_schedule_destroy(s);
    free(yaml);
}

static void test_messages_are_checked_against_schemas(void **state)
{
    static const struct bad_case cases[] = {
        {JOB_A "    every: 5m\n", 2, "job 'a'", "type: no message schema for 'a.b'"},
        {"jobs:\n  - name: c\n    type: fleet.cleanup\n    every: 1d\n    data: {keep_days: "
         "'30'}\n",
         5, "job 'c'", "the message does not fit the schema of 'fleet.cleanup': data.keep_days"},
        {"jobs:\n  - name: c\n    type: fleet.cleanup\n    every: 1d\n    data: {keep_days: 0}\n",
         5, "job 'c'", "the message does not fit the schema of 'fleet.cleanup': data.keep_days"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_error(&cases[i], g_schemas, NULL);

    /* the same data unquoted is an int, and the schema takes it */
    struct sched_schedule *s = load_ok(
        "jobs:\n  - name: c\n    type: fleet.cleanup\n    every: 1d\n    data: {keep_days: 30}\n",
        g_schemas, NULL);
    sched_schedule_destroy(s);
}

static void test_types_must_be_routed_by_topic_rules(void **state)
{
    static const char *const routed[] = {"sched", "sched.a.b", "a.one",    "x.y.z",
                                         "tail",  "a.b.tail",  "exact.key"};
    static const char *const unrouted[] = {
        "one", "a.b.one", "x.z", "x.y.y.z", "exact.key.more", "exact", "tailx", "sched_x"};
    char yaml[256];

    (void)state;
    for (size_t i = 0; i < sizeof routed / sizeof routed[0]; i++) {
        snprintf(yaml, sizeof yaml, "jobs:\n  - name: r\n    every: 5m\n    type: %s\n", routed[i]);
        sched_schedule_destroy(load_ok(yaml, NULL, g_wildcards));
    }
    for (size_t i = 0; i < sizeof unrouted / sizeof unrouted[0]; i++) {
        snprintf(yaml, sizeof yaml, "jobs:\n  - name: r\n    every: 5m\n    type: %s\n",
                 unrouted[i]);
        struct bad_case c = {yaml, 2, "job 'r'", "no worker's route in the topology matches"};
        expect_error(&c, NULL, g_wildcards);
    }
}

/* --- settings and expansion ------------------------------------------------------------ */

static void test_settings_and_defaults(void **state)
{
    (void)state;
    struct sched_schedule *s = load_ok("jobs:\n"
                                       "  - name: plain\n"
                                       "    type: a.b\n"
                                       "    every: 90s\n"
                                       "  - name: tuned\n"
                                       "    type: a.b\n"
                                       "    every: 1h\n"
                                       "    offset: 15m\n"
                                       "    jitter: 59m\n"
                                       "    grace: 1d\n"
                                       "    missed: catch_up\n"
                                       "    catch_up_max: 1000\n"
                                       "    description: all knobs turned\n"
                                       "  - name: nightly\n"
                                       "    type: a.b\n"
                                       "    cron: '@daily'\n"
                                       "    jitter: 59m\n"
                                       "    missed: catch_up\n",
                                       NULL, NULL);
    const struct sched_job *p = &s->jobs[0], *t = &s->jobs[1], *n = &s->jobs[2];

    assert_int_equal(p->every_s, 90);
    assert_int_equal(p->offset_s, 0);
    assert_int_equal(p->jitter_s, 0);
    assert_int_equal(p->grace_s, 30);
    assert_int_equal(p->missed, SCHED_SKIP);
    assert_null(p->tz);
    assert_string_equal(p->when, "every 90s");
    assert_int_equal(p->line, 2);

    assert_int_equal(t->every_s, 3600);
    assert_int_equal(t->offset_s, 900);
    assert_int_equal(t->jitter_s, 59 * 60);
    assert_int_equal(t->grace_s, DAY);
    assert_int_equal(t->missed, SCHED_CATCH_UP);
    assert_int_equal(t->catch_up_max, 1000);
    assert_string_equal(t->when, "every 1h offset 15m");
    assert_int_equal(t->line, 5);

    assert_int_equal(n->every_s, 0);
    assert_non_null(n->tz);
    assert_string_equal(n->when, "@daily (UTC)");
    assert_int_equal(n->catch_up_max, 1);
    assert_int_equal(sched_job_next(n, T2024), T2024 + DAY);
    sched_schedule_destroy(s);
}

static void test_expansion_applies_to_settings_only(void **state)
{
    (void)state;
    setenv("SCHEDT_EVERY", "2", 1);
    setenv("SCHEDT_EMPTY", "", 1);
    setenv("SCHEDT_ZONE", "Asia/Kolkata", 1);
    setenv("SCHEDT_MAX", "4", 1);
    unsetenv("SCHEDT_UNSET");
    struct sched_schedule *s = load_ok("jobs:\n"
                                       "  - name: a\n"
                                       "    type: a.b\n"
                                       "    every: ${SCHEDT_EVERY}h\n"
                                       "    offset: ${SCHEDT_UNSET:-10}m\n"
                                       "    jitter: ${SCHEDT_EMPTY:-30s}\n"
                                       "    grace: ${SCHEDT_UNSET:-2m}\n"
                                       "    missed: catch_up\n"
                                       "    catch_up_max: ${SCHEDT_MAX}\n"
                                       "    data: {note: '${SCHEDT_EVERY}', cost: $5}\n"
                                       "  - name: b\n"
                                       "    type: a.b\n"
                                       "    cron: '${SCHEDT_UNSET:-30} 2 * * *'\n"
                                       "    tz: ${SCHEDT_ZONE}\n",
                                       NULL, NULL);
    const struct sched_job *a = &s->jobs[0], *b = &s->jobs[1];

    assert_int_equal(a->every_s, 2 * 3600);
    assert_int_equal(a->offset_s, 600);
    assert_int_equal(a->jitter_s, 30);
    assert_int_equal(a->grace_s, 120);
    assert_int_equal(a->catch_up_max, 4);
    assert_string_equal(a->when, "every 2h offset 10m");
    assert_string_equal(b->when, "30 2 * * * (Asia/Kolkata)");
    /* 02:30 in Kolkata is 21:00 UTC */
    assert_int_equal(sched_job_next(b, T2024), T2024 + 21 * 3600);

    /* data is never expanded */
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, a->data, a->data_len, NULL), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(u.data.via.map.size, 2);
    assert_memory_equal(u.data.via.map.ptr[0].val.via.str.ptr, "${SCHEDT_EVERY}", 15);
    assert_memory_equal(u.data.via.map.ptr[1].val.via.str.ptr, "$5", 2);
    msgpack_unpacked_destroy(&u);
    sched_schedule_destroy(s);

    /* a set but empty variable without a default stays empty, and "" is no duration */
    struct bad_case c = {JOB_A "    every: ${SCHEDT_EMPTY}\n", 4, "job 'a'",
                         "every: '' (from '${SCHEDT_EMPTY}') is not a duration"};
    expect_error(&c, NULL, NULL);
    unsetenv("SCHEDT_EVERY");
    unsetenv("SCHEDT_EMPTY");
    unsetenv("SCHEDT_ZONE");
    unsetenv("SCHEDT_MAX");
}

/* --- data ------------------------------------------------------------------------------ */

static const msgpack_object *map_get(const msgpack_object *map, const char *key)
{
    assert_int_equal(map->type, MSGPACK_OBJECT_MAP);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];

        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == strlen(key) &&
            memcmp(kv->key.via.str.ptr, key, strlen(key)) == 0)
            return &kv->val;
    }
    fail_msg("no key '%s'", key);
    return NULL;
}

static void assert_str(const msgpack_object *o, const char *want)
{
    assert_int_equal(o->type, MSGPACK_OBJECT_STR);
    assert_int_equal(o->via.str.size, strlen(want));
    assert_memory_equal(o->via.str.ptr, want, strlen(want));
}

static void test_data_is_typed_like_yaml_core_and_quotes_make_strings(void **state)
{
    (void)state;
    struct sched_schedule *s = load_ok("jobs:\n"
                                       "  - name: a\n"
                                       "    type: a.b\n"
                                       "    every: 5m\n"
                                       "    data:\n"
                                       "      int: 5\n"
                                       "      str5: \"5\"\n"
                                       "      neg: -7\n"
                                       "      big: 9223372036854775807\n"
                                       "      yes: true\n"
                                       "      no: False\n"
                                       "      quoted_true: 'true'\n"
                                       "      word_yes: yes\n"
                                       "      nil1: ~\n"
                                       "      nil2: null\n"
                                       "      nil3:\n"
                                       "      quoted_null: 'null'\n"
                                       "      empty: ''\n"
                                       "      float: 1.5\n"
                                       "      exp: 1e3\n"
                                       "      inf: -.inf\n"
                                       "      hex: 0x1F\n"
                                       "      text: hello world\n"
                                       "      nested:\n"
                                       "        list: [1, \"2\", {deep: false}]\n"
                                       "        map: {k: v}\n",
                                       NULL, NULL);
    const struct sched_job *j = &s->jobs[0];
    msgpack_unpacked u;
    size_t off = 0;

    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, j->data, j->data_len, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, j->data_len);
    const msgpack_object *d = &u.data;

    assert_int_equal(d->via.map.size, 19);
    assert_int_equal(map_get(d, "int")->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_int_equal(map_get(d, "int")->via.u64, 5);
    assert_str(map_get(d, "str5"), "5");
    assert_int_equal(map_get(d, "neg")->type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
    assert_int_equal(map_get(d, "neg")->via.i64, -7);
    assert_int_equal(map_get(d, "big")->via.u64, INT64_MAX);
    assert_int_equal(map_get(d, "yes")->type, MSGPACK_OBJECT_BOOLEAN);
    assert_true(map_get(d, "yes")->via.boolean);
    assert_int_equal(map_get(d, "no")->type, MSGPACK_OBJECT_BOOLEAN);
    assert_false(map_get(d, "no")->via.boolean);
    assert_str(map_get(d, "quoted_true"), "true");
    assert_str(map_get(d, "word_yes"), "yes"); /* YAML 1.2: yes is text */
    assert_int_equal(map_get(d, "nil1")->type, MSGPACK_OBJECT_NIL);
    assert_int_equal(map_get(d, "nil2")->type, MSGPACK_OBJECT_NIL);
    assert_int_equal(map_get(d, "nil3")->type, MSGPACK_OBJECT_NIL);
    assert_str(map_get(d, "quoted_null"), "null");
    assert_str(map_get(d, "empty"), "");
    assert_int_equal(map_get(d, "float")->type, MSGPACK_OBJECT_FLOAT64);
    assert_true(map_get(d, "float")->via.f64 == 1.5);
    assert_int_equal(map_get(d, "exp")->type, MSGPACK_OBJECT_FLOAT64);
    assert_true(map_get(d, "exp")->via.f64 == 1000.0);
    assert_int_equal(map_get(d, "inf")->type, MSGPACK_OBJECT_FLOAT64);
    assert_true(map_get(d, "inf")->via.f64 < -1e308);
    assert_str(map_get(d, "hex"), "0x1F"); /* only decimal integers are ints */
    assert_str(map_get(d, "text"), "hello world");

    const msgpack_object *nested = map_get(d, "nested");
    const msgpack_object *list = map_get(nested, "list");
    assert_int_equal(list->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(list->via.array.size, 3);
    assert_int_equal(list->via.array.ptr[0].type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_str(&list->via.array.ptr[1], "2");
    assert_int_equal(map_get(&list->via.array.ptr[2], "deep")->type, MSGPACK_OBJECT_BOOLEAN);
    assert_str(map_get(map_get(nested, "map"), "k"), "v");
    msgpack_unpacked_destroy(&u);
    sched_schedule_destroy(s);

    /* data left empty is the empty map */
    s = load_ok(JOB_A "    every: 5m\n    data:\n", NULL, NULL);
    assert_int_equal(s->jobs[0].data_len, 1);
    assert_int_equal(((const unsigned char *)s->jobs[0].data)[0], 0x80);
    sched_schedule_destroy(s);
}

/* --- ticks ----------------------------------------------------------------------------- */

static void test_next_tick_is_the_next_multiple_plus_offset(void **state)
{
    struct sched_job j = interval_job("n", 300, 60, 0, SCHED_SKIP, 1, 30);

    (void)state;
    assert_int_equal(sched_job_next(&j, 0), 60);
    assert_int_equal(sched_job_next(&j, 59), 60);
    assert_int_equal(sched_job_next(&j, 60), 360); /* strictly after */
    assert_int_equal(sched_job_next(&j, 61), 360);
    assert_int_equal(sched_job_next(&j, -1), 60);
    assert_int_equal(sched_job_next(&j, -240), 60);
    assert_int_equal(sched_job_next(&j, -241), -240);
    assert_int_equal(sched_job_next(&j, T2024), T2024 + 60);
    assert_int_equal(sched_job_next(&j, T2024 + 60), T2024 + 360);

    j = interval_job("d", DAY, 0, 0, SCHED_SKIP, 1, 30);
    assert_int_equal(sched_job_next(&j, T2024 - 1), T2024);
    assert_int_equal(sched_job_next(&j, T2024), T2024 + DAY);
    assert_int_equal(sched_job_next(&j, INT64_MAX), -1);
}

static void test_jitter_is_stable_in_range_and_spread(void **state)
{
    struct sched_job a = interval_job("ingest.poll.email", 300, 0, 60, SCHED_SKIP, 1, 30);
    struct sched_job b = interval_job("ingest.poll.maximo", 300, 0, 60, SCHED_SKIP, 1, 30);
    struct sched_job none = interval_job("ingest.poll.email", 300, 0, 0, SCHED_SKIP, 1, 30);
    int64_t lo = 60, hi = -1, same = 0;
    int seen[60] = {0};

    (void)state;
    /* Pinned: every replica on every machine, in every run, derives these same delays. */
    assert_int_equal(sched_job_jitter(&a, T2024), 56);
    assert_int_equal(sched_job_jitter(&a, T2024 + 300), 43);
    assert_int_equal(sched_job_jitter(&b, T2024), 30);
    for (int64_t k = 0; k < 10000; k++) {
        int64_t t = T2024 + k * 300, ja = sched_job_jitter(&a, t);

        assert_true(ja >= 0 && ja < 60);
        assert_int_equal(ja, sched_job_jitter(&a, t));
        assert_int_equal(sched_job_jitter(&none, t), 0);
        seen[ja]++;
        lo = ja < lo ? ja : lo;
        hi = ja > hi ? ja : hi;
        same += ja == sched_job_jitter(&b, t);
    }
    assert_int_equal(lo, 0);
    assert_int_equal(hi, 59);
    for (int i = 0; i < 60; i++) /* about 167 each; a biased hash would leave holes */
        assert_true(seen[i] > 80 && seen[i] < 260);
    assert_true(same < 400); /* two jobs do not share their delays (chance: 1 in 60) */
}

static void test_tick_ids_are_job_at_utc_time(void **state)
{
    char buf[SCHED_TICK_ID_MAX + 1], name[SCHED_JOB_NAME_MAX + 1], small[12];

    (void)state;
    sched_tick_id("ingest.poll.email", T2024, 0, buf, sizeof buf);
    assert_string_equal(buf, "ingest.poll.email@2024-01-01T00:00:00Z");
    sched_tick_id("fleet.cleanup", T2024 + 20 * 3600 + 1800 + 7, 1, buf, sizeof buf);
    assert_string_equal(buf, "fleet.cleanup@2024-01-01T20:30:07Z/manual");
    sched_tick_id("grm.pull", 0, 0, buf, sizeof buf);
    assert_string_equal(buf, "grm.pull@1970-01-01T00:00:00Z");
    sched_tick_id("grm.pull", INT64_C(253402300799), 0, buf, sizeof buf);
    assert_string_equal(buf, "grm.pull@9999-12-31T23:59:59Z");

    /* the longest name with the manual suffix fills the buffer exactly */
    memset(name, 'n', SCHED_JOB_NAME_MAX);
    name[SCHED_JOB_NAME_MAX] = '\0';
    sched_tick_id(name, T2024, 1, buf, sizeof buf);
    assert_int_equal(strlen(buf), SCHED_TICK_ID_MAX);
    assert_string_equal(buf + SCHED_JOB_NAME_MAX, "@2024-01-01T00:00:00Z/manual");

    /* a short buffer is cut, never overrun */
    sched_tick_id("grm.pull", T2024, 0, small, sizeof small);
    assert_string_equal(small, "grm.pull@20");
}

/* --- planning -------------------------------------------------------------------------- */

static void assert_ticks(const struct sched_plan *p, int64_t first, int64_t step, size_t n)
{
    assert_int_equal(p->n, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(p->ticks[i], first + (int64_t)i * step);
}

static void test_plan_on_time_ticks(void **state)
{
    struct sched_job j = interval_job("p", 60, 0, 0, SCHED_SKIP, 1, 30);
    struct sched_plan p;

    (void)state;
    sched_job_plan(&j, T2024, T2024 + 59, &p); /* nothing due yet */
    assert_int_equal(p.n, 0);
    assert_int_equal(p.dropped, 0);
    assert_int_equal(p.dropped_last, 0);
    assert_false(p.more);
    assert_int_equal(p.next_due, T2024 + 60);

    sched_job_plan(&j, T2024, T2024 + 60, &p); /* due at its second */
    assert_ticks(&p, T2024 + 60, 60, 1);
    assert_int_equal(p.next_due, T2024 + 120);

    sched_job_plan(&j, T2024, T2024 + 90, &p); /* 30s late is still on time */
    assert_ticks(&p, T2024 + 60, 60, 1);
    assert_int_equal(p.dropped, 0);

    sched_job_plan(&j, T2024 + 60, T2024 + 90, &p); /* handled: nothing more */
    assert_int_equal(p.n, 0);
    assert_int_equal(p.next_due, T2024 + 120);

    /* a cursor between ticks, and one ahead of now */
    sched_job_plan(&j, T2024 + 61, T2024 + 125, &p);
    assert_ticks(&p, T2024 + 120, 60, 1);
    sched_job_plan(&j, T2024 + 600, T2024, &p);
    assert_int_equal(p.n, 0);
    assert_int_equal(p.next_due, T2024 + 660);

    /* with an offset */
    j = interval_job("p", 3600, 900, 0, SCHED_SKIP, 1, 30);
    sched_job_plan(&j, T2024, T2024 + 901, &p);
    assert_ticks(&p, T2024 + 900, 0, 1);
    assert_int_equal(p.next_due, T2024 + 4500);
}

static void test_plan_skip_drops_late_ticks(void **state)
{
    struct sched_job j = interval_job("s", 60, 0, 0, SCHED_SKIP, 1, 30);
    struct sched_plan p;

    (void)state;
    /* ticks +60..+600 are due at +605: +600 is on time, the nine before it are late */
    sched_job_plan(&j, T2024, T2024 + 605, &p);
    assert_ticks(&p, T2024 + 600, 60, 1);
    assert_int_equal(p.dropped, 9);
    assert_int_equal(p.dropped_last, T2024 + 540);
    assert_false(p.more);
    assert_int_equal(p.next_due, T2024 + 660);

    /* all of them late: nothing planned, all dropped */
    sched_job_plan(&j, T2024, T2024 + 631, &p);
    assert_int_equal(p.n, 0);
    assert_int_equal(p.dropped, 10);
    assert_int_equal(p.dropped_last, T2024 + 600);
    assert_int_equal(p.next_due, T2024 + 660);

    /* exactly grace late is on time, one second more is missed */
    sched_job_plan(&j, T2024 + 540, T2024 + 630, &p);
    assert_ticks(&p, T2024 + 600, 60, 1);
    assert_int_equal(p.dropped, 0);
    sched_job_plan(&j, T2024 + 540, T2024 + 631, &p);
    assert_int_equal(p.n, 0);
    assert_int_equal(p.dropped, 1);
}

static void test_plan_catch_up_keeps_the_newest(void **state)
{
    struct sched_job j = interval_job("c", 60, 0, 0, SCHED_CATCH_UP, 3, 30);
    struct sched_plan p;

    (void)state;
    /* nine missed (+60..+540) and one on time (+600): the newest three missed and the on-time
     * one are planned, six dropped */
    sched_job_plan(&j, T2024, T2024 + 605, &p);
    assert_ticks(&p, T2024 + 420, 60, 4);
    assert_int_equal(p.dropped, 6);
    assert_int_equal(p.dropped_last, T2024 + 360);
    assert_int_equal(p.next_due, T2024 + 660);

    /* fewer missed than catch_up_max: all of them, nothing dropped */
    sched_job_plan(&j, T2024 + 420, T2024 + 605, &p);
    assert_ticks(&p, T2024 + 480, 60, 3);
    assert_int_equal(p.dropped, 0);
    assert_int_equal(p.dropped_last, 0);

    /* catch_up_max 1: one poll stands for all the missed ones */
    j.catch_up_max = 1;
    sched_job_plan(&j, T2024, T2024 + 631, &p);
    assert_ticks(&p, T2024 + 600, 0, 1);
    assert_int_equal(p.dropped, 9);
    assert_int_equal(p.dropped_last, T2024 + 540);
}

static void test_plan_more_than_fits_comes_in_rounds(void **state)
{
    struct sched_job j = interval_job("m", 1, 0, 0, SCHED_SKIP, 1, DAY);
    struct sched_plan p;

    (void)state;
    /* 100 ticks on time (a grace of a day) */
    sched_job_plan(&j, T2024, T2024 + 100, &p);
    assert_ticks(&p, T2024 + 1, 1, SCHED_PLAN_MAX);
    assert_true(p.more);
    assert_int_equal(p.dropped, 0);
    assert_int_equal(p.next_due, T2024 + 65);
    sched_job_plan(&j, p.ticks[p.n - 1], T2024 + 100, &p);
    assert_ticks(&p, T2024 + 65, 1, 36);
    assert_false(p.more);
    assert_int_equal(p.next_due, T2024 + 101);

    /* catch_up_max 1000 of 1998 missed plus 2 on time: 998 dropped once, then 1002 planned
     * in rounds of 64, oldest first, each round moving the cursor past the previous */
    j = interval_job("m", 1, 0, 0, SCHED_CATCH_UP, 1000, 1);
    int64_t cursor = T2024, expect = T2024 + 999;
    uint64_t planned = 0, dropped = 0;
    int rounds = 0;
    do {
        sched_job_plan(&j, cursor, T2024 + 2000, &p);
        dropped += p.dropped;
        for (size_t i = 0; i < p.n; i++)
            assert_int_equal(p.ticks[i], expect++);
        planned += p.n;
        if (p.dropped_last > cursor)
            cursor = p.dropped_last;
        if (p.n > 0 && p.ticks[p.n - 1] > cursor)
            cursor = p.ticks[p.n - 1];
        assert_true(++rounds <= 20);
    } while (p.more);
    assert_int_equal(planned, 1002);
    assert_int_equal(dropped, 998);
    assert_int_equal(rounds, 16);
    assert_int_equal(p.next_due, T2024 + 2001);
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void test_plan_months_old_cursor_is_counted_not_enumerated(void **state)
{
    struct sched_job j = interval_job("old", 1, 0, 0, SCHED_SKIP, 1, 30);
    const int64_t now = T2024 + 200 * DAY, cursor = now - 90 * DAY;
    struct sched_plan p;
    struct timespec t0;

    (void)state;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 1000; i++)
        sched_job_plan(&j, cursor, now, &p);
    /* 7.8 million ticks, a thousand times over: only arithmetic can be this fast */
    assert_true(seconds_since(&t0) < 0.5);
    /* ticks now-30..now are on time; the 90 days of ticks before them are dropped */
    assert_ticks(&p, now - 30, 1, 31);
    assert_int_equal(p.dropped, 90 * DAY - 31);
    assert_int_equal(p.dropped_last, now - 31);
    assert_false(p.more);
    assert_int_equal(p.next_due, now + 1);

    j = interval_job("old", 1, 0, 0, SCHED_CATCH_UP, 5, 30);
    sched_job_plan(&j, cursor, now, &p);
    assert_ticks(&p, now - 35, 1, 36);
    assert_int_equal(p.dropped, 90 * DAY - 36);
    assert_int_equal(p.dropped_last, now - 36);

    /* a cursor of 0 (a job row without a cursor) is no slower */
    sched_job_plan(&j, 0, now, &p);
    assert_int_equal(p.dropped, (uint64_t)(now - 36));
}

static void test_plan_jitter_moves_due_times(void **state)
{
    struct sched_job j = interval_job("ingest.poll.email", 60, 0, 50, SCHED_SKIP, 1, 30);
    struct sched_plan p;
    int64_t t = T2024 + 60, jit;

    (void)state;
    while ((jit = sched_job_jitter(&j, t)) < 2) /* a tick with a visible delay */
        t += 60;
    sched_job_plan(&j, t - 60, t + jit - 1, &p);
    assert_int_equal(p.n, 0);
    assert_int_equal(p.next_due, t + jit);

    sched_job_plan(&j, t - 60, t + jit, &p);
    assert_ticks(&p, t, 0, 1);
    assert_int_equal(p.next_due, t + 60 + sched_job_jitter(&j, t + 60));

    /* grace counts from the due time, not the nominal one */
    sched_job_plan(&j, t - 60, t + jit + 30, &p);
    assert_ticks(&p, t, 0, 1);
    sched_job_plan(&j, t - 60, t + jit + 31, &p);
    assert_int_equal(p.dropped, 1);
    assert_int_equal(p.dropped_last, t);

    /* across many ticks: due exactly at tick + jitter, and nothing planned before it */
    for (int64_t k = 1; k <= 500; k++) {
        int64_t tick = T2024 + k * 60, due = tick + sched_job_jitter(&j, tick);

        sched_job_plan(&j, tick - 60, due - 1, &p);
        assert_int_equal(p.n, 0);
        assert_int_equal(p.dropped, 0);
        assert_int_equal(p.next_due, due);
        sched_job_plan(&j, tick - 60, due, &p);
        assert_ticks(&p, tick, 0, 1);
    }
}

static void test_plan_cron_ticks(void **state)
{
    struct sched_schedule *s = load_ok("jobs:\n"
                                       "  - name: nightly\n"
                                       "    type: a.b\n"
                                       "    cron: '0 2 * * *'\n"
                                       "    tz: Asia/Kolkata\n"
                                       "    missed: catch_up\n"
                                       "  - name: fively\n"
                                       "    type: a.b\n"
                                       "    cron: '*/5 * * * *'\n",
                                       NULL, NULL);
    const struct sched_job *n = &s->jobs[0], *m = &s->jobs[1];
    const int64_t t0 = T2024 + 20 * 3600 + 1800; /* 2024-01-02 02:00 in Kolkata */
    struct sched_plan p;

    (void)state;
    assert_int_equal(sched_job_next(n, t0 - 1), t0);
    /* ten nightly ticks due, the newest on time: one missed one kept, eight dropped */
    sched_job_plan(n, t0, t0 + 10 * DAY + 5, &p);
    assert_ticks(&p, t0 + 9 * DAY, DAY, 2);
    assert_int_equal(p.dropped, 8);
    assert_int_equal(p.dropped_last, t0 + 8 * DAY);
    assert_int_equal(p.next_due, t0 + 11 * DAY);

    /* a cursor 200 days old: only the last 35 days are enumerated, and what lies before them
     * counts as one dropped tick (a lower bound) */
    sched_job_plan(n, t0, t0 + 200 * DAY + 5, &p);
    assert_ticks(&p, t0 + 199 * DAY, DAY, 2);
    assert_int_equal(p.dropped, 1 + 33);
    assert_int_equal(p.dropped_last, t0 + 198 * DAY);

    /* every five minutes, 200 days behind, skip: the count is exact within the window and
     * stops there (an enumeration of all 200 days would count 57,600), which is what bounds
     * the work */
    const int64_t now = T2024 + 300 * DAY + 10;
    sched_job_plan(m, now - 200 * DAY, now, &p);
    assert_ticks(&p, now - 10, 300, 1);
    assert_int_equal(p.dropped, 1 + 35 * 288 - 1);
    assert_int_equal(p.dropped_last, now - 310);
    assert_int_equal(p.next_due, now + 290);

    /* a pre-window gap with no tick inside the window still moves the cursor past it */
    struct sched_schedule *y =
        load_ok("jobs:\n  - name: y\n    type: a.b\n    cron: '0 0 1 1 *'\n", NULL, NULL);
    sched_job_plan(&y->jobs[0], T2024 - 400 * DAY, T2024 + 100 * DAY, &p);
    assert_int_equal(p.n, 0);
    assert_int_equal(p.dropped, 1);
    assert_true(p.dropped_last >= T2024);
    assert_int_equal(p.next_due, T2024 + 366 * DAY); /* 2025-01-01: 2024 is a leap year */
    sched_schedule_destroy(y);
    sched_schedule_destroy(s);
}

/* Runs a job the way the scheduler does, from `start` to `end` with uneven steps (some longer
 * than grace, so ticks are missed), and checks after every plan that: each planned tick is due
 * and newer than the cursor, in order; the cursor only moves over ticks the plan handled
 * (planned + dropped = every tick it passed); skip plans only on-time ticks; catch_up keeps
 * at most catch_up_max missed ones per round, and newer ones than it drops. */
static void simulate(const struct sched_job *j, int64_t start, int64_t end, uint64_t *planned,
                     uint64_t *dropped)
{
    struct sched_plan p;
    int64_t cursor = start, now = start;
    uint64_t seed = 12345;

    while (now < end) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        now += (int64_t)(seed >> 33) % 200 == 0 ? 900 : 1 + (int64_t)(seed >> 40) % 20;
        do {
            int64_t newest = cursor, passed = 0, late = 0, oldest_late = INT64_MAX;

            sched_job_plan(j, cursor, now, &p);
            for (size_t i = 0; i < p.n; i++) {
                int64_t due = p.ticks[i] + sched_job_jitter(j, p.ticks[i]);

                assert_true(p.ticks[i] > cursor);
                assert_true(i == 0 || p.ticks[i] > p.ticks[i - 1]);
                assert_true(due <= now);
                if (now - due > j->grace_s && late++ == 0)
                    oldest_late = p.ticks[i];
                newest = p.ticks[i] > newest ? p.ticks[i] : newest;
            }
            if (j->missed == SCHED_SKIP)
                assert_int_equal(late, 0);
            else
                assert_true(late <= (int64_t)j->catch_up_max);
            if (p.dropped > 0) {
                /* catch_up keeps the newest missed ticks: the dropped ones are older */
                assert_true(p.dropped_last > cursor && p.dropped_last < oldest_late);
                newest = p.dropped_last > newest ? p.dropped_last : newest;
            }
            for (int64_t t = sched_job_next(j, cursor); t != -1 && t <= newest;
                 t = sched_job_next(j, t))
                passed++;
            assert_int_equal((uint64_t)passed, p.n + p.dropped);
            /* the tick after the handled ones is not due yet, unless the plan was full */
            assert_true(p.more || p.next_due == -1 || p.next_due > now);
            *planned += p.n;
            *dropped += p.dropped;
            cursor = newest;
        } while (p.more);
    }
}

static void test_plans_handle_every_tick_once_in_a_simulated_run(void **state)
{
    struct sched_schedule *s = load_ok("jobs:\n"
                                       "  - {name: a, type: a.b, every: 1m, jitter: 50s}\n"
                                       "  - {name: b, type: a.b, every: 1m, jitter: 50s, missed: "
                                       "catch_up, catch_up_max: 3}\n"
                                       "  - {name: c, type: a.b, every: 7s, missed: catch_up, "
                                       "catch_up_max: 100, grace: 1s}\n"
                                       "  - {name: d, type: a.b, cron: '* * * * *', jitter: 59m}\n"
                                       "  - {name: e, type: a.b, cron: '*/2 * * * *', jitter: 30m, "
                                       "missed: catch_up, catch_up_max: 5, grace: 5m}\n",
                                       NULL, NULL);

    (void)state;
    for (size_t i = 0; i < s->njobs; i++) {
        uint64_t planned = 0, dropped = 0;

        simulate(&s->jobs[i], T2024, T2024 + DAY, &planned, &dropped);
        assert_true(planned > 50 && dropped > 50); /* both kinds of rounds happened */
    }
    sched_schedule_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fleet_schedule_loads_against_the_real_schemas_and_topology),
        cmocka_unit_test(test_grm_interval_comes_from_the_environment),
        cmocka_unit_test(test_every_error_names_the_job_and_line),
        cmocka_unit_test(test_unreadable_files_say_so),
        cmocka_unit_test(test_too_many_jobs_are_refused),
        cmocka_unit_test(test_messages_are_checked_against_schemas),
        cmocka_unit_test(test_types_must_be_routed_by_topic_rules),
        cmocka_unit_test(test_settings_and_defaults),
        cmocka_unit_test(test_expansion_applies_to_settings_only),
        cmocka_unit_test(test_data_is_typed_like_yaml_core_and_quotes_make_strings),
        cmocka_unit_test(test_next_tick_is_the_next_multiple_plus_offset),
        cmocka_unit_test(test_jitter_is_stable_in_range_and_spread),
        cmocka_unit_test(test_tick_ids_are_job_at_utc_time),
        cmocka_unit_test(test_plan_on_time_ticks),
        cmocka_unit_test(test_plan_skip_drops_late_ticks),
        cmocka_unit_test(test_plan_catch_up_keeps_the_newest),
        cmocka_unit_test(test_plan_more_than_fits_comes_in_rounds),
        cmocka_unit_test(test_plan_months_old_cursor_is_counted_not_enumerated),
        cmocka_unit_test(test_plan_jitter_moves_due_times),
        cmocka_unit_test(test_plan_cron_ticks),
        cmocka_unit_test(test_plans_handle_every_tick_once_in_a_simulated_run),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
