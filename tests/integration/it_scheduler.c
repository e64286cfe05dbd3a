/* it_scheduler.c - sy-scheduler end to end against the real broker, Redis and PostgreSQL: three
 * replicas whose leader is SIGKILLed every half minute (and Redis restarted once) still publish
 * every tick of every job exactly once; a schedule naming a type nothing receives, or data its
 * schema refuses, stops the process with exit 78 naming the job; SIGTERM stops a replica with
 * exit 0 within seconds. Messages are read back from sy.sched_probe, which nothing consumes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "sy/amqp.h"
#include "sy/err.h"
#include "sy/msg.h"
#include "sy/pg.h"
#include "sy/topology.h"

#define NREPLICAS       3
#define RUN_MS          (175 * 1000) /* replicas' whole run in the failover test */
#define KILL_GAP_MIN_MS 25000
#define KILL_GAP_MAX_MS 35000
#define TAKEOVER_MAX_MS 15000 /* lease TTL (10 s by default) plus slack */
#define LEADER_WAIT_MS  30000 /* how long to look for a leader before giving up */
#define STOP_MAX_MS     5000  /* SIGTERM to exit */
#define MAX_TICKS       4096
#define TICK_TYPE       "schedtest.tick"
#define PROBE_WORKER    "sched_probe"
#define PROBE_QUEUE     "sy.sched_probe"

struct replica {
    struct th_proc proc;
    bool running;
    int port;
    char env_addr[64];
    char env_instance[96];
};

struct fixture {
    struct sy_amqp *amqp;
    struct sy_topology *topo;
    char run[17];
    char bin[1024];
    char dir[1024]; /* this run's schedule and schema files */
    char files[8][1200];
    size_t nfiles;
    struct replica reps[NREPLICAS + 1]; /* the last one for single-process tests */
};

/* --- processes and files ------------------------------------------------------------------ */

static void path_in_dir(const struct fixture *f, const char *name, char *out, size_t outsz)
{
    int n = snprintf(out, outsz, "%s/%s", f->dir, name);
    assert_true(n > 0 && (size_t)n < outsz);
}

/* Writes a file of this run (removed by the group teardown); its path into out. */
static void write_file(struct fixture *f, const char *name, const char *text, char *out,
                       size_t outsz)
{
    path_in_dir(f, name, out, outsz);
    FILE *fp = fopen(out, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
    assert_true(f->nfiles < sizeof f->files / sizeof f->files[0]);
    snprintf(f->files[f->nfiles++], sizeof f->files[0], "%s", out);
}

/* Starts sy-scheduler on `schedule` in `group` with a fresh health port; `extra` is one more
 * "K=V" setting or NULL. */
static void spawn_replica(struct fixture *f, struct replica *r, const char *schedule,
                          const char *group, const char *instance, const char *extra)
{
    static char env_schedule[1200], env_group[160];
    snprintf(env_schedule, sizeof env_schedule, "SY_SCHEDULE=%s", schedule);
    snprintf(env_group, sizeof env_group, "SY_SCHEDULER_GROUP=%s", group);
    r->port = th_free_port();
    snprintf(r->env_addr, sizeof r->env_addr, "SY_HTTP_ADDR=127.0.0.1:%d", r->port);
    snprintf(r->env_instance, sizeof r->env_instance, "SY_INSTANCE=%s", instance);
    const char *env[] = {env_schedule,        env_group, r->env_addr, r->env_instance,
                         "SY_LOG_LEVEL=info", extra,     NULL};
    assert_int_equal(th_proc_spawn(&r->proc, f->bin, env), 0);
    r->running = true;
}

/* SIGKILL if still running, and reap. */
static void reap(struct replica *r)
{
    if (r->running) {
        th_proc_cleanup(&r->proc);
        r->running = false;
    }
}

/* True when a replica that should be running has exited on its own. */
static bool died(struct replica *r)
{
    if (r->running && th_proc_wait(&r->proc, 0) == 0) {
        r->running = false;
        return true;
    }
    return false;
}

/* Counts the lines of a process's log holding `needle` (and `also`, when not NULL). */
static int log_count2(const struct th_proc *p, const char *needle, const char *also)
{
    FILE *fp = fopen(p->log_path, "r");
    if (!fp)
        return 0;
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, fp))
        if (strstr(line, needle) && (!also || strstr(line, also)))
            n++;
    fclose(fp);
    return n;
}

