/* it_grievance.c - sy-grievance end to end: a real sy-grievance process on the fleet's own
 * topology and message schemas, the real broker, PostgreSQL and the GRM's MariaDB. A submission
 * becomes its PostgreSQL rows and exactly one GRM row with the columns grm.yaml maps; a batch
 * of good and bad messages stores every good one once and dead-letters each bad one with a
 * reason naming its field, while a status change for a grievance that does not exist waits for
 * a retry; changed details reach both sides; redeliveries and resubmissions change nothing and
 * hold nothing else back; a row the GRM refuses rejects its own message alone, naming the
 * column; a status change reaches PostgreSQL, the GRM and sy.chatbot once; the
 * GRM's MariaDB stopped for half a minute loses nothing and dead-letters nothing; a pull brings
 * a GRM status back and settles conflicts by the rule of grievance.h; equal attachments are
 * stored once; GRM_INTEGRATION_ENABLED=false keeps the GRM out and the copy pending until a
 * pull after the integration is enabled again.
 *
 * Isolation on shared services: ids, phone numbers and files carry this run's id, the worker
 * writes a GRM table of its own (grm_<run>, made from the reference schema's DDL) named by a
 * grm.yaml of its own, and its file store is a directory of its own. Nothing else in the test
 * stack consumes sy.grievance or publishes grievance.*; the announcements are read back from
 * sy.chatbot, which nothing consumes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "http.h"
#include "sy/amqp.h"
#include "sy/crypto.h"
#include "sy/err.h"
#include "sy/json.h"
#include "sy/msg.h"
#include "sy/mysql.h"
#include "sy/pg.h"
#include "sy/topology.h"

#define WORKER         "grievance"
#define QUEUE          "sy.grievance"
#define DEAD           "sy.grievance.dead"
#define CHATBOT        "chatbot"
#define CHATBOT_QUEUE  "sy.chatbot"
#define START_MAX_MS   20000
#define STOP_MAX_MS    20000
#define DONE_MAX_MS    30000
#define NGOOD          200
#define MAX_ANN        256
#define DOWN_MS        30000 /* how long the GRM's MariaDB stays stopped */
#define RECOVER_MAX_MS 100000

/* The GRM's words for our statuses, as this run's grm.yaml maps them. */
#define GRM_SUBMITTED "Submitted"
#define GRM_UNDER     "Under Evaluation"
#define GRM_RESOLVED  "Resolved"
#define GRM_DENIED    "Denied"

struct worker {
    struct th_proc proc;
    bool running;
    int port;
    char env[10][1300];
};

struct fixture {
    struct sy_amqp *amqp;
    struct sy_topology *topo;
    struct sy_pg *pg;
    struct sy_mysql *my;
    char run[17];
    char bin[1024], src[1024];
    char dir[1024], files[1100], map[1100];
    char table[64];  /* grm_<run> */
    char qtable[80]; /* the same, quoted for SQL text */
    char phone_base[16];
    struct worker w;
    int instances;
    bool mariadb_down;
    int sentinels;
    int failed_checks; /* CHECK()s failed in the current test */
    struct {
        char *id;
        json_t *env;
    } ann[MAX_ANN];
    size_t nann;
};

/* --- names of this run -------------------------------------------------------------------- */

/* "<kind>-<run>-<formatted>" into out: grievance ids (g-), message ids (m-), file ids (f-). */
static void name_of(const struct fixture *f, const char *kind, char *out, size_t outlen,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void name_of(const struct fixture *f, const char *kind, char *out, size_t outlen,
                    const char *fmt, ...)
{
    char tail[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tail, sizeof tail, fmt, ap);
    va_end(ap);
    int n = snprintf(out, outlen, "%s-%s-%s", kind, f->run, tail);
    assert_true(n > 0 && (size_t)n < outlen);
}

/* An E.164 number of this run: '+3', nine digits of the run id, three of n. */
static void phone_of(const struct fixture *f, int n, char out[24])
{
    snprintf(out, 24, "+3%s%03d", f->phone_base, n % 1000);
}

/* --- checks that let the rest of a test run -------------------------------------------- */

/* A failed CHECK is printed and counted, and the test fails at its end (end_checks): for a
 * known defect whose evidence should not hide what the rest of the test would show. */
#define CHECK(f, cond, ...) check_at((f), (cond), #cond, __LINE__, __VA_ARGS__)

static void check_at(struct fixture *f, bool ok, const char *expr, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void check_at(struct fixture *f, bool ok, const char *expr, int line, const char *fmt, ...)
{
    va_list ap;
    if (ok)
        return;
    f->failed_checks++;
    fprintf(stderr, "it_grievance.c:%d: CHECK FAILED: %s: ", line, expr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int reset_checks(void **state)
{
    struct fixture *f = *state;
    uint32_t n;
    f->failed_checks = 0;
    /* Dead letters an earlier test left were reported there: each test counts its own. */
    sy_amqp_queue_purge(f->amqp, DEAD, &n);
    return 0;
}

static void end_checks(struct fixture *f)
{
    if (f->failed_checks > 0)
        fail_msg("%d check(s) failed (see CHECK FAILED above)", f->failed_checks);
}

/* --- files -------------------------------------------------------------------------------- */

static char *read_all(const char *path)
{
    char *text = th_read_file(path);

    if (!text)
        fail_msg("%s: %s", path, strerror(errno));
    return text;
}

static size_t nfiles_found;
static char file_found[1400];

static int count_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type == FTW_F && S_ISREG(st->st_mode)) {
        nfiles_found++;
        snprintf(file_found, sizeof file_found, "%s", path);
    }
    return 0;
}

/* Regular files under the file store's root; the path of the last one in file_found. */
static size_t files_in_store(const struct fixture *f)
{
    nfiles_found = 0;
    file_found[0] = '\0';
    if (access(f->files, F_OK) != 0)
        return 0;
    assert_int_equal(nftw(f->files, count_entry, 16, FTW_PHYS), 0);
    return nfiles_found;
}

/* --- PostgreSQL and the GRM --------------------------------------------------------------- */

/* The first row of a query as a JSON array of its cells (strings, null for NULL); NULL when
 * there is no row. */
static json_t *pg_row(struct fixture *f, const char *sql, int n, const char *const *params)
{
    struct sy_pg_res *res = NULL;
    if (sy_pg_exec(f->pg, sql, n, params, &res) != 0)
        fail_msg("PostgreSQL: %s: %s", sql, sy_pg_error(f->pg));
    json_t *row = NULL;
    if (sy_pg_res_rows(res) > 0) {
        row = json_array();
        for (int c = 0; c < sy_pg_res_cols(res); c++) {
            const char *v = sy_pg_res_get(res, 0, c);
            json_array_append_new(row, v ? json_string(v) : json_null());
        }
    }
    sy_pg_res_free(res);
    return row;
}

static void pg_ok(struct fixture *f, const char *sql, int n, const char *const *params)
{
    if (sy_pg_exec(f->pg, sql, n, params, NULL) != 0)
        fail_msg("PostgreSQL: %s: %s", sql, sy_pg_error(f->pg));
}

/* A count(*) query with one parameter. */
static long long pg_count(struct fixture *f, const char *sql, const char *a)
{
    const char *params[1] = {a};
    json_t *row = pg_row(f, sql, a ? 1 : 0, params);
    assert_non_null(row);
    long long n = atoll(json_string_value(json_array_get(row, 0)));
    json_decref(row);
    return n;
}

/* "text", or "(null)" for a NULL cell, so failures print something. */
static const char *cell(json_t *row, size_t i)
{
    const char *v = json_string_value(json_array_get(row, i));
    return v ? v : "(null)";
}

static json_t *my_row(struct fixture *f, const char *sql, int n, const char *const *params)
{
    struct sy_mysql_res *res = NULL;
    if (sy_mysql_exec(f->my, sql, n, params, &res) != 0)
        fail_msg("MariaDB: %s: %s", sql, sy_mysql_error(f->my));
    json_t *row = NULL;
    if (sy_mysql_res_rows(res) > 0) {
        row = json_array();
        for (int c = 0; c < sy_mysql_res_cols(res); c++) {
            const char *v = sy_mysql_res_get(res, 0, c);
            json_array_append_new(row, v ? json_string(v) : json_null());
        }
    }
    sy_mysql_res_free(res);
    return row;
}

static void my_ok(struct fixture *f, const char *sql, int n, const char *const *params)
{
    if (sy_mysql_exec(f->my, sql, n, params, NULL) != 0)
        fail_msg("MariaDB: %s: %s", sql, sy_mysql_error(f->my));
}

/* GRM rows whose key matches `like` (a LIKE pattern), and how many distinct keys they hold. */
static long long grm_rows(struct fixture *f, const char *like, long long *distinct)
{
    char sql[512];
    const char *params[1] = {like};
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*), COUNT(DISTINCT chatbot_ref) FROM %s WHERE chatbot_ref LIKE ?",
             f->qtable);
    json_t *row = my_row(f, sql, 1, params);
    assert_non_null(row);
    long long n = atoll(cell(row, 0));
    if (distinct)
        *distinct = atoll(cell(row, 1));
    json_decref(row);
    return n;
}

/* The GRM row of one grievance: the mapped columns, or NULL when there is none. */
static json_t *grm_row(struct fixture *f, const char *gid)
{
    char sql[512];
    const char *params[1] = {gid};
    snprintf(sql, sizeof sql,
             "SELECT complainant_name, contact_phone, grievance_description, location,"
             " project_type, status, ward_number, submitted_at FROM %s WHERE chatbot_ref = ?",
             f->qtable);
    return my_row(f, sql, 1, params);
}

/* --- the worker --------------------------------------------------------------------------- */

/* The sum of a metric's samples (every label set) on the worker's /metrics. */
static double metric(struct fixture *f, const char *name)
{
    size_t len = strlen(name);
    double sum = 0;
    struct th_reply r = th_http(f->w.port, "GET", "/metrics", NULL, NULL);
    if (r.status != 200)
        fail_msg("GET /metrics: %ld", r.status);
    for (char *line = strtok(r.body, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, name, len) != 0 || (line[len] != ' ' && line[len] != '{'))
            continue;
        const char *v = strrchr(line, ' ');
        if (v)
            sum += strtod(v + 1, NULL);
    }
    th_reply_free(&r);
    return sum;
}