static int log_count(const struct th_proc *p, const char *needle)
{
    return log_count2(p, needle, NULL);
}

/* --- /metrics ----------------------------------------------------------------------------- */

/* GET path on 127.0.0.1:port; the body (malloc'd, NUL-terminated) on a 200, else NULL. */
static char *http_get(int port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return NULL;
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    char *body = NULL;
    int status = 0;
    if (!buf || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        write(fd, req, (size_t)n) != n)
        goto out;
    for (;;) {
        if (len + 1 == cap) {
            if (cap >= (1u << 22))
                goto out;
            char *bigger = realloc(buf, cap * 2);
            if (!bigger)
                goto out;
            buf = bigger;
            cap *= 2;
        }
        ssize_t got = read(fd, buf + len, cap - 1 - len);
        if (got < 0)
            goto out;
        if (got == 0)
            break;
        len += (size_t)got;
    }
    buf[len] = '\0';
    char *sep = strstr(buf, "\r\n\r\n");
    if (sep && sscanf(buf, "HTTP/1.%*d %d", &status) == 1 && status == 200)
        body = strdup(sep + 4);
out:
    free(buf);
    close(fd);
    return body;
}

/* Waits up to timeout_ms until a running replica answers /healthz. */
static void wait_health(const struct replica *r, int timeout_ms)
{
    int64_t end = th_now_ms() + timeout_ms;
    while (r->running && th_now_ms() < end) {
        char *body = http_get(r->port, "/healthz");
        bool up = body != NULL;
        free(body);
        if (up)
            return;
        th_sleep_ms(50);
    }
}

/* The value of metric `name` (with `label`, e.g. job="x", among its labels when not NULL) from
 * a replica's /metrics: 0 when found, -1 when the replica does not answer or lacks it. */
static int metric(const struct replica *r, const char *name, const char *label, double *out)
{
    char *body = http_get(r->port, "/metrics");
    if (!body)
        return -1;
    size_t nlen = strlen(name);
    int rc = -1;
    for (char *line = strtok(body, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, name, nlen) != 0 || (line[nlen] != ' ' && line[nlen] != '{'))
            continue;
        if (label) {
            char *close = strchr(line + nlen, '}');
            char *at = strstr(line + nlen, label);
            if (line[nlen] != '{' || !close || !at || at > close)
                continue;
        }
        char *value = strrchr(line, ' ');
        char *end = NULL;
        double v = value ? strtod(value + 1, &end) : 0;
        if (value && end != value + 1) {
            *out = v;
            rc = 0;
            break;
        }
    }
    free(body);
    return rc;
}

static bool is_leader(const struct replica *r)
{
    double v = 0;
    return r->running && metric(r, "sy_scheduler_leader", NULL, &v) == 0 && v == 1;
}

/* Polls the running replicas (but `except`, -1 for none) until exactly one reports leader;
 * returns its index, or -1 after timeout_ms. *doubles counts polls where two or more did. */
static int wait_leader(struct replica *reps, int n, int except, int timeout_ms, int *doubles)
{
    int64_t end = th_now_ms() + timeout_ms;
    for (;;) {
        int found = -1, count = 0;
        for (int i = 0; i < n; i++)
            if (i != except && is_leader(&reps[i])) {
                found = i;
                count++;
            }
        if (count == 1)
            return found;
        if (count > 1 && doubles)
            (*doubles)++;
        if (th_now_ms() >= end)
            return -1;
        th_sleep_ms(100);
    }
}

/* The leases a replica has taken (sy_scheduler_takeovers_total), -1 when it does not say. */
static double takeovers(const struct replica *r)
{
    double v = -1;
    if (!r->running || metric(r, "sy_scheduler_takeovers_total", NULL, &v) != 0)
        return -1;
    return v;
}

/* After Redis lost every lease: polls until some replica took a lease since `before` (its
 * takeovers then) and exactly one reports leader; that one's index, or -1 after timeout_ms. */
static int wait_new_lease(struct replica *reps, int n, const double *before, int timeout_ms,
                          int *doubles)
{
    int64_t end = th_now_ms() + timeout_ms;
    for (;;) {
        bool taken = false;
        for (int i = 0; i < n && !taken; i++)
            taken = takeovers(&reps[i]) > before[i];
        if (taken) {
            int l = wait_leader(reps, n, -1, 0, doubles);
            if (l >= 0)
                return l;
        }
        if (th_now_ms() >= end)
            return -1;
        th_sleep_ms(100);
    }
}