/* Checks that the worker parked no delivery for a retry since `before` (its
 * sy_retried_total), showing its log when it did. */
static void expect_no_retry(struct fixture *f, double before, const char *what)
{
    double now = metric(f, "sy_retried_total");
    if (now != before)
        th_proc_dump_log(&f->w.proc, 12);
    CHECK(f, now == before, "%s: %.0f deliveries were parked for a retry", what, now - before);
}

static void worker_alive(struct fixture *f)
{
    if (f->w.running && th_proc_wait(&f->w.proc, 0) == 0) {
        f->w.running = false;
        th_proc_dump_log(&f->w.proc, 40);
        fail_msg("sy-grievance exited with %d", f->w.proc.exit_status);
    }
}

/* Starts sy-grievance on this run's map, file store and a free health port, and waits until
 * it is ready. One handler thread: batches are handled in the order they arrive, so a
 * message found done means everything published before it was handled. */
static void start_worker(struct fixture *f, bool grm_enabled)
{
    struct worker *w = &f->w;
    assert_false(w->running);
    w->port = th_free_port();
    snprintf(w->env[0], sizeof w->env[0], "SY_HTTP_ADDR=127.0.0.1:%d", w->port);
    snprintf(w->env[1], sizeof w->env[1], "SY_GRM_MAP=%s", f->map);
    snprintf(w->env[2], sizeof w->env[2], "SY_FILES_ROOT=%s", f->files);
    snprintf(w->env[3], sizeof w->env[3], "GRM_INTEGRATION_ENABLED=%s",
             grm_enabled ? "true" : "false");
    snprintf(w->env[4], sizeof w->env[4], "SY_AMQP_URL=%s", th_need_env("SY_AMQP_URL"));
    snprintf(w->env[5], sizeof w->env[5], "SY_PG_URL=%s", th_need_env("SY_PG_URL"));
    snprintf(w->env[6], sizeof w->env[6], "SY_GRM_MYSQL_URL=%s", th_need_env("SY_GRM_MYSQL_URL"));
    snprintf(w->env[7], sizeof w->env[7], "SY_INSTANCE=it-grievance-%s-%d", f->run, ++f->instances);
    const char *env[] = {w->env[0],           w->env[1], w->env[2],
                         w->env[3],           w->env[4], w->env[5],
                         w->env[6],           w->env[7], "SY_HANDLER_THREADS=1",
                         "SY_LOG_LEVEL=info", NULL};
    assert_int_equal(th_proc_spawn(&w->proc, f->bin, env), 0);
    w->running = true;
    int64_t end = th_now_ms() + START_MAX_MS;
    for (;;) {
        struct th_reply r = th_http(w->port, "GET", "/readyz", NULL, NULL);
        long status = r.status;
        th_reply_free(&r);
        if (status == 200)
            break;
        worker_alive(f);
        if (th_now_ms() > end) {
            th_proc_dump_log(&w->proc, 40);
            fail_msg("sy-grievance was not ready within %d ms", START_MAX_MS);
        }
        th_sleep_ms(50);
    }
}

/* SIGTERM; the exit status (128 + 9 when it had to be killed), -1 when it was not running. */
static int stop_worker(struct fixture *f)
{
    struct worker *w = &f->w;
    if (!w->running)
        return -1;
    th_proc_signal(&w->proc, SIGTERM);
    if (th_proc_wait(&w->proc, STOP_MAX_MS) != 0)
        th_proc_cleanup(&w->proc);
    w->running = false;
    if (w->proc.exit_status != 0)
        th_proc_dump_log(&w->proc, 40);
    return w->proc.exit_status;
}

static int fleet_svc(const char *verb, const char *service)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "'%s' svc %s %s >&2", th_need_env("SY_FLEET"), verb, service);
    return system(cmd);
}

/* --- messages ----------------------------------------------------------------------------- */

static void confirm(struct fixture *f)
{
    int rc = sy_amqp_wait_confirms(f->amqp, 30000);
    if (rc != 0)
        fail_msg("publish not confirmed: %s (%s)", sy_strerror(rc), sy_amqp_error(f->amqp));
}

/* Publishes data (consumed) as a message of type with id, pipelined; confirm() waits. */
static void publish(struct fixture *f, const char *type, const char *id, json_t *data)
{
    void *mp = NULL, *body = NULL;
    size_t mlen = 0, len = 0;
    assert_non_null(data);
    assert_int_equal(sy_json_to_msgpack(data, &mp, &mlen), 0);
    json_decref(data);
    assert_int_equal(sy_msg_encode(type, id, "it-grievance", 0, mp, mlen, &body, &len), 0);
    free(mp);
    struct sy_publish p = {.exchange = f->topo->exchange,
                           .routing_key = type,
                           .body = body,
                           .len = len,
                           .message_id = id,
                           .type = type};
    int rc = sy_amqp_publish_nowait(f->amqp, &p);
    free(body);
    if (rc != 0)
        fail_msg("publish %s: %s (%s)", id, sy_strerror(rc), sy_amqp_error(f->amqp));
}

static void actor_of(const struct fixture *f, char out[64])
{
    snprintf(out, 64, "apikey:it-%s", f->run);
}

/* A grievance.submitted of gid by citizen n, with a location and custom {ward_no: "12"}. */
static json_t *submission(const struct fixture *f, const char *gid, int n, const char *desc)
{
    char phone[24], name[64], actor[64];
    phone_of(f, n, phone);
    snprintf(name, sizeof name, "Citizen %03d", n);
    actor_of(f, actor);
    return json_pack("{s:s, s:{s:s, s:s}, s:s, s:s, s:s, s:{s:s}, s:s}", "grievance_id", gid,
                     "user_info", "phone_number", phone, "name", name, "project_type",
                     "water-supply", "description", desc, "location", "Main Road, ward 12",
                     "custom", "ward_no", "12", "actor", actor);
}

static json_t *status_update(const struct fixture *f, const char *gid, const char *status,
                             const char *notes)
{
    char actor[64];
    actor_of(f, actor);
    return json_pack("{s:s, s:s, s:s, s:s}", "grievance_id", gid, "status", status, "notes", notes,
                     "actor", actor);
}

/* Waits until `sql` (one parameter) counts `want`; the last count. */
static long long wait_count(struct fixture *f, long long want, int timeout_ms, const char *sql,
                            const char *a)
{
    int64_t end = th_now_ms() + timeout_ms;
    for (;;) {
        long long got = pg_count(f, sql, a);
        if (got == want || th_now_ms() >= end)
            return got;
        worker_alive(f);
        th_sleep_ms(100);
    }
}

/* Waits until the task of message id is done. */
static void wait_done(struct fixture *f, const char *id)
{
    long long n = wait_count(
        f, 1, DONE_MAX_MS, "SELECT count(*) FROM tasks WHERE task_id = $1 AND status = 'done'", id);
    if (n != 1) {
        json_t *row = pg_row(f, "SELECT status, error FROM tasks WHERE task_id = $1", 1,
                             (const char *[]){id});
        th_proc_dump_log(&f->w.proc, 30);
        fail_msg("task %s not done within %d ms: %s, %s", id, DONE_MAX_MS,
                 row ? cell(row, 0) : "no row", row ? cell(row, 1) : "");
    }
}

/* Publishes a user_upsert and waits until it is done: with one handler thread, whatever was
 * published before it has been handled by then. */
static void settle(struct fixture *f)
{
    char id[96], phone[24], actor[64];
    name_of(f, "m", id, sizeof id, "sentinel-%d", ++f->sentinels);
    phone_of(f, 999, phone);
    actor_of(f, actor);
    publish(
        f, "grievance.user_upsert", id,
        json_pack("{s:s, s:s, s:s}", "phone_number", phone, "name", "Sentinel", "actor", actor));
    confirm(f);
    wait_done(f, id);
}

/* Empties sy.grievance and its retry queues once the worker holds nothing in flight: what a
 * test leaves retrying must not be counted by the next. */
static void purge_retries(struct fixture *f)
{
    const struct sy_topo_worker *tw = sy_topology_worker(f->topo, WORKER);
    assert_non_null(tw);
    for (int tries = 0; tries < 50; tries++) {
        uint32_t left = 0;
        th_purge_worker(f->amqp, f->topo, WORKER);
        th_sleep_ms(200);
        left += th_queue_depth(f->amqp, QUEUE);
        for (size_t i = 0; i < tw->ndelays; i++) {
            char q[128];
            assert_int_equal(sy_topo_retry_name(tw, i, q, sizeof q), 0);
            left += th_queue_depth(f->amqp, q);
        }
        if (left == 0 && metric(f, "sy_in_flight") == 0)
            return;
    }
    fail_msg("sy.grievance and its retry queues did not stay empty");
}

/* --- what was dead-lettered and announced ------------------------------------------------- */

/* Takes every dead letter: an array of {id, reason, rk}. */
static json_t *take_dead(struct fixture *f)
{
    json_t *out = json_array();
    for (;;) {
        struct sy_amqp_msg *m = NULL;
        int rc = sy_amqp_get(f->amqp, DEAD, &m);
        if (rc == -SY_ENOTFOUND)
            return out;
        if (rc != 0)
            fail_msg("get from %s: %s (%s)", DEAD, sy_strerror(rc), sy_amqp_error(f->amqp));
        const char *reason = json_string_value(json_object_get(m->headers, "x-sy-reason"));
        json_array_append_new(
            out, json_pack("{s:s, s:s, s:s}", "id", m->message_id ? m->message_id : "", "reason",
                           reason ? reason : "", "rk", m->routing_key ? m->routing_key : ""));
        assert_int_equal(sy_amqp_settle(f->amqp, m, 1, 0), 0);
        sy_amqp_msg_free(m);
    }
}

/* The reason a dead letter with this id was given, NULL when there is none. */
static const char *dead_reason(json_t *dead, const char *id)
{
    size_t i;
    json_t *d;
    json_array_foreach(dead, i, d)
    {
        if (strcmp(json_string_value(json_object_get(d, "id")), id) == 0)
            return json_string_value(json_object_get(d, "reason"));
    }
    return NULL;
}

/* Moves what sy.chatbot holds into f->ann. */
static void drain_announcements(struct fixture *f)
{
    for (;;) {
        struct sy_amqp_msg *m = NULL;
        char err[256];
        int rc = sy_amqp_get(f->amqp, CHATBOT_QUEUE, &m);
        if (rc == -SY_ENOTFOUND)
            return;
        if (rc != 0)
            fail_msg("get from %s: %s (%s)", CHATBOT_QUEUE, sy_strerror(rc),
                     sy_amqp_error(f->amqp));
        assert_true(f->nann < MAX_ANN);
        json_t *env = sy_msgpack_to_json(m->body, m->len, err, sizeof err);
        if (!env)
            fail_msg("undecodable announcement: %s", err);
        f->ann[f->nann].id = strdup(m->message_id ? m->message_id : "");
        f->ann[f->nann].env = env;
        f->nann++;
        assert_int_equal(sy_amqp_settle(f->amqp, m, 1, 0), 0);
        sy_amqp_msg_free(m);
    }
}

/* How many grievance.status_changed of gid were announced so far; *last (borrowed data) and
 * *last_id the latest. */
static int announced(struct fixture *f, const char *gid, json_t **last, const char **last_id)
{
    int n = 0;
    drain_announcements(f);
    for (size_t i = 0; i < f->nann; i++) {
        json_t *data = json_object_get(f->ann[i].env, "data");
        const char *g = json_string_value(json_object_get(data, "grievance_id"));
        if (!g || strcmp(g, gid) != 0)
            continue;
        assert_string_equal(json_string_value(json_object_get(f->ann[i].env, "type")),
                            "grievance.status_changed");
        n++;
        if (last)
            *last = data;
        if (last_id)
            *last_id = f->ann[i].id;
    }
    return n;
}

static const char *str_of(json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v ? v : "(absent)";
}

/* --- the GRM table ------------------------------------------------------------------------ */

/* This run's GRM table, made like the reference schema's. Caller frees. */
static char *grm_ddl(struct fixture *f)
{
    char *ddl = th_grm_ddl(f->src, f->qtable);

    if (!ddl)
        fail_msg("%s: no CREATE TABLE holding chatbot_ref in the reference GRM schema", f->src);
    return ddl;
}

static void write_map(struct fixture *f)
{
    char text[2048];
    snprintf(text, sizeof text,
             "# it_grievance: the reference GRM schema's columns, in this run's table.\n"
             "enabled: ${GRM_INTEGRATION_ENABLED:-true}\n"
             "table: %s\n"
             "key: chatbot_ref\n"
             "updated: updated_at\n"
             "fields:\n"
             "  user_full_name: complainant_name\n"
             "  user_contact_phone: contact_phone\n"
             "  grievance_details: grievance_description\n"
             "  grievance_location: location\n"
             "  classification_status: status\n"
             "  project_type: project_type\n"
             "  submitted_at: submitted_at\n"
             "custom:\n"
             "  ward_no: ward_number\n"
             "status:\n"
             "  pending: Pending\n"
             "  submitted: " GRM_SUBMITTED "\n"
             "  under_evaluation: " GRM_UNDER "\n"
             "  resolved: " GRM_RESOLVED "\n"
             "  denied: " GRM_DENIED "\n"
             "pull_batch: 500\n",
             f->table);
    if (th_write_file(f->map, text) != 0)
        fail_msg("%s: %s", f->map, strerror(errno));
}

/* --- fixture ------------------------------------------------------------------------------ */

static int group_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char err[512] = "", path[1200];
    assert_non_null(f);
    const char *amqp_url = th_need_env("SY_AMQP_URL");
    const char *pg_url = th_need_env("SY_PG_URL");
    const char *my_url = th_need_env("SY_GRM_MYSQL_URL");
    const char *build = th_need_env("SY_BUILD_DIR");
    snprintf(f->src, sizeof f->src, "%s", th_need_env("SY_SOURCE_DIR"));
    th_run_id(f->run);
    snprintf(f->phone_base, sizeof f->phone_base, "%09llu",
             strtoull(f->run + 6, NULL, 16) % 1000000000ULL);

    snprintf(f->bin, sizeof f->bin, "%s/workers/grievance/sy-grievance", build);
    if (access(f->bin, X_OK) != 0)
        fail_msg("sy-grievance is not built: %s: %s", f->bin, strerror(errno));

    /* The fleet's own topology and schemas, for this process and the workers it starts. */
    snprintf(path, sizeof path, "%s/schemas/topology.yaml", f->src);
    assert_int_equal(setenv("SY_TOPOLOGY", path, 1), 0);
    snprintf(path, sizeof path, "%s/schemas/messages", f->src);
    assert_int_equal(setenv("SY_SCHEMA_DIR", path, 1), 0);
    f->topo = sy_topology_load(getenv("SY_TOPOLOGY"), err, sizeof err);
    if (!f->topo)
        fail_msg("topology: %s", err);
    /* Only the queues this test reads: the fleet's other routes (chatwoot.#, ingest.#, …) must
     * not start catching what other tests publish on the shared broker. Heartbeats off: the
     * connection idles while the test waits. */
    f->amqp = sy_amqp_connect(amqp_url, "it-grievance", 0, err, sizeof err);
    if (!f->amqp)
        fail_msg("amqp connect: %s", err);
    if (sy_amqp_declare(f->amqp, f->topo, WORKER) != 0 ||
        sy_amqp_declare(f->amqp, f->topo, CHATBOT) != 0)
        fail_msg("amqp declare: %s", sy_amqp_error(f->amqp));
    th_purge_worker(f->amqp, f->topo, WORKER);
    th_purge_worker(f->amqp, f->topo, CHATBOT);

    /* The worker applies no migrations. */
    f->pg = sy_pg_connect(pg_url, err, sizeof err);
    if (!f->pg)
        fail_msg("sy_pg_connect: %s", err);
    snprintf(path, sizeof path, "%s/schemas/sql/postgres", f->src);
    if (sy_pg_migrate(f->pg, path, NULL, NULL, err, sizeof err) != 0)
        fail_msg("migrate: %s", err);

    f->my = sy_mysql_connect(my_url, err, sizeof err);
    if (!f->my)
        fail_msg("sy_mysql_connect: %s", err);
    snprintf(f->table, sizeof f->table, "grm_%s", f->run);
    assert_int_equal(sy_mysql_quote_ident(f->table, f->qtable, sizeof f->qtable), 0);
    char *ddl = grm_ddl(f);
    my_ok(f, ddl, 0, NULL);
    free(ddl);

    snprintf(f->dir, sizeof f->dir, "%s/Testing", build);
    if (mkdir(f->dir, 0755) != 0 && errno != EEXIST)
        fail_msg("mkdir %s: %s", f->dir, strerror(errno));
    snprintf(f->dir, sizeof f->dir, "%s/Testing/grievance-%s", build, f->run);
    if (mkdir(f->dir, 0755) != 0)
        fail_msg("mkdir %s: %s", f->dir, strerror(errno));
    snprintf(f->files, sizeof f->files, "%s/files", f->dir);
    snprintf(f->map, sizeof f->map, "%s/grm.yaml", f->dir);
    write_map(f);
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    struct fixture *f = *state;
    char like[64], phones[32];
    int rc = 0;

    if (f->mariadb_down && fleet_svc("start", "mariadb") == 0)
        f->mariadb_down = false;
    if (f->w.running && stop_worker(f) != 0)
        rc = -1;
    th_proc_cleanup(&f->w.proc);

    /* This run's rows: its grievances, the tasks of its messages, its users, its watermark. */
    snprintf(like, sizeof like, "g-%s-%%", f->run);
    const char *g[1] = {like};
    const char *const sqls[] = {
        "DELETE FROM status_history WHERE grievance_id LIKE $1",
        "DELETE FROM file_attachments WHERE grievance_id LIKE $1",
        "DELETE FROM grm_sync WHERE grievance_id LIKE $1",
        "DELETE FROM sync_history WHERE grievance_id LIKE $1",
        "DELETE FROM grievances WHERE grievance_id LIKE $1",
    };
    for (size_t i = 0; i < sizeof sqls / sizeof sqls[0]; i++)
        sy_pg_exec(f->pg, sqls[i], 1, g, NULL);
    snprintf(like, sizeof like, "m-%s-%%", f->run);
    sy_pg_exec(f->pg, "DELETE FROM tasks WHERE task_id LIKE $1", 1, g, NULL);
    snprintf(phones, sizeof phones, "+3%s%%", f->phone_base);
    const char *p[1] = {phones};
    sy_pg_exec(f->pg, "DELETE FROM users WHERE phone_number LIKE $1", 1, p, NULL);
    const char *t[1] = {f->table};
    sy_pg_exec(f->pg, "DELETE FROM grm_watermark WHERE name = $1", 1, t, NULL);

    if (f->my) {
        char sql[256];
        snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", f->qtable);
        if (sy_mysql_exec(f->my, sql, 0, NULL, NULL) != 0)
            fprintf(stderr, "%s: %s\n", sql, sy_mysql_error(f->my));
    }
    if (f->amqp) {
        /* A status change for a grievance that never exists is still in its retries. */
        th_purge_worker(f->amqp, f->topo, WORKER);
        drain_announcements(f);
    }
    if (f->dir[0])
        th_rm_tree(f->dir);
    for (size_t i = 0; i < f->nann; i++) {
        free(f->ann[i].id);
        json_decref(f->ann[i].env);
    }
    sy_mysql_destroy(f->my);
    sy_pg_destroy(f->pg);
    sy_amqp_destroy(f->amqp);
    sy_topology_destroy(f->topo);
    free(f);
    return rc;
}