/* Sleeps until `when` (ms since the epoch), failing the test when a replica dies meanwhile. */
static void sleep_until(struct replica *reps, int n, int64_t when)
{
    for (;;) {
        for (int i = 0; i < n; i++)
            if (died(&reps[i])) {
                th_proc_dump_log(&reps[i].proc, 40);
                fail_msg("replica %d exited on its own with status %d", i,
                         reps[i].proc.exit_status);
            }
        int64_t left = when - th_now_ms();
        if (left <= 0)
            return;
        th_sleep_ms(left < 200 ? (int)left : 200);
    }
}

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: plenty for spreading kill times. */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

static int64_t rng_between(uint64_t *s, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

/* --- reading the ticks back --------------------------------------------------------------- */

struct job_tally {
    const char *name;
    int64_t every_s;
    int64_t ticks[MAX_TICKS];
    size_t n;
    /* from analyse() */
    int64_t first, last;
    size_t duplicates, missing, misaligned;
};

struct drain_result {
    size_t messages, foreign, bad_id, id_mismatch, bad_type, undecodable, overflow;
};

/* Parses "<job>@YYYY-MM-DDTHH:MM:SSZ" for this job; the tick in Unix seconds, or -1. */
static int64_t parse_tick_id(const char *id, const char *job)
{
    size_t jl = strlen(job);
    if (strncmp(id, job, jl) != 0 || id[jl] != '@')
        return -1;
    struct tm tm = {0};
    char z = 0, rest = 0;
    if (sscanf(id + jl + 1, "%4d-%2d-%2dT%2d:%2d:%2d%c%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &z, &rest) != 7 ||
        z != 'Z')
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    int64_t t = (int64_t)timegm(&tm);
    /* Only the canonical spelling counts: format it back and compare. */
    char again[64];
    struct tm back;
    time_t tt = (time_t)t;
    gmtime_r(&tt, &back);
    strftime(again, sizeof again, "%Y-%m-%dT%H:%M:%SZ", &back);
    return strcmp(again, id + jl + 1) == 0 ? t : -1;
}

/* Takes every message of the probe queue (acking it) and files our jobs' ticks by id. */
static void drain(struct sy_amqp *a, struct job_tally *jobs, size_t njobs, struct drain_result *d)
{
    memset(d, 0, sizeof *d);
    for (;;) {
        struct sy_amqp_msg *m = NULL;
        int rc = sy_amqp_get(a, PROBE_QUEUE, &m);
        if (rc == -SY_ENOTFOUND)
            break;
        if (rc != 0)
            fail_msg("get from %s: %s (%s)", PROBE_QUEUE, sy_strerror(rc), sy_amqp_error(a));
        d->messages++;
        struct sy_msg *msg = NULL;
        char err[256], job[128] = "";
        if (sy_msg_decode(m->body, m->len, &msg, err, sizeof err) != 0) {
            fprintf(stderr, "undecodable message (message_id %s): %s\n",
                    m->message_id ? m->message_id : "-", err);
            d->undecodable++;
            goto next;
        }
        const char *id = sy_msg_id(msg);
        (void)sy_msg_copy_str(msg, "job", job, sizeof job);
        struct job_tally *t = NULL;
        for (size_t i = 0; i < njobs; i++) {
            size_t jl = strlen(jobs[i].name);
            if ((strncmp(id, jobs[i].name, jl) == 0 && id[jl] == '@') ||
                strcmp(job, jobs[i].name) == 0)
                t = &jobs[i];
        }
        if (!t) {
            d->foreign++; /* another run's, or someone else's schedtest message */
            goto next;
        }
        if (!m->message_id || strcmp(m->message_id, id) != 0) {
            fprintf(stderr, "AMQP message_id %s differs from the envelope id %s\n",
                    m->message_id ? m->message_id : "(none)", id);
            d->id_mismatch++;
        }
        if (strcmp(sy_msg_type(msg), TICK_TYPE) != 0 || strcmp(m->routing_key, TICK_TYPE) != 0) {
            fprintf(stderr, "message %s: type %s, routing key %s\n", id, sy_msg_type(msg),
                    m->routing_key);
            d->bad_type++;
        }
        int64_t tick = parse_tick_id(id, t->name);
        if (tick < 0) {
            fprintf(stderr, "message id %s is not <job>@<UTC second>\n", id);
            d->bad_id++;
        } else if (t->n < MAX_TICKS) {
            t->ticks[t->n++] = tick;
        } else {
            d->overflow++;
        }
    next:
        sy_msg_destroy(msg);
        assert_int_equal(sy_amqp_settle(a, m, 1, 0), 0);
        sy_amqp_msg_free(m);
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* First and last tick, and what lies between: ticks seen twice, ticks never seen, ticks off
 * the job's grid. */
static void analyse(struct job_tally *t)
{
    qsort(t->ticks, t->n, sizeof t->ticks[0], cmp_i64);
    t->first = t->n ? t->ticks[0] : 0;
    t->last = t->n ? t->ticks[t->n - 1] : 0;
    for (size_t i = 0; i < t->n; i++) {
        if (t->ticks[i] % t->every_s != 0) {
            fprintf(stderr, "%s: tick %lld is not a multiple of %llds\n", t->name,
                    (long long)t->ticks[i], (long long)t->every_s);
            t->misaligned++;
        }
        if (i == 0)
            continue;
        int64_t gap = t->ticks[i] - t->ticks[i - 1];
        if (gap == 0) {
            fprintf(stderr, "%s: tick %lld published twice\n", t->name, (long long)t->ticks[i]);
            t->duplicates++;
        } else if (gap > t->every_s) {
            int64_t lost = gap / t->every_s - 1;
            fprintf(stderr, "%s: %lld tick(s) missing after %lld\n", t->name, (long long)lost,
                    (long long)t->ticks[i - 1]);
            t->missing += (size_t)lost;
        }
    }
}

/* --- fixture ------------------------------------------------------------------------------ */

static int group_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    th_need_env("SY_REDIS_URL");
    const char *pg_url = th_need_env("SY_PG_URL");
    const char *build = th_need_env("SY_BUILD_DIR");
    const char *src = th_need_env("SY_SOURCE_DIR");
    f->amqp = th_amqp(&f->topo);
    th_run_id(f->run);

    snprintf(f->bin, sizeof f->bin, "%s/workers/scheduler/sy-scheduler", build);
    if (access(f->bin, X_OK) != 0)
        fail_msg("sy-scheduler is not built: %s: %s", f->bin, strerror(errno));

    /* The worker applies no migrations: the ledger's tables come from here. */
    char err[512] = "", dir[1024];
    struct sy_pg *pg = sy_pg_connect(pg_url, err, sizeof err);
    if (!pg)
        fail_msg("sy_pg_connect: %s", err);
    snprintf(dir, sizeof dir, "%s/schemas/sql/postgres", src);
    if (sy_pg_migrate(pg, dir, NULL, NULL, err, sizeof err) != 0)
        fail_msg("migrate: %s", err);
    sy_pg_destroy(pg);

    snprintf(f->dir, sizeof f->dir, "%s/Testing", build);
    if (mkdir(f->dir, 0755) != 0 && errno != EEXIST)
        fail_msg("mkdir %s: %s", f->dir, strerror(errno));
    snprintf(f->dir, sizeof f->dir, "%s/Testing/sched-%s", build, f->run);
    if (mkdir(f->dir, 0755) != 0)
        fail_msg("mkdir %s: %s", f->dir, strerror(errno));
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    struct fixture *f = *state;
    for (size_t i = 0; i < f->nfiles; i++)
        unlink(f->files[i]);
    rmdir(f->dir);
    if (f->amqp)
        th_purge_worker(f->amqp, f->topo, PROBE_WORKER);
    sy_amqp_destroy(f->amqp);
    sy_topology_destroy(f->topo);
    free(f);
    return 0;
}

/* Whatever a test left running is killed, so the next one starts clean. */
static int teardown(void **state)
{
    struct fixture *f = *state;
    for (size_t i = 0; i < sizeof f->reps / sizeof f->reps[0]; i++)
        reap(&f->reps[i]);
    return 0;
}

/* The test's own connection idles through minutes of sleep, longer than its heartbeat: a
 * fresh one before it is used again. */
static void reconnect(struct fixture *f)
{
    sy_amqp_destroy(f->amqp);
    sy_topology_destroy(f->topo);
    f->amqp = th_amqp(&f->topo);
}

/* One interval job of TICK_TYPE, catching up what it missed. */
static void job_yaml(char *buf, size_t bufsz, const char *name, const char *every)
{
    snprintf(buf, bufsz,
             "  - name: %s\n"
             "    every: %s\n"
             "    type: " TICK_TYPE "\n"
             "    data:\n"
             "      job: %s\n"
             "      note: it_scheduler\n"
             "    missed: catch_up\n"
             "    catch_up_max: 1000\n"
             "    grace: 60s\n",
             name, every, name);
}

/* --- (b) a bad schedule stops the process ------------------------------------------------- */

/* Runs one replica on `schedule`, expects exit 78 and a log line naming `job`. */
static void expect_config_exit(struct fixture *f, const char *schedule, const char *job,
                               const char *extra)
{
    struct replica *r = &f->reps[NREPLICAS];
    char group[64], instance[64];
    snprintf(group, sizeof group, "it-sched-%s-bad", f->run);
    snprintf(instance, sizeof instance, "it-sched-bad-%s", f->run);
    spawn_replica(f, r, schedule, group, instance, extra);
    int rc = th_proc_wait(&r->proc, 30000);
    if (rc != 0 || r->proc.exit_status != 78 || log_count(&r->proc, job) == 0)
        th_proc_dump_log(&r->proc, 30);
    assert_int_equal(rc, 0);
    r->running = false;
    assert_int_equal(r->proc.exit_status, 78);
    assert_true(log_count(&r->proc, job) > 0);
}

static void test_a_type_without_a_route_exits_78_naming_the_job(void **state)
{
    struct fixture *f = *state;
    char good[64], bad[64], jobs[2][512], text[1200], schedule[1200], schema[1200];
    snprintf(good, sizeof good, "routed-%s", f->run);
    snprintf(bad, sizeof bad, "nowhere-%s", f->run);
    job_yaml(jobs[0], sizeof jobs[0], good, "1s");
    /* A type with a schema of its own (so only the route is missing) that no route matches. */
    snprintf(jobs[1], sizeof jobs[1],
             "  - name: %s\n"
             "    every: 1s\n"
             "    type: unrouted.tick\n"
             "    data: {note: nobody listens}\n",
             bad);
    snprintf(text, sizeof text, "jobs:\n%s%s", jobs[0], jobs[1]);
    write_file(f, "unrouted.yaml", text, schedule, sizeof schedule);

    /* The schemas of the test plus unrouted.tick, in a directory of this run. */
    char schema_dir[1100], env[1200];
    path_in_dir(f, "schemas", schema_dir, sizeof schema_dir);
    assert_int_equal(mkdir(schema_dir, 0755), 0);
    write_file(f, "schemas/unrouted.tick.yaml",
               "type: unrouted.tick\n"
               "versions: [1]\n"
               "description: a type that no worker's routes match\n"
               "data:\n"
               "  fields:\n"
               "    note: {type: str, max_len: 200}\n",
               schema, sizeof schema);
    write_file(f, "schemas/" TICK_TYPE ".yaml",
               "type: " TICK_TYPE "\n"
               "versions: [1]\n"
               "description: the ticks of the scheduler's test\n"
               "data:\n"
               "  fields:\n"
               "    job: {type: str}\n"
               "    note: {type: str}\n",
               schema, sizeof schema);
    snprintf(env, sizeof env, "SY_SCHEMA_DIR=%s", schema_dir);
    expect_config_exit(f, schedule, bad, env);
    /* The files go in the group teardown; the directory must be empty by then. */
    for (size_t i = 0; i < f->nfiles; i++)
        if (strstr(f->files[i], "/schemas/"))
            unlink(f->files[i]);
    rmdir(schema_dir);
}

static void test_data_its_schema_refuses_exits_78_naming_the_job(void **state)
{
    struct fixture *f = *state;
    char good[64], bad[64], jobs[2][512], text[1200], schedule[1200];
    snprintf(good, sizeof good, "fine-%s", f->run);
    snprintf(bad, sizeof bad, "badly-typed-%s", f->run);
    job_yaml(jobs[0], sizeof jobs[0], good, "2s");
    snprintf(jobs[1], sizeof jobs[1],
             "  - name: %s\n"
             "    every: 1s\n"
             "    type: " TICK_TYPE "\n"
             "    data: {job: 42}\n",
             bad);
    snprintf(text, sizeof text, "jobs:\n%s%s", jobs[0], jobs[1]);
    write_file(f, "badschema.yaml", text, schedule, sizeof schedule);
    expect_config_exit(f, schedule, bad, NULL);
}

/* --- (c) SIGTERM ---------------------------------------------------------------------------- */

static void test_sigterm_of_a_lone_leader_exits_0_within_seconds(void **state)
{
    struct fixture *f = *state;
    char job[64], yaml[512], text[700], schedule[1200], group[64], instance[64], label[100];
    snprintf(job, sizeof job, "lone-%s", f->run);
    job_yaml(yaml, sizeof yaml, job, "1s");
    snprintf(text, sizeof text, "jobs:\n%s", yaml);
    write_file(f, "lone.yaml", text, schedule, sizeof schedule);
    snprintf(group, sizeof group, "it-sched-%s-lone", f->run);
    snprintf(instance, sizeof instance, "it-sched-lone-%s", f->run);

    struct replica *r = &f->reps[NREPLICAS];
    spawn_replica(f, r, schedule, group, instance, NULL);
    if (wait_leader(r, 1, -1, LEADER_WAIT_MS, NULL) != 0) {
        th_proc_dump_log(&r->proc, 40);
        fail_msg("a lone replica never reported sy_scheduler_leader 1");
    }
    /* Stop it in the middle of its work: after it has published. */
    snprintf(label, sizeof label, "job=\"%s\"", job);
    double published = 0;
    int64_t end = th_now_ms() + 10000;
    while ((metric(r, "sy_scheduler_published_total", label, &published) != 0 || published < 2) &&
           th_now_ms() < end)
        th_sleep_ms(100);
    if (published < 2)
        th_proc_dump_log(&r->proc, 40);
    assert_true(published >= 2);

    int64_t t0 = th_now_ms();
    th_proc_signal(&r->proc, SIGTERM);
    int rc = th_proc_wait(&r->proc, 30000);
    int64_t took = th_now_ms() - t0;
    fprintf(stderr, "lone replica: SIGTERM to exit %lld ms, status %d, %.0f ticks published\n",
            (long long)took, r->proc.exit_status, published);
    if (rc != 0 || r->proc.exit_status != 0 || took > STOP_MAX_MS)
        th_proc_dump_log(&r->proc, 40);
    assert_int_equal(rc, 0);
    r->running = false;
    assert_int_equal(r->proc.exit_status, 0);
    assert_true(took <= STOP_MAX_MS);
}

/* --- (a) three replicas, kills and a Redis restart ------------------------------------------- */

static int restart_redis(void)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "'%s' svc restart redis >&2", getenv("SY_FLEET"));
    return system(cmd);
}

static void test_three_replicas_publish_every_tick_once_through_kills(void **state)
{
    struct fixture *f = *state;
    struct replica *reps = f->reps;
    static struct job_tally jobs[2];
    char names[2][64], yaml[2][512], text[1200], schedule[1200], group[64], instance[64];
    memset(jobs, 0, sizeof jobs);
    snprintf(names[0], sizeof names[0], "every1s-%s", f->run);
    snprintf(names[1], sizeof names[1], "every2s-%s", f->run);
    jobs[0] = (struct job_tally){.name = names[0], .every_s = 1};
    jobs[1] = (struct job_tally){.name = names[1], .every_s = 2};
    job_yaml(yaml[0], sizeof yaml[0], names[0], "1s");
    job_yaml(yaml[1], sizeof yaml[1], names[1], "2s");
    snprintf(text, sizeof text, "jobs:\n%s%s", yaml[0], yaml[1]);
    write_file(f, "replicas.yaml", text, schedule, sizeof schedule);
    snprintf(group, sizeof group, "it-sched-%s", f->run);
    th_purge_worker(f->amqp, f->topo, PROBE_WORKER);

    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed || seed == 0)
        seed = (uint64_t)th_now_ms() | 1;
    uint64_t rng = seed;
    const char *fleet = getenv("SY_FLEET");
    bool redis_wanted = fleet && *fleet;
    fprintf(stderr, "scheduler replicas: group %s, seed %016llx, run %d s\n", group,
            (unsigned long long)seed, RUN_MS / 1000);
    if (!redis_wanted)
        fprintf(stderr, "skipping the Redis restart: SY_FLEET is not set (run through "
                        "./fleet test to include it)\n");

    int generation = 0, nlogs = 0;
    static struct th_proc logs[NREPLICAS + 40]; /* every process started, for its log */
    const int64_t start_ms = th_now_ms();
    for (int i = 0; i < NREPLICAS; i++) {
        snprintf(instance, sizeof instance, "it-sched-%d.%d", i, generation++);
        spawn_replica(f, &reps[i], schedule, group, instance, NULL);
        logs[nlogs++] = reps[i].proc;
    }
    int doubles = 0;
    int leader = wait_leader(reps, NREPLICAS, -1, LEADER_WAIT_MS, &doubles);
    if (leader < 0) {
        for (int i = 0; i < NREPLICAS; i++)
            th_proc_dump_log(&reps[i].proc, 20);
        fail_msg("no replica became leader within %d ms", LEADER_WAIT_MS);
    }
    fprintf(stderr, "first leader: replica %d after %lld ms\n", leader,
            (long long)(th_now_ms() - start_ms));

    int64_t takeover[32];
    int kills = 0;
    int64_t redis_leader_ms = -1;
    bool redis_done = false;
    const int64_t end_ms = start_ms + RUN_MS;
    int64_t next_kill = start_ms + rng_between(&rng, KILL_GAP_MIN_MS, KILL_GAP_MAX_MS);
    while (next_kill + TAKEOVER_MAX_MS <= end_ms && kills < 32) {
        sleep_until(reps, NREPLICAS, next_kill);
        int k = wait_leader(reps, NREPLICAS, -1, LEADER_WAIT_MS, &doubles);
        if (k < 0)
            fail_msg("no single leader to kill (kill %d)", kills + 1);
        pid_t pid = reps[k].proc.pid;
        th_proc_signal(&reps[k].proc, SIGKILL);
        assert_int_equal(th_proc_wait(&reps[k].proc, 5000), 0);
        reps[k].running = false;
        int64_t t0 = th_now_ms();
        int next = wait_leader(reps, NREPLICAS, k, LEADER_WAIT_MS, &doubles);
        takeover[kills] = next >= 0 ? th_now_ms() - t0 : -1;
        fprintf(stderr, "kill %d at %lld s: replica %d (pid %d) SIGKILLed; ", kills + 1,
                (long long)((t0 - start_ms) / 1000), k, (int)pid);
        if (next >= 0)
            fprintf(stderr, "replica %d leads after %lld ms\n", next, (long long)takeover[kills]);
        else
            fprintf(stderr, "no other replica took over within %d ms\n", LEADER_WAIT_MS);
        kills++;
        snprintf(instance, sizeof instance, "it-sched-%d.%d", k, generation++);
        spawn_replica(f, &reps[k], schedule, group, instance, NULL);
        logs[nlogs++] = reps[k].proc;

        int64_t gap = rng_between(&rng, KILL_GAP_MIN_MS, KILL_GAP_MAX_MS);
        if (kills == 2 && redis_wanted && !redis_done) {
            /* Halfway to the next kill: every lease and fencing counter in Redis is gone. */
            sleep_until(reps, NREPLICAS, t0 + gap / 2);
            double before[NREPLICAS];
            for (int i = 0; i < NREPLICAS; i++)
                before[i] = takeovers(&reps[i]);
            int64_t r0 = th_now_ms();
            assert_int_equal(restart_redis(), 0);
            int64_t r1 = th_now_ms();
            int l = wait_new_lease(reps, NREPLICAS, before, LEADER_WAIT_MS, &doubles);
            redis_leader_ms = l >= 0 ? th_now_ms() - r1 : -1;
            fprintf(stderr,
                    "Redis restarted at %lld s (took %lld ms); replica %d took a new lease "
                    "%lld ms after\n",
                    (long long)((r0 - start_ms) / 1000), (long long)(r1 - r0), l,
                    (long long)redis_leader_ms);
            redis_done = true;
        }
        next_kill = t0 + gap;
    }
    sleep_until(reps, NREPLICAS, end_ms);

    /* Stop everyone; what they confirmed is in the queue. A replica started a moment ago may
     * not have reached the point where SIGTERM means "drain": give it till its health answers. */
    for (int i = 0; i < NREPLICAS; i++)
        wait_health(&reps[i], 10000);
    const int64_t stop_s = th_now_ms() / 1000;
    for (int i = 0; i < NREPLICAS; i++)
        th_proc_signal(&reps[i].proc, SIGTERM);
    int stop_failures = 0, leader_events = 0;
    for (int i = 0; i < NREPLICAS; i++) {
        int rc = th_proc_wait(&reps[i].proc, 20000);
        if (rc == 0)
            reps[i].running = false;
        if (rc != 0 || reps[i].proc.exit_status != 0) {
            fprintf(stderr, "replica %d: %s, status %d after SIGTERM\n", i,
                    rc ? "still running" : "exited", reps[i].proc.exit_status);
            th_proc_dump_log(&reps[i].proc, 30);
            stop_failures++;
        }
    }
    /* Every process of the run wrote its own log; count the leaderships taken in all (the
     * same event at level warn says one was lost). */
    for (int g = 0; g < nlogs; g++)
        leader_events +=
            log_count2(&logs[g], "\"event\":\"scheduler.leader\"", "\"level\":\"info\"");

    reconnect(f);
    struct drain_result d;
    drain(f->amqp, jobs, 2, &d);
    size_t duplicates = 0, missing = 0, misaligned = 0;
    for (int j = 0; j < 2; j++) {
        analyse(&jobs[j]);
        duplicates += jobs[j].duplicates;
        missing += jobs[j].missing;
        misaligned += jobs[j].misaligned;
    }
    int64_t max_takeover = 0;
    bool takeover_lost = false;
    for (int i = 0; i < kills; i++) {
        if (takeover[i] < 0)
            takeover_lost = true;
        if (takeover[i] > max_takeover)
            max_takeover = takeover[i];
    }

    char redis_note[64];
    if (!redis_wanted)
        snprintf(redis_note, sizeof redis_note, "skipped (no SY_FLEET)");
    else if (redis_leader_ms < 0)
        snprintf(redis_note, sizeof redis_note, "no new lease after it");
    else
        snprintf(redis_note, sizeof redis_note, "new lease after %lld ms",
                 (long long)redis_leader_ms);
    fprintf(stderr,
            "scheduler replicas: %zu messages; %s %zu ticks (%lld..%lld), %s %zu ticks "
            "(%lld..%lld); kills %d, max takeover %lld ms%s; Redis restart: %s; duplicates %zu, "
            "missing %zu, off-grid %zu, id mismatches %zu, bad ids %zu, wrong type %zu, "
            "undecodable %zu, foreign %zu; leaderships logged %d; polls with two leaders %d; "
            "stop failures %d\n",
            d.messages, jobs[0].name, jobs[0].n, (long long)jobs[0].first, (long long)jobs[0].last,
            jobs[1].name, jobs[1].n, (long long)jobs[1].first, (long long)jobs[1].last, kills,
            (long long)max_takeover, takeover_lost ? " (one never happened)" : "", redis_note,
            duplicates, missing, misaligned, d.id_mismatch, d.bad_id, d.bad_type, d.undecodable,
            d.foreign, leader_events, doubles, stop_failures);

    assert_true(kills >= 4);
    assert_true(leader_events >= kills + 1); /* the first leader and one per kill */
    assert_false(takeover_lost);
    assert_true(max_takeover <= TAKEOVER_MAX_MS);
    if (redis_wanted)
        assert_true(redis_leader_ms >= 0 && redis_leader_ms <= TAKEOVER_MAX_MS);
    assert_int_equal(stop_failures, 0);
    assert_int_equal(d.undecodable + d.bad_id + d.bad_type + d.id_mismatch + d.overflow, 0);
    assert_int_equal(duplicates, 0);
    assert_int_equal(missing, 0);
    assert_int_equal(misaligned, 0);
    for (int j = 0; j < 2; j++) {
        /* The run is covered: ticks from soon after the first start to the final stop. */
        assert_true(jobs[j].n > 0);
        assert_true(jobs[j].first <= start_ms / 1000 + 15);
        assert_true(jobs[j].last >= stop_s - 10);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_a_type_without_a_route_exits_78_naming_the_job, teardown),
        cmocka_unit_test_teardown(test_data_its_schema_refuses_exits_78_naming_the_job, teardown),
        cmocka_unit_test_teardown(test_sigterm_of_a_lone_leader_exits_0_within_seconds, teardown),
        cmocka_unit_test_teardown(test_three_replicas_publish_every_tick_once_through_kills,
                                  teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