/* --- 1. a batch of good and bad messages, waiting in the queue before the worker starts ---- */

static void batch_stores_good_messages_once_and_dead_letters_bad_ones_by_field(void **state)
{
    struct fixture *f = *state;
    char gid[96], id[96], like[96], bad_ids[5][96];
    if (f->w.running)
        assert_int_equal(stop_worker(f), 0);

    for (int i = 0; i < NGOOD; i++) {
        char desc[128];
        name_of(f, "g", gid, sizeof gid, "b-%03d", i);
        name_of(f, "m", id, sizeof id, "b-%03d", i);
        snprintf(desc, sizeof desc, "batch grievance %d", i);
        publish(f, "grievance.submitted", id, submission(f, gid, i, desc));
        if (i == NGOOD / 2) {
            /* The bad ones in the middle of the good ones. */
            json_t *d;
            /* Too short for the schema. */
            name_of(f, "g", gid, sizeof gid, "x-phone-short");
            name_of(f, "m", bad_ids[0], sizeof bad_ids[0], "x-phone-short");
            d = submission(f, gid, 500, "bad phone");
            json_object_set_new(json_object_get(d, "user_info"), "phone_number",
                                json_string("12345"));
            publish(f, "grievance.submitted", bad_ids[0], d);
            /* Long enough for the schema, but not E.164. */
            name_of(f, "g", gid, sizeof gid, "x-phone-plain");
            name_of(f, "m", bad_ids[1], sizeof bad_ids[1], "x-phone-plain");
            d = submission(f, gid, 501, "bad phone");
            json_object_set_new(json_object_get(d, "user_info"), "phone_number",
                                json_string("123456789"));
            publish(f, "grievance.submitted", bad_ids[1], d);
            /* An attachment that is not base64. */
            name_of(f, "g", gid, sizeof gid, "x-base64");
            name_of(f, "m", bad_ids[2], sizeof bad_ids[2], "x-base64");
            d = submission(f, gid, 502, "bad attachment");
            json_object_set_new(d, "files",
                                json_pack("[{s:s, s:s, s:s}]", "file_id", "f-bad", "file_type",
                                          "image/png", "file_data", "@@not*base64@@"));
            publish(f, "grievance.submitted", bad_ids[2], d);
            /* A grievance id outside [A-Za-z0-9._-]. */
            name_of(f, "g", gid, sizeof gid, "x-bang!");
            name_of(f, "m", bad_ids[3], sizeof bad_ids[3], "x-bang");
            publish(f, "grievance.submitted", bad_ids[3], submission(f, gid, 503, "bad id"));
            /* A status change for a grievance that never exists. */
            name_of(f, "g", gid, sizeof gid, "x-never");
            name_of(f, "m", bad_ids[4], sizeof bad_ids[4], "x-never");
            publish(f, "grievance.status_update", bad_ids[4],
                    status_update(f, gid, "resolved", "no such grievance"));
        }
    }
    confirm(f);
    assert_true(th_queue_depth(f->amqp, QUEUE) >= NGOOD + 5); /* a scheduled grm.pull too */

    int64_t t0 = th_now_ms();
    start_worker(f, true);
    name_of(f, "m", like, sizeof like, "b-%%");
    long long done = wait_count(f, NGOOD, 60000,
                                "SELECT count(*) FROM tasks WHERE task_id LIKE $1 AND"
                                " status = 'done'",
                                like);
    fprintf(stderr, "%lld of %d good submissions done in %lld ms\n", done, NGOOD,
            (long long)(th_now_ms() - t0));
    if (done != NGOOD)
        th_proc_dump_log(&f->w.proc, 40);
    assert_int_equal(done, NGOOD);

    /* Every good one once on both sides. */
    name_of(f, "g", like, sizeof like, "b-%%");
    assert_int_equal(
        pg_count(f, "SELECT count(*) FROM grievances WHERE grievance_id LIKE $1", like), NGOOD);
    assert_int_equal(pg_count(f,
                              "SELECT count(*) FROM status_history WHERE grievance_id LIKE $1"
                              " AND status = 'submitted'",
                              like),
                     NGOOD);
    assert_int_equal(pg_count(f,
                              "SELECT count(*) FROM grm_sync WHERE grievance_id LIKE $1"
                              " AND NOT pending",
                              like),
                     NGOOD);
    long long distinct = 0;
    assert_int_equal(grm_rows(f, like, &distinct), NGOOD);
    assert_int_equal(distinct, NGOOD);

    /* The bad ones: dead-lettered with a reason naming the field, nothing stored. */
    struct {
        const char *id, *field;
    } want[4] = {{bad_ids[0], "phone_number"},
                 {bad_ids[1], "user_info.phone_number"},
                 {bad_ids[2], "files[0].file_data"},
                 {bad_ids[3], "grievance_id"}};
    int64_t end = th_now_ms() + 15000;
    while (th_queue_depth(f->amqp, DEAD) < 4 && th_now_ms() < end)
        th_sleep_ms(100);
    json_t *dead = take_dead(f);
    char *dump = json_dumps(dead, JSON_INDENT(1));
    fprintf(stderr, "dead letters: %s\n", dump);
    free(dump);
    for (int i = 0; i < 4; i++) {
        const char *reason = dead_reason(dead, want[i].id);
        if (!reason)
            fail_msg("%s was not dead-lettered", want[i].id);
        if (!strstr(reason, want[i].field))
            fail_msg("%s: reason does not name %s: %s", want[i].id, want[i].field, reason);
    }
    assert_null(dead_reason(dead, bad_ids[4]));
    assert_int_equal(json_array_size(dead), 4);
    json_decref(dead);
    name_of(f, "g", like, sizeof like, "x-%%");
    assert_int_equal(
        pg_count(f, "SELECT count(*) FROM grievances WHERE grievance_id LIKE $1", like), 0);
    assert_int_equal(grm_rows(f, like, NULL), 0);
    /* The handler's refusals are in the ledger too, with the same reason. */
    for (int i = 1; i < 4; i++) {
        json_t *row = pg_row(f, "SELECT status, error FROM tasks WHERE task_id = $1", 1,
                             (const char *[]){want[i].id});
        if (!row)
            fail_msg("no task row for rejected %s", want[i].id);
        assert_string_equal(cell(row, 0), "rejected");
        assert_non_null(strstr(cell(row, 1), want[i].field));
        json_decref(row);
    }

    /* The status change for a grievance that never exists is neither stored nor dead: it waits
     * in a retry queue for the grievance to arrive. */
    const struct sy_topo_worker *tw = sy_topology_worker(f->topo, WORKER);
    assert_non_null(tw);
    bool in_retry = false;
    end = th_now_ms() + 15000;
    while (!in_retry && th_now_ms() < end) {
        char q[128];
        for (size_t i = 0; i < tw->ndelays; i++) {
            assert_int_equal(sy_topo_retry_name(tw, i, q, sizeof q), 0);
            if (th_queue_depth(f->amqp, q) > 0)
                in_retry = true;
        }
        th_sleep_ms(50);
    }
    assert_true(in_retry);
    assert_int_equal(pg_count(f, "SELECT count(*) FROM tasks WHERE task_id = $1", bad_ids[4]), 0);
    name_of(f, "g", gid, sizeof gid, "x-never");
    assert_int_equal(
        pg_count(f, "SELECT count(*) FROM status_history WHERE grievance_id = $1", gid), 0);
    assert_int_equal(th_queue_depth(f->amqp, DEAD), 0);

    /* Away with it, so that no retry the tests below count is its. */
    purge_retries(f);
    end_checks(f);
}

/* --- 2. one submission, mapped ------------------------------------------------------------ */

static void submission_and_update_are_stored_and_copied_to_the_grm_as_mapped(void **state)
{
    struct fixture *f = *state;
    char gid[96], id[96], phone[24], actor[64];
    if (!f->w.running)
        start_worker(f, true);
    double retried = metric(f, "sy_retried_total");
    name_of(f, "g", gid, sizeof gid, "map");
    name_of(f, "m", id, sizeof id, "map");
    phone_of(f, 600, phone);
    actor_of(f, actor);
    publish(f, "grievance.submitted", id, submission(f, gid, 600, "No water since Monday"));
    confirm(f);
    wait_done(f, id);

    json_t *row = pg_row(f,
                         "SELECT g.phone_number, u.name, g.project_type, g.description,"
                         " g.location, g.status, g.custom->>'ward_no',"
                         " to_char(g.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
                         " FROM grievances g JOIN users u USING (phone_number)"
                         " WHERE g.grievance_id = $1",
                         1, (const char *[]){gid});
    assert_non_null(row);
    assert_string_equal(cell(row, 0), phone);
    assert_string_equal(cell(row, 1), "Citizen 600");
    assert_string_equal(cell(row, 2), "water-supply");
    assert_string_equal(cell(row, 3), "No water since Monday");
    assert_string_equal(cell(row, 4), "Main Road, ward 12");
    assert_string_equal(cell(row, 5), "submitted");
    assert_string_equal(cell(row, 6), "12");
    char submitted_at[32];
    snprintf(submitted_at, sizeof submitted_at, "%s", cell(row, 7));
    json_decref(row);

    row = pg_row(f,
                 "SELECT status, created_by, message_id, count(*) OVER () FROM status_history"
                 " WHERE grievance_id = $1",
                 1, (const char *[]){gid});
    assert_non_null(row);
    assert_string_equal(cell(row, 0), "submitted");
    assert_string_equal(cell(row, 1), actor);
    assert_string_equal(cell(row, 2), id);
    assert_string_equal(cell(row, 3), "1");
    json_decref(row);

    row = grm_row(f, gid);
    assert_non_null(row);
    assert_string_equal(cell(row, 0), "Citizen 600");
    assert_string_equal(cell(row, 1), phone);
    assert_string_equal(cell(row, 2), "No water since Monday");
    assert_string_equal(cell(row, 3), "Main Road, ward 12");
    assert_string_equal(cell(row, 4), "water-supply");
    assert_string_equal(cell(row, 5), GRM_SUBMITTED);
    assert_string_equal(cell(row, 6), "12");
    assert_string_equal(cell(row, 7), submitted_at);
    json_decref(row);
    assert_int_equal(grm_rows(f, gid, NULL), 1);

    row = pg_row(f, "SELECT task_name, status FROM tasks WHERE task_id = $1", 1,
                 (const char *[]){id});
    assert_non_null(row);
    assert_string_equal(cell(row, 0), "grievance.submitted");
    assert_string_equal(cell(row, 1), "done");
    json_decref(row);
    row = pg_row(f, "SELECT pending, pushed_status FROM grm_sync WHERE grievance_id = $1", 1,
                 (const char *[]){gid});
    assert_non_null(row);
    assert_string_equal(cell(row, 0), "f");
    assert_string_equal(cell(row, 1), "submitted");
    json_decref(row);
    assert_int_equal(pg_count(f,
                              "SELECT count(*) FROM sync_history WHERE grievance_id = $1"
                              " AND direction = 'push' AND outcome = 'ok'",
                              gid),
                     1);
    assert_int_equal(pg_count(f,
                              "SELECT count(*) FROM sync_history WHERE grievance_id = $1"
                              " AND outcome <> 'ok'",
                              gid),
                     0);
    /* A submission announces nothing. */
    assert_int_equal(announced(f, gid, NULL, NULL), 0);

    /* Changed details reach both sides; a nil location clears it. */
    name_of(f, "m", id, sizeof id, "map-update");
    publish(f, "grievance.updated", id,
            json_pack("{s:s, s:s, s:n, s:{s:s}, s:s}", "grievance_id", gid, "description",
                      "No water since Sunday", "location", "custom", "ward_no", "14", "actor",
                      actor));
    confirm(f);
    wait_done(f, id);
    row = pg_row(f,
                 "SELECT description, location, custom->>'ward_no', status FROM grievances"
                 " WHERE grievance_id = $1",
                 1, (const char *[]){gid});
    assert_string_equal(cell(row, 0), "No water since Sunday");
    assert_string_equal(cell(row, 1), "(null)");
    assert_string_equal(cell(row, 2), "14");
    assert_string_equal(cell(row, 3), "submitted");
    json_decref(row);
    row = grm_row(f, gid);
    assert_non_null(row);
    assert_string_equal(cell(row, 2), "No water since Sunday");
    assert_string_equal(cell(row, 3), "(null)");
    assert_string_equal(cell(row, 6), "14");
    assert_string_equal(cell(row, 5), GRM_SUBMITTED);
    json_decref(row);
    assert_int_equal(grm_rows(f, gid, NULL), 1);
    assert_int_equal(
        pg_count(f, "SELECT count(*) FROM status_history WHERE grievance_id = $1", gid), 1);
    expect_no_retry(f, retried, "a submission");
    end_checks(f);
}

/* --- 3. redelivery and resubmission ------------------------------------------------------- */

static void redelivery_and_resubmission_store_one_grievance(void **state)
{
    struct fixture *f = *state;
    char gid[96], id[96], id2[96];
    if (!f->w.running)
        start_worker(f, true);
    double retried = metric(f, "sy_retried_total");

    /* One message delivered again after it was handled. */
    name_of(f, "g", gid, sizeof gid, "again");
    name_of(f, "m", id, sizeof id, "again");
    publish(f, "grievance.submitted", id, submission(f, gid, 609, "delivered again"));
    confirm(f);
    wait_done(f, id);
    publish(f, "grievance.submitted", id, submission(f, gid, 609, "delivered again"));
    confirm(f);
    settle(f);
    assert_int_equal(pg_count(f, "SELECT count(*) FROM grievances WHERE grievance_id = $1", gid),
                     1);
    assert_int_equal(
        pg_count(f, "SELECT count(*) FROM status_history WHERE grievance_id = $1", gid), 1);
    assert_int_equal(grm_rows(f, gid, NULL), 1);

    /* One message delivered twice in a row (a publisher's retry): both copies arrive in one
     * batch, with an unrelated submission that must not be held back by them. */
    char other_gid[96], other[96];
    name_of(f, "g", gid, sizeof gid, "twice");
    name_of(f, "m", id, sizeof id, "twice");
    name_of(f, "g", other_gid, sizeof other_gid, "bystander");
    name_of(f, "m", other, sizeof other, "bystander");
    int64_t t0 = th_now_ms();
    publish(f, "grievance.submitted", id, submission(f, gid, 610, "delivered twice"));
    publish(f, "grievance.submitted", id, submission(f, gid, 610, "delivered twice"));
    publish(f, "grievance.submitted", other, submission(f, other_gid, 613, "a bystander"));
    confirm(f);
    long long other_done = wait_count(
        f, 1, 10000, "SELECT count(*) FROM tasks WHERE task_id = $1 AND status = 'done'", other);
    int64_t other_ms = th_now_ms() - t0;
    CHECK(f, other_done == 1 && other_ms < 1000,
          "%s, in the batch of a message delivered twice, %s after %lld ms", other,
          other_done ? "done" : "still not done", (long long)other_ms);
    long long done = wait_count(
        f, 1, 2000, "SELECT count(*) FROM tasks WHERE task_id = $1 AND status = 'done'", id);
    long long in_pg = pg_count(f, "SELECT count(*) FROM grievances WHERE grievance_id = $1", gid);
    long long in_grm = grm_rows(f, gid, NULL);
    CHECK(f, done == 1,
          "%s delivered twice in one batch is not done after 12 s: %lld grievance row(s) in "
          "PostgreSQL, %lld in the GRM, %d batch(es) refused as a whole",
          id, in_pg, in_grm, th_log_count(&f->w.proc, "refused as a whole"));
    if (done == 1 && other_done == 1) {
        settle(f);
        assert_int_equal(in_pg, 1);
        assert_int_equal(
            pg_count(f, "SELECT count(*) FROM status_history WHERE grievance_id = $1", gid), 1);
        assert_int_equal(grm_rows(f, gid, NULL), 1);
    } else {
        purge_retries(f);
        retried = metric(f, "sy_retried_total");
    }

    /* Two submissions of one grievance under different message ids: the first one counts. */
    name_of(f, "g", gid, sizeof gid, "resubmitted");
    name_of(f, "m", id, sizeof id, "resubmitted-1");
    name_of(f, "m", id2, sizeof id2, "resubmitted-2");
    publish(f, "grievance.submitted", id, submission(f, gid, 611, "first words"));
    confirm(f);
    wait_done(f, id);
    publish(f, "grievance.submitted", id2, submission(f, gid, 611, "second words"));
    confirm(f);
    wait_done(f, id2);
    assert_int_equal(pg_count(f, "SELECT count(*) FROM grievances WHERE grievance_id = $1", gid),
                     1);
    assert_int_equal(
        pg_count(f, "SELECT count(*) FROM status_history WHERE grievance_id = $1", gid), 1);
    json_t *row = pg_row(f, "SELECT description FROM grievances WHERE grievance_id = $1", 1,
                         (const char *[]){gid});
    assert_string_equal(cell(row, 0), "first words");
    json_decref(row);
    assert_int_equal(grm_rows(f, gid, NULL), 1);
    row = grm_row(f, gid);
    assert_string_equal(cell(row, 2), "first words");
    json_decref(row);

    /* The same, in one batch. */
    name_of(f, "g", gid, sizeof gid, "resubmitted-batch");
    name_of(f, "m", id, sizeof id, "resubmitted-batch-1");
    name_of(f, "m", id2, sizeof id2, "resubmitted-batch-2");
    publish(f, "grievance.submitted", id, submission(f, gid, 612, "first words"));
    publish(f, "grievance.submitted", id2, submission(f, gid, 612, "second words"));
    confirm(f);
    wait_done(f, id);
    wait_done(f, id2);
    assert_int_equal(pg_count(f, "SELECT count(*) FROM grievances WHERE grievance_id = $1", gid),
                     1);
    assert_int_equal(
        pg_count(f, "SELECT count(*) FROM status_history WHERE grievance_id = $1", gid), 1);
    assert_int_equal(grm_rows(f, gid, NULL), 1);
    assert_int_equal(th_queue_depth(f->amqp, DEAD), 0);
    expect_no_retry(f, retried, "redeliveries and resubmissions");
    end_checks(f);
}

/* --- 4. a status change -------------------------------------------------------------------- */

static void status_update_reaches_postgres_the_grm_and_the_chatbot_once(void **state)
{
    struct fixture *f = *state;
    char gid[96], sub[96], id[96], phone[24], actor[64], ann_id[128];
    if (!f->w.running)
        start_worker(f, true);
    double retried = metric(f, "sy_retried_total");
    name_of(f, "g", gid, sizeof gid, "status");
    name_of(f, "m", sub, sizeof sub, "status-sub");
    name_of(f, "m", id, sizeof id, "status-1");
    phone_of(f, 620, phone);
    actor_of(f, actor);
    publish(f, "grievance.submitted", sub, submission(f, gid, 620, "broken pipe"));
    confirm(f);
    wait_done(f, sub);

    publish(f, "grievance.status_update", id,
            status_update(f, gid, "under_evaluation", "an engineer visits on Friday"));
    confirm(f);
    wait_done(f, id);

    json_t *row = pg_row(f, "SELECT status FROM grievances WHERE grievance_id = $1", 1,
                         (const char *[]){gid});
    assert_string_equal(cell(row, 0), "under_evaluation");
    json_decref(row);
    row = pg_row(f,
                 "SELECT created_by, notes, message_id FROM status_history"
                 " WHERE grievance_id = $1 AND status = 'under_evaluation'",
                 1, (const char *[]){gid});
    assert_non_null(row);
    assert_string_equal(cell(row, 0), actor);
    assert_string_equal(cell(row, 1), "an engineer visits on Friday");
    assert_string_equal(cell(row, 2), id);
    json_decref(row);
    row = grm_row(f, gid);
    assert_non_null(row);
    assert_string_equal(cell(row, 5), GRM_UNDER);
    json_decref(row);
    assert_int_equal(grm_rows(f, gid, NULL), 1);
    row = pg_row(f, "SELECT pending, pushed_status FROM grm_sync WHERE grievance_id = $1", 1,
                 (const char *[]){gid});
    assert_string_equal(cell(row, 0), "f");
    assert_string_equal(cell(row, 1), "under_evaluation");
    json_decref(row);

    json_t *data = NULL;
    const char *got_id = NULL;
    assert_int_equal(announced(f, gid, &data, &got_id), 1);
    snprintf(ann_id, sizeof ann_id, "status:%s", id);
    assert_string_equal(got_id, ann_id);
    assert_string_equal(str_of(data, "status"), "under_evaluation");
    assert_string_equal(str_of(data, "previous_status"), "submitted");
    assert_string_equal(str_of(data, "phone_number"), phone);
    assert_string_equal(str_of(data, "changed_by"), actor);
    assert_string_equal(str_of(data, "notes"), "an engineer visits on Friday");
    assert_non_null(json_string_value(json_object_get(data, "at")));

    /* The same status change again: no second history row; an announcement, if any, under the
     * same id. */
    publish(f, "grievance.status_update", id,
            status_update(f, gid, "under_evaluation", "an engineer visits on Friday"));
    confirm(f);
    settle(f);
    assert_int_equal(
        pg_count(f, "SELECT count(*) FROM status_history WHERE grievance_id = $1", gid), 2);
    int n = announced(f, gid, &data, &got_id);
    fprintf(stderr, "the repeated status change was announced %d more time(s)\n", n - 1);
    for (size_t i = 0; i < f->nann; i++) {
        const char *g = json_string_value(
            json_object_get(json_object_get(f->ann[i].env, "data"), "grievance_id"));
        if (g && strcmp(g, gid) == 0)
            assert_string_equal(f->ann[i].id, ann_id);
    }
    assert_int_equal(grm_rows(f, gid, NULL), 1);

    /* A submission and its first status change in one batch: applied in that order. */
    name_of(f, "g", gid, sizeof gid, "status-batch");
    name_of(f, "m", sub, sizeof sub, "status-batch-sub");
    name_of(f, "m", id, sizeof id, "status-batch-1");
    publish(f, "grievance.submitted", sub, submission(f, gid, 621, "fallen tree"));
    publish(f, "grievance.status_update", id, status_update(f, gid, "resolved", "tree removed"));
    confirm(f);
    wait_done(f, sub);
    wait_done(f, id);
    row = pg_row(f, "SELECT status FROM grievances WHERE grievance_id = $1", 1,
                 (const char *[]){gid});
    assert_string_equal(cell(row, 0), "resolved");
    json_decref(row);
    assert_int_equal(
        pg_count(f, "SELECT count(*) FROM status_history WHERE grievance_id = $1", gid), 2);
    row = grm_row(f, gid);
    assert_non_null(row);
    assert_string_equal(cell(row, 5), GRM_RESOLVED);
    json_decref(row);
    assert_int_equal(announced(f, gid, &data, NULL), 1);
    assert_string_equal(str_of(data, "previous_status"), "submitted");
    assert_string_equal(str_of(data, "status"), "resolved");
    assert_int_equal(th_queue_depth(f->amqp, DEAD), 0);
    expect_no_retry(f, retried, "a status change");
    end_checks(f);
}

/* --- a row the GRM refuses ---------------------------------------------------------------- */

static void grm_refusing_a_row_rejects_only_its_own_message(void **state)
{
    struct fixture *f = *state;
    char gid[3][96], id[3][96];
    if (!f->w.running)
        start_worker(f, true);
    for (int i = 0; i < 3; i++) {
        name_of(f, "g", gid[i], sizeof gid[i], "refused-%d", i);
        name_of(f, "m", id[i], sizeof id[i], "refused-%d", i);
        json_t *d = submission(f, gid[i], 660 + i, "the GRM's column is too narrow");
        if (i == 1) /* longer than the reference GRM's ward_number VARCHAR(16) */
            json_object_set_new(d, "custom",
                                json_pack("{s:s}", "ward_no", "ward twelve, north side, block C"));
        publish(f, "grievance.submitted", id[i], d);
    }
    confirm(f);
    wait_done(f, id[0]);
    wait_done(f, id[2]);
    int64_t end = th_now_ms() + 10000;
    while (th_queue_depth(f->amqp, DEAD) < 1 && th_now_ms() < end)
        th_sleep_ms(100);
    json_t *dead = take_dead(f);
    const char *reason = dead_reason(dead, id[1]);
    if (!reason)
        fail_msg("%s was not dead-lettered", id[1]);
    fprintf(stderr, "refused by the GRM: %s\n", reason);
    assert_non_null(strstr(reason, "ward_number"));
    assert_int_equal(json_array_size(dead), 1);
    json_decref(dead);
    /* The others are copied; the refused one stays in PostgreSQL, its copy pending. */
    assert_int_equal(grm_rows(f, gid[0], NULL), 1);
    assert_int_equal(grm_rows(f, gid[2], NULL), 1);
    assert_int_equal(grm_rows(f, gid[1], NULL), 0);
    assert_int_equal(pg_count(f, "SELECT count(*) FROM grievances WHERE grievance_id = $1", gid[1]),
                     1);
    assert_int_equal(
        pg_count(f, "SELECT count(*) FROM grm_sync WHERE grievance_id = $1 AND pending", gid[1]),
        1);
    assert_int_equal(pg_count(f,
                              "SELECT count(*) FROM sync_history WHERE grievance_id = $1"
                              " AND direction = 'push' AND outcome = 'failed'",
                              gid[1]),
                     1);
    json_t *row =
        pg_row(f, "SELECT status, error FROM tasks WHERE task_id = $1", 1, (const char *[]){id[1]});
    assert_non_null(row);
    assert_string_equal(cell(row, 0), "rejected");
    json_decref(row);
    end_checks(f);
}

/* --- 5. the GRM's MariaDB away for half a minute ------------------------------------------ */

static void grm_database_stopped_mid_stream_loses_nothing(void **state)
{
    struct fixture *f = *state;
    enum { BEFORE = 5, DURING = 25, AFTER = 5, ALL = BEFORE + DURING + AFTER };
    char gid[96], id[96], like_g[96], like_m[96];
    if (!getenv("SY_FLEET") || !*getenv("SY_FLEET")) {
        fprintf(stderr, "skipped: SY_FLEET is not set (run through ./fleet test)\n");
        skip();
    }
    if (!f->w.running)
        start_worker(f, true);
    name_of(f, "g", like_g, sizeof like_g, "down-%%");
    name_of(f, "m", like_m, sizeof like_m, "down-%%");
    int k = 0;
    for (; k < BEFORE; k++) {
        name_of(f, "g", gid, sizeof gid, "down-%03d", k);
        name_of(f, "m", id, sizeof id, "down-%03d", k);
        publish(f, "grievance.submitted", id, submission(f, gid, 700 + k, "before the outage"));
    }
    confirm(f);
    wait_done(f, id);

    f->mariadb_down = true;
    assert_int_equal(fleet_svc("stop", "mariadb"), 0);
    int64_t stopped = th_now_ms();
    th_sleep_ms(2000);
    for (; k < BEFORE + DURING; k++) {
        name_of(f, "g", gid, sizeof gid, "down-%03d", k);
        name_of(f, "m", id, sizeof id, "down-%03d", k);
        publish(f, "grievance.submitted", id, submission(f, gid, 700 + k, "during the outage"));
        confirm(f);
        th_sleep_ms(1000);
        worker_alive(f);
    }
    /* PostgreSQL has them all already; the GRM copies wait. */
    long long stored =
        wait_count(f, BEFORE + DURING, 10000,
                   "SELECT count(*) FROM grievances WHERE grievance_id LIKE $1", like_g);
    assert_int_equal(stored, BEFORE + DURING);
    long long waiting = pg_count(
        f, "SELECT count(*) FROM tasks WHERE task_id LIKE $1 AND status = 'stored'", like_m);
    long long pending =
        pg_count(f, "SELECT count(*) FROM grm_sync WHERE grievance_id LIKE $1 AND pending", like_g);
    long long failed = pg_count(f,
                                "SELECT count(*) FROM sync_history WHERE grievance_id LIKE $1"
                                " AND direction = 'push' AND outcome = 'failed'",
                                like_g);
    fprintf(stderr,
            "with the GRM away: %lld tasks stored, %lld copies pending, %lld failed pushes\n",
            waiting, pending, failed);
    assert_int_equal(waiting, DURING);
    assert_int_equal(pending, DURING);
    assert_true(failed >= DURING);
    /* A status change while the GRM is away: PostgreSQL holds it at once. */
    char sgid[96], sid[96], ann_id[128];
    name_of(f, "g", sgid, sizeof sgid, "down-%03d", 0);
    name_of(f, "m", sid, sizeof sid, "downstatus");
    snprintf(ann_id, sizeof ann_id, "status:%s", sid);
    publish(f, "grievance.status_update", sid,
            status_update(f, sgid, "under_evaluation", "looked at while the GRM is away"));
    confirm(f);
    assert_int_equal(wait_count(f, 1, 5000,
                                "SELECT count(*) FROM grievances WHERE grievance_id = $1"
                                " AND status = 'under_evaluation'",
                                sgid),
                     1);
    th_sleep_ms(1000);
    fprintf(stderr, "announced while the GRM is away: %d time(s)\n",
            announced(f, sgid, NULL, NULL));

    int64_t left = DOWN_MS - (th_now_ms() - stopped);
    if (left > 0)
        th_sleep_ms((int)left);

    assert_int_equal(fleet_svc("start", "mariadb"), 0);
    f->mariadb_down = false;
    int64_t started = th_now_ms();
    fprintf(stderr, "MariaDB was stopped for %lld ms\n", (long long)(started - stopped));
    for (; k < ALL; k++) {
        name_of(f, "g", gid, sizeof gid, "down-%03d", k);
        name_of(f, "m", id, sizeof id, "down-%03d", k);
        publish(f, "grievance.submitted", id, submission(f, gid, 700 + k, "after the outage"));
    }
    confirm(f);

    /* Every grievance once on both sides... */
    long long distinct = 0, copies = 0;
    int64_t end = th_now_ms() + RECOVER_MAX_MS;
    while ((copies = grm_rows(f, like_g, &distinct)) < ALL && th_now_ms() < end) {
        worker_alive(f);
        th_sleep_ms(200);
    }
    fprintf(stderr, "%lld of %d copied to the GRM %lld ms after MariaDB started\n", copies, ALL,
            (long long)(th_now_ms() - started));
    if (copies != ALL)
        th_proc_dump_log(&f->w.proc, 20);
    assert_int_equal(copies, ALL);
    assert_int_equal(distinct, ALL);
    assert_int_equal(
        pg_count(f, "SELECT count(*) FROM grievances WHERE grievance_id LIKE $1", like_g), ALL);
    assert_int_equal(pg_count(f,
                              "SELECT count(*) FROM status_history WHERE grievance_id LIKE $1"
                              " AND status = 'submitted'",
                              like_g),
                     ALL);
    assert_int_equal(wait_count(f, 0, 5000,
                                "SELECT count(*) FROM grm_sync WHERE grievance_id LIKE $1"
                                " AND pending",
                                like_g),
                     0);
    /* ...and every message finished with: done, none dead-lettered. */
    long long done = wait_count(f, ALL, 5000,
                                "SELECT count(*) FROM tasks WHERE task_id LIKE $1 AND"
                                " status = 'done'",
                                like_m);
    th_sleep_ms(500);
    json_t *dead = take_dead(f);
    json_t *first = json_array_get(dead, 0);
    json_t *task = first ? pg_row(f, "SELECT status, result::text FROM tasks WHERE task_id = $1", 1,
                                  (const char *[]){str_of(first, "id")})
                         : NULL;
    CHECK(f, done == ALL, "%lld of %d tasks done", done, ALL);
    const char *got_id = NULL;
    int n = announced(f, sgid, NULL, &got_id);
    CHECK(f, n == 1 && strcmp(got_id, ann_id) == 0,
          "the status change made while the GRM was away was announced %d time(s), last as %s", n,
          got_id ? got_id : "-");
    CHECK(f,
          pg_count(f, "SELECT count(*) FROM tasks WHERE task_id = $1 AND status = 'done'", sid) ==
              1,
          "%s is not done", sid);
    CHECK(f, json_array_size(dead) == 0,
          "%zu dead letter(s), the first %s: %s (its task: %s, result %s)", json_array_size(dead),
          first ? str_of(first, "id") : "-", first ? str_of(first, "reason") : "-",
          task ? cell(task, 0) : "none", task ? cell(task, 1) : "-");
    json_decref(task);
    json_decref(dead);
    end_checks(f);
}

/* --- 6. pulls from the GRM ----------------------------------------------------------------- */

/* Publishes a grm.pull and waits until a pull round recorded itself after it. */
static void pull(struct fixture *f, const char *name)
{
    char id[96];
    json_t *now = pg_row(f, "SELECT now()::text", 0, NULL);
    name_of(f, "m", id, sizeof id, "%s", name);
    publish(f, "grm.pull", id, json_pack("{s:i}", "limit", 1000));
    confirm(f);
    long long n = wait_count(f, 1, DONE_MAX_MS,
                             "SELECT count(*) FROM system_monitoring WHERE component = 'grm'"
                             " AND name = 'last_pull_rows' AND at > $1::timestamptz",
                             cell(now, 0));
    json_decref(now);
    if (n != 1) {
        th_proc_dump_log(&f->w.proc, 30);
        fail_msg("%s: no pull round within %d ms", id, DONE_MAX_MS);
    }
    settle(f);
}

/* Sets the GRM row's status (and its updated column to `at`, or to now when NULL). */
static void grm_set_status(struct fixture *f, const char *gid, const char *status, const char *at)
{
    char sql[512];
    if (at) {
        snprintf(sql, sizeof sql, "UPDATE %s SET status = ?, updated_at = ? WHERE chatbot_ref = ?",
                 f->qtable);
        my_ok(f, sql, 3, (const char *[]){status, at, gid});
    } else {
        snprintf(sql, sizeof sql,
                 "UPDATE %s SET status = ?, updated_at = UTC_TIMESTAMP(6) WHERE chatbot_ref = ?",
                 f->qtable);
        my_ok(f, sql, 2, (const char *[]){status, gid});
    }
}

/* A change PostgreSQL holds and has not pushed: status, updated_at, grm_sync pending. */
static void pg_local_change(struct fixture *f, const char *gid, const char *status,
                            const char *updated_at)
{
    pg_ok(f,
          "UPDATE grievances SET status = $2, updated_at = $3::timestamptz"
          " WHERE grievance_id = $1",
          3, (const char *[]){gid, status, updated_at});
    pg_ok(f, "UPDATE grm_sync SET pending = true, changed_at = now() WHERE grievance_id = $1", 1,
          (const char *[]){gid});
}

static void pull_brings_grm_status_back_and_settles_conflicts_by_time(void **state)
{
    struct fixture *f = *state;
    char p[96], w_pg[96], w_grm[96], tie[96], id[96], phone[24], prefix[128];
    if (!f->w.running)
        start_worker(f, true);
    double retried = metric(f, "sy_retried_total");
    name_of(f, "g", p, sizeof p, "pull");
    name_of(f, "g", w_pg, sizeof w_pg, "conflict-pg");
    name_of(f, "g", w_grm, sizeof w_grm, "conflict-grm");
    name_of(f, "g", tie, sizeof tie, "conflict-tie");
    const char *gids[4] = {p, w_pg, w_grm, tie};
    for (int i = 0; i < 4; i++) {
        name_of(f, "m", id, sizeof id, "pull-sub-%d", i);
        publish(f, "grievance.submitted", id, submission(f, gids[i], 630 + i, "to be pulled"));
    }
    confirm(f);
    wait_done(f, id);
    phone_of(f, 630, phone);

    /* The GRM's officers resolve one grievance. */
    grm_set_status(f, p, GRM_RESOLVED, NULL);
    /* Both sides change the other three; PostgreSQL's change is later, earlier, or at the very
     * same time as the GRM's. */
    json_t *later = pg_row(f, "SELECT (now() + interval '1 hour')::text", 0, NULL);
    json_t *earlier = pg_row(f, "SELECT (now() - interval '1 hour')::text", 0, NULL);
    pg_local_change(f, w_pg, "under_evaluation", cell(later, 0));
    pg_local_change(f, w_grm, "under_evaluation", cell(earlier, 0));
    pg_local_change(f, tie, "under_evaluation", "2001-02-03 04:05:06+00");
    json_decref(later);
    json_decref(earlier);
    grm_set_status(f, w_pg, GRM_DENIED, NULL);
    grm_set_status(f, w_grm, GRM_DENIED, NULL);
    grm_set_status(f, tie, GRM_DENIED, "2001-02-03 04:05:06");
    /* Read this table from its start: a scheduler on a shared broker may have pulled already. */
    pg_ok(f, "DELETE FROM grm_watermark WHERE name = $1", 1, (const char *[]){f->table});

    pull(f, "pull-1");

    /* The plain change: applied, recorded, announced. */
    json_t *row =
        pg_row(f, "SELECT status FROM grievances WHERE grievance_id = $1", 1, (const char *[]){p});
    assert_string_equal(cell(row, 0), "resolved");
    json_decref(row);
    assert_int_equal(pg_count(f,
                              "SELECT count(*) FROM status_history WHERE grievance_id = $1"
                              " AND status = 'resolved' AND created_by = 'grm'",
                              p),
                     1);
    row = pg_row(f,
                 "SELECT pg_status, grm_status FROM sync_history WHERE grievance_id = $1"
                 " AND direction = 'pull' AND outcome = 'ok'",
                 1, (const char *[]){p});
    assert_non_null(row);
    assert_string_equal(cell(row, 0), "resolved");
    assert_string_equal(cell(row, 1), GRM_RESOLVED);
    json_decref(row);
    json_t *data = NULL;
    const char *ann_id = NULL;
    assert_int_equal(announced(f, p, &data, &ann_id), 1);
    snprintf(prefix, sizeof prefix, "grm:%s:", p);
    assert_true(strncmp(ann_id, prefix, strlen(prefix)) == 0);
    assert_string_equal(str_of(data, "status"), "resolved");
    assert_string_equal(str_of(data, "previous_status"), "submitted");
    assert_string_equal(str_of(data, "changed_by"), "grm");
    assert_string_equal(str_of(data, "phone_number"), phone);

    /* PostgreSQL's later change wins: kept, and the conflict recorded with both values. */
    row = pg_row(f,
                 "SELECT pg_status, grm_status, detail FROM sync_history WHERE grievance_id = $1"
                 " AND outcome = 'conflict'",
                 1, (const char *[]){w_pg});
    if (!row)
        fail_msg("no conflict recorded for %s", w_pg);
    assert_string_equal(cell(row, 0), "under_evaluation");
    assert_string_equal(cell(row, 1), GRM_DENIED);
    fprintf(stderr, "conflict, PostgreSQL later: %s\n", cell(row, 2));
    assert_non_null(strstr(cell(row, 2), "PostgreSQL wins"));
    json_decref(row);
    row = pg_row(f, "SELECT status FROM grievances WHERE grievance_id = $1", 1,
                 (const char *[]){w_pg});
    assert_string_equal(cell(row, 0), "under_evaluation");
    json_decref(row);
    assert_int_equal(pg_count(f,
                              "SELECT count(*) FROM status_history WHERE grievance_id = $1"
                              " AND created_by = 'grm'",
                              w_pg),
                     0);
    assert_int_equal(announced(f, w_pg, NULL, NULL), 0);

    /* The GRM's later change wins, and so does the GRM on a tie. */
    const char *grm_wins[2] = {w_grm, tie};
    for (int i = 0; i < 2; i++) {
        const char *g = grm_wins[i];
        row = pg_row(f,
                     "SELECT pg_status, grm_status, detail FROM sync_history"
                     " WHERE grievance_id = $1 AND outcome = 'conflict'",
                     1, (const char *[]){g});
        if (!row)
            fail_msg("no conflict recorded for %s", g);
        assert_string_equal(cell(row, 0), "under_evaluation");
        assert_string_equal(cell(row, 1), GRM_DENIED);
        fprintf(stderr, "conflict, %s: %s\n", i ? "tie" : "GRM later", cell(row, 2));
        assert_non_null(strstr(cell(row, 2), "the GRM wins"));
        json_decref(row);
        row = pg_row(f, "SELECT status FROM grievances WHERE grievance_id = $1", 1,
                     (const char *[]){g});
        assert_string_equal(cell(row, 0), "denied");
        json_decref(row);
        assert_int_equal(pg_count(f,
                                  "SELECT count(*) FROM status_history WHERE grievance_id = $1"
                                  " AND status = 'denied' AND created_by = 'grm'",
                                  g),
                         1);
        /* The GRM's status won, but PostgreSQL's other changes are still to go out (with the
         * GRM's status now): the grievance stays pending (grievance.h). */
        assert_int_equal(
            pg_count(f, "SELECT count(*) FROM grm_sync WHERE grievance_id = $1 AND pending", g), 1);
        assert_int_equal(announced(f, g, &data, NULL), 1);
        assert_string_equal(str_of(data, "changed_by"), "grm");
        assert_string_equal(str_of(data, "previous_status"), "under_evaluation");
    }

    /* A second pull finds nothing new. */
    char like[96];
    name_of(f, "g", like, sizeof like, "%%");
    long long history =
        pg_count(f, "SELECT count(*) FROM status_history WHERE grievance_id LIKE $1", like);
    long long pulls = pg_count(
        f, "SELECT count(*) FROM sync_history WHERE grievance_id LIKE $1 AND direction = 'pull'",
        like);
    size_t nann = (drain_announcements(f), f->nann);
    pull(f, "pull-2");
    assert_int_equal(
        pg_count(f, "SELECT count(*) FROM status_history WHERE grievance_id LIKE $1", like),
        history);
    assert_int_equal(pg_count(f,
                              "SELECT count(*) FROM sync_history WHERE grievance_id LIKE $1"
                              " AND direction = 'pull'",
                              like),
                     pulls);
    drain_announcements(f);
    assert_int_equal(f->nann, nann);
    row =
        pg_row(f, "SELECT status FROM grievances WHERE grievance_id = $1", 1, (const char *[]){p});
    assert_string_equal(cell(row, 0), "resolved");
    json_decref(row);
    assert_int_equal(th_queue_depth(f->amqp, DEAD), 0);
    expect_no_retry(f, retried, "pulls");
    end_checks(f);
}

/* --- 7. attachments ------------------------------------------------------------------------ */

static void equal_attachments_are_stored_once(void **state)
{
    struct fixture *f = *state;
    char gid[2][96], id[96], fid[96], bytes[128], b64[256], hex[2 * SY_SHA256_LEN + 1], path[1400];
    uint8_t sum[SY_SHA256_LEN];
    if (!f->w.running)
        start_worker(f, true);
    double retried = metric(f, "sy_retried_total");
    assert_int_equal(files_in_store(f), 0);
    int len = snprintf(bytes, sizeof bytes, "photo of the leak, run %s", f->run);
    b64[sy_base64_encode(bytes, (size_t)len, false, b64)] = '\0';
    sy_sha256(bytes, (size_t)len, sum);
    sy_hex_encode(sum, sizeof sum, hex);
    hex[2 * SY_SHA256_LEN] = '\0';

    for (int i = 0; i < 2; i++) {
        name_of(f, "g", gid[i], sizeof gid[i], "files-%d", i);
        name_of(f, "m", id, sizeof id, "files-%d", i);
        name_of(f, "f", fid, sizeof fid, "%d", i);
        json_t *d = submission(f, gid[i], 640 + i, "with a photo");
        json_object_set_new(d, "files",
                            json_pack("[{s:s, s:s, s:s, s:s}]", "file_id", fid, "file_type",
                                      "image/jpeg", "file_name", "leak.jpg", "file_data", b64));
        publish(f, "grievance.submitted", id, d);
    }
    confirm(f);
    wait_done(f, id);
    /* The same bytes once more, attached later to the first grievance. */
    name_of(f, "m", id, sizeof id, "files-attached");
    name_of(f, "f", fid, sizeof fid, "attached");
    char actor[64];
    actor_of(f, actor);
    publish(f, "grievance.file_attached", id,
            json_pack("{s:s, s:s, s:s, s:s, s:s}", "file_id", fid, "grievance_id", gid[0],
                      "file_type", "image/jpeg", "file_data", b64, "actor", actor));
    confirm(f);
    wait_done(f, id);

    char like[96];
    name_of(f, "g", like, sizeof like, "files-%%");
    json_t *row = pg_row(f,
                         "SELECT count(*), count(DISTINCT sha256), min(sha256), min(size),"
                         " max(size), count(DISTINCT grievance_id)"
                         " FROM file_attachments WHERE grievance_id LIKE $1",
                         1, (const char *[]){like});
    assert_string_equal(cell(row, 0), "3");
    assert_string_equal(cell(row, 1), "1");
    assert_string_equal(cell(row, 2), hex);
    assert_int_equal(atoll(cell(row, 3)), len);
    assert_int_equal(atoll(cell(row, 4)), len);
    assert_string_equal(cell(row, 5), "2");
    json_decref(row);

    /* One file, at <root>/<h[0..1]>/<h[2..3]>/<h>, holding the bytes. */
    assert_int_equal(files_in_store(f), 1);
    snprintf(path, sizeof path, "%s/%.2s/%.2s/%s", f->files, hex, hex + 2, hex);
    assert_string_equal(file_found, path);
    char *content = read_all(path);
    assert_string_equal(content, bytes);
    free(content);
    expect_no_retry(f, retried, "attachments");
    end_checks(f);
}

/* --- 8. the GRM integration turned off ------------------------------------------------------ */

static void grm_disabled_keeps_the_copy_pending_until_a_pull_once_enabled(void **state)
{
    struct fixture *f = *state;
    char gid[96], id[96];
    if (f->w.running)
        assert_int_equal(stop_worker(f), 0);
    start_worker(f, false);
    assert_true(th_log_count(&f->w.proc, "disabled") > 0);

    name_of(f, "g", gid, sizeof gid, "disabled");
    name_of(f, "m", id, sizeof id, "disabled");
    publish(f, "grievance.submitted", id, submission(f, gid, 650, "GRM switched off"));
    confirm(f);
    wait_done(f, id);
    assert_int_equal(pg_count(f, "SELECT count(*) FROM grievances WHERE grievance_id = $1", gid),
                     1);
    assert_int_equal(
        pg_count(f, "SELECT count(*) FROM status_history WHERE grievance_id = $1", gid), 1);
    assert_int_equal(
        pg_count(f, "SELECT count(*) FROM grm_sync WHERE grievance_id = $1 AND pending", gid), 1);
    assert_int_equal(pg_count(f, "SELECT count(*) FROM sync_history WHERE grievance_id = $1", gid),
                     0);
    /* A pull with the integration off leaves the GRM alone too. */
    name_of(f, "m", id, sizeof id, "disabled-pull");
    publish(f, "grm.pull", id, json_pack("{}"));
    confirm(f);
    settle(f);
    assert_int_equal(grm_rows(f, gid, NULL), 0);
    assert_int_equal(th_queue_depth(f->amqp, DEAD), 0);
    assert_int_equal(stop_worker(f), 0);

    /* Enabled again, the copy catches up with the first pull once it has waited a minute
     * (made older here rather than waited for). */
    start_worker(f, true);
    pg_ok(f,
          "UPDATE grm_sync SET changed_at = now() - interval '2 minutes'"
          " WHERE grievance_id = $1",
          1, (const char *[]){gid});
    pull(f, "enabled-pull");
    json_t *row = grm_row(f, gid);
    if (!row)
        fail_msg("%s: no GRM copy after a pull with the integration enabled again", gid);
    assert_string_equal(cell(row, 2), "GRM switched off");
    assert_string_equal(cell(row, 5), GRM_SUBMITTED);
    json_decref(row);
    assert_int_equal(
        pg_count(f, "SELECT count(*) FROM grm_sync WHERE grievance_id = $1 AND pending", gid), 0);
    assert_int_equal(pg_count(f,
                              "SELECT count(*) FROM sync_history WHERE grievance_id = $1"
                              " AND direction = 'push' AND outcome = 'ok'",
                              gid),
                     1);
    assert_int_equal(th_queue_depth(f->amqp, DEAD), 0);
    assert_int_equal(stop_worker(f), 0);
    end_checks(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(batch_stores_good_messages_once_and_dead_letters_bad_ones_by_field,
                               reset_checks),
        cmocka_unit_test_setup(submission_and_update_are_stored_and_copied_to_the_grm_as_mapped,
                               reset_checks),
        cmocka_unit_test_setup(redelivery_and_resubmission_store_one_grievance, reset_checks),
        cmocka_unit_test_setup(status_update_reaches_postgres_the_grm_and_the_chatbot_once,
                               reset_checks),
        cmocka_unit_test_setup(pull_brings_grm_status_back_and_settles_conflicts_by_time,
                               reset_checks),
        cmocka_unit_test_setup(equal_attachments_are_stored_once, reset_checks),
        cmocka_unit_test_setup(grm_refusing_a_row_rejects_only_its_own_message, reset_checks),
        cmocka_unit_test_setup(grm_database_stopped_mid_stream_loses_nothing, reset_checks),
        cmocka_unit_test_setup(grm_disabled_keeps_the_copy_pending_until_a_pull_once_enabled,
                               reset_checks),
    };
    th_need_env("SY_AMQP_URL");
    th_need_env("SY_PG_URL");
    th_need_env("SY_GRM_MYSQL_URL");
    th_need_env("SY_SOURCE_DIR");
    th_need_env("SY_BUILD_DIR");
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
