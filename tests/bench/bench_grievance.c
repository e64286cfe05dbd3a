/* bench_grievance.c - how many grievances per second sy-grievance stores in PostgreSQL and
 * copies into the legacy GRM, against a bare librabbitmq consumer draining the same queue in the
 * same run on the same broker:
 *   B. N messages of the grievances' size pre-filled into sy.grievance and drained by a bare
 *      consumer (prefetch 1000, multiple acks): what the broker delivers at best;
 *   G. N grievance.submitted pre-filled into sy.grievance while nothing consumes it (each its
 *      own grievance and citizen, a ~590-byte description, no files), then sy-grievance starts
 *      and the clock runs until all N grievances are rows in PostgreSQL and in the GRM table.
 *      Every 100 ms the worker's count of stored messages is read from /metrics; the rows are
 *      counted once it says all are in (counting 100k rows ten times a second would take a
 *      good share of PostgreSQL from the worker). Then every task of the round must say done, every
 * grm_sync row must be pushed, and nothing may be dead-lettered. Rounds (SY_BENCH_ROUNDS, default
 * "B4F1PB"): B the baseline; 4 and 1 sy-grievance with 4 (the default) and 1 handler threads; P 4
 * threads with GRM_INTEGRATION_ENABLED=false, what PostgreSQL alone costs; F 4 threads with
 * SY_PREFETCH=1000 (the runtime's default is 256, under the handler's batches of 500); D and Q 2
 * and 4 replicas of 4 threads each on the same queue (their peak RSS summed). N defaults
 * to 100000 (SY_BENCH_N). The run works in a GRM table of its own (grm_<run>, made from the
 * reference schema's DDL) named by a grm.yaml of its own, and removes its rows, table and files at
 * the end. Prints figures and ratios; exits 0 when it ran and every round verified, 1 otherwise
 * (77: a service it needs is not configured). */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bare_consumer.h"
#include "harness.h"
#include "http.h"
#include "sy/amqp.h"
#include "sy/json.h"
#include "sy/msg.h"
#include "sy/mysql.h"
#include "sy/pg.h"
#include "sy/topology.h"

#define WORKER        "grievance"
#define TYPE          "grievance.submitted"
#define CONFIRM_EVERY 2000
#define POLL_MS       100
#define ROUND_MAX_S   1800.0 /* a round that has not finished by then failed */
#define START_MAX_MS  20000
#define TARGET        10000.0 /* grievances/s, both databases */
#define ROUNDS_MAX    10

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_grievance: %s: %s\n", what, why);
    exit(1);
}

/* What one run names and where it keeps its files. */
struct bench {
    char run[17];
    char phone_base[8]; /* six digits of the run id */
    char actor[64];
    char dir[1100], files[1200], map[1200];
    char table[64], qtable[80];
    struct sy_amqp *a;
    struct sy_topology *topo;
    struct sy_pg *pg;
    struct sy_mysql *my;
    char queue[256], dead[256];
};

/* Ids of message i of round r: grievance "bg-<run>-<r>-<i>", message "bm-<run>-<r>-<i>", and
 * citizen "+4<six digits of the run><r><i>" (E.164: 14 digits). */
static void ids_of(const struct bench *b, int r, long i, char gid[64], char mid[64], char phone[24])
{
    snprintf(gid, 64, "bg-%s-%d-%06ld", b->run, r, i);
    snprintf(mid, 64, "bm-%s-%d-%06ld", b->run, r, i);
    snprintf(phone, 24, "+4%s%d%06ld", b->phone_base, r % 10, i % 1000000);
}

/* A grievance as the gateway hands it over: ~500 bytes of description, a location and the
 * reference GRM's one custom field. */
static json_t *submission(const struct bench *b, int r, long i)
{
    static const char text[] =
        "Since the pipeline works on the main road began three weeks ago, the water supply "
        "to our street has been cut every morning between six and eleven, without any notice "
        "to the households. Several families with small children and elderly members have "
        "had to buy water from private tankers at a high price. The contractor's workers "
        "say the valve near the school must stay closed while they dig, but nobody has told "
        "us how long this will last. We ask that a temporary connection be laid, that the "
        "schedule be announced in advance, and that the road be repaired once the work ends.";
    char gid[64], mid[64], phone[24], name[64], desc[640];
    ids_of(b, r, i, gid, mid, phone);
    snprintf(name, sizeof name, "Citizen %ld", i);
    snprintf(desc, sizeof desc, "Case %ld: %s", i, text);
    return json_pack("{s:s, s:{s:s, s:s}, s:s, s:s, s:s, s:{s:s}, s:s}", "grievance_id", gid,
                     "user_info", "phone_number", phone, "name", name, "project_type",
                     "water-supply", "description", desc, "location", "Main Road, ward 12",
                     "custom", "ward_no", "12", "actor", b->actor);
}

/* The envelope of message i of round r, as the runtime builds it; *len its size. */
static void *envelope(const struct bench *b, int r, long i, size_t *len)
{
    char gid[64], mid[64], phone[24];
    void *mp = NULL, *body = NULL;
    size_t mlen = 0;
    json_t *data = submission(b, r, i);
    ids_of(b, r, i, gid, mid, phone);
    if (!data || sy_json_to_msgpack(data, &mp, &mlen) != 0 ||
        sy_msg_encode(TYPE, mid, "bench-grievance", 0, mp, mlen, &body, len) != 0)
        die("envelope", "cannot build one");
    json_decref(data);
    free(mp);
    return body;
}

/* N messages of round r into sy.grievance, confirmed by the broker; returns the mean size. */
static size_t prefill(struct bench *b, int r, long n)
{
    double t0 = th_mono_s();
    size_t total = 0;
    for (long i = 0; i < n; i++) {
        char gid[64], mid[64], phone[24];
        size_t len = 0;
        void *body = envelope(b, r, i, &len);
        ids_of(b, r, i, gid, mid, phone);
        struct sy_publish p = {.exchange = b->topo->exchange,
                               .routing_key = TYPE,
                               .body = body,
                               .len = len,
                               .message_id = mid,
                               .type = TYPE};
        if (sy_amqp_publish_nowait(b->a, &p) != 0)
            die("publish", sy_amqp_error(b->a));
        free(body);
        total += len;
        if ((i + 1) % CONFIRM_EVERY == 0 && sy_amqp_wait_confirms(b->a, 60000) != 0)
            die("confirms", sy_amqp_error(b->a));
    }
    if (sy_amqp_wait_confirms(b->a, 60000) != 0)
        die("confirms", sy_amqp_error(b->a));
    fprintf(stderr, "bench_grievance: prefilled %ld messages in %.2f s\n", n, th_mono_s() - t0);
    return n ? total / (size_t)n : 0;
}

/* One number from PostgreSQL (-1 on failure, printed). */
static long long pg_num(struct bench *b, const char *sql, int np, const char *const *params)
{
    struct sy_pg_res *res = NULL;
    long long v = -1;
    if (sy_pg_exec(b->pg, sql, np, params, &res) != 0)
        fprintf(stderr, "bench_grievance: %s: %s\n", sql, sy_pg_error(b->pg));
    else if (sy_pg_res_rows(res) == 1 && sy_pg_res_get(res, 0, 0))
        v = strtoll(sy_pg_res_get(res, 0, 0), NULL, 10);
    sy_pg_res_free(res);
    return v;
}

/* Rows of round r in PostgreSQL's grievances and in the GRM table. The range lets both use
 * their primary or unique index ('.' follows '-'); LIKE keeps the count exact whatever the
 * collation. */
static long long pg_count(struct bench *b, int r)
{
    char lo[64], hi[64], like[64];
    snprintf(lo, sizeof lo, "bg-%s-%d-", b->run, r);
    snprintf(hi, sizeof hi, "bg-%s-%d.", b->run, r);
    snprintf(like, sizeof like, "bg-%s-%d-%%", b->run, r);
    const char *params[] = {lo, hi, like};
    return pg_num(b,
                  "SELECT count(*) FROM grievances WHERE grievance_id >= $1 AND grievance_id < $2"
                  " AND grievance_id LIKE $3",
                  3, params);
}

static long long grm_count(struct bench *b, int r)
{
    char like[64], sql[256];
    struct sy_mysql_res *res = NULL;
    long long v = -1;
    snprintf(like, sizeof like, "bg-%s-%d-%%", b->run, r);
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s WHERE chatbot_ref LIKE ?", b->qtable);
    const char *params[] = {like};
    if (sy_mysql_exec(b->my, sql, 1, params, &res) != 0)
        fprintf(stderr, "bench_grievance: %s: %s\n", sql, sy_mysql_error(b->my));
    else if (sy_mysql_res_rows(res) == 1)
        v = strtoll(sy_mysql_res_get(res, 0, 0), NULL, 10);
    sy_mysql_res_free(res);
    return v;
}

/* The worker's sy_grievance_messages_stored_total, -1 when /metrics does not answer. */
static long long stored(int port)
{
    static const char name[] = "sy_grievance_messages_stored_total";
    struct th_reply r = th_http(port, "GET", "/metrics", NULL, NULL);
    long long v = -1;
    for (const char *line = r.body; r.status == 200 && line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, name, sizeof name - 1) == 0 &&
            (line[sizeof name - 1] == ' ' || line[sizeof name - 1] == '{'))
            v = strtoll(strchr(line, ' ') + 1, NULL, 10);
    th_reply_free(&r);
    return v;
}

/* --- the GRM table and the run's files ------------------------------------------------------ */

/* This run's GRM table, made like the reference schema's. Caller frees. */
static char *grm_ddl(const struct bench *b, const char *src)
{
    char *ddl = th_grm_ddl(src, b->qtable);

    if (!ddl)
        die(src, "no CREATE TABLE holding chatbot_ref in the reference GRM schema");
    return ddl;
}

/* The default map's columns and words, in this run's table. */
static void write_map(const struct bench *b)
{
    char text[2048];
    snprintf(text, sizeof text,
             "# bench_grievance: the reference GRM schema's columns, in this run's table.\n"
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
             "  submitted: Submitted\n"
             "  under_evaluation: Under Evaluation\n"
             "  resolved: Resolved\n"
             "  denied: Denied\n"
             "pull_batch: 500\n",
             b->table);
    if (th_write_file(b->map, text) != 0)
        die(b->map, strerror(errno));
}

/* --- a round of sy-grievance ----------------------------------------------------------------- */

#define REPLICAS_MAX 4

struct round {
    char kind;           /* '4', '1', 'P', 'F', 'D' or 'Q' */
    double pg_s, both_s; /* start to all rows in PostgreSQL, and in both */
    double cpu_s;
    long peak_kb;
    bool ok;
};

static const char *kind_name(char kind)
{
    switch (kind) {
    case '1':
        return "1 thread, PG + GRM";
    case 'P':
        return "4 threads, PG only";
    case 'F':
        return "4 thr, prefetch 1000";
    case 'D':
        return "2 replicas x 4 thr";
    case 'Q':
        return "4 replicas x 4 thr";
    default:
        return "4 threads, PG + GRM";
    }
}

/* Replicas of a round: 2 for D, 4 for Q, else 1. */
static int replicas_of(char kind)
{
    return kind == 'D' ? 2 : kind == 'Q' ? REPLICAS_MAX : 1;
}

/* Starts sy-grievance (its replicas) on the pre-filled queue and times it; then verifies what it
 * did. */
static void run_worker(struct bench *b, const char *bin, int r, long n, struct round *out)
{
    bool grm = out->kind != 'P';
    int nw = replicas_of(out->kind), port[REPLICAS_MAX];
    struct th_proc w[REPLICAS_MAX];
    long long in_pg = 0, in_grm = 0;
    double t0 = th_mono_s(), now = t0;
    out->pg_s = out->both_s = 0;
    out->ok = false;
    for (int k = 0; k < nw; k++) {
        char http[64], map[1300], files[1300], enabled[64], threads[64], instance[96];
        port[k] = th_free_port();
        snprintf(http, sizeof http, "SY_HTTP_ADDR=127.0.0.1:%d", port[k]);
        snprintf(map, sizeof map, "SY_GRM_MAP=%s", b->map);
        snprintf(files, sizeof files, "SY_FILES_ROOT=%s", b->files);
        snprintf(enabled, sizeof enabled, "GRM_INTEGRATION_ENABLED=%s", grm ? "true" : "false");
        snprintf(threads, sizeof threads, "SY_HANDLER_THREADS=%d", out->kind == '1' ? 1 : 4);
        snprintf(instance, sizeof instance, "SY_INSTANCE=bench-grievance-%s-%d-%d", b->run, r, k);
        const char *env[] = {http,
                             map,
                             files,
                             enabled,
                             threads,
                             instance,
                             "SY_LOG_LEVEL=warn",
                             out->kind == 'F' ? "SY_PREFETCH=1000" : NULL,
                             NULL};
        if (th_proc_spawn(&w[k], bin, env) != 0)
            die(bin, "cannot start");
    }
    while ((in_pg < n || (grm && in_grm < n)) && now - t0 < ROUND_MAX_S) {
        th_sleep_ms(POLL_MS);
        long long m = 0;
        for (int k = 0; k < nw; k++) {
            if (th_proc_wait(&w[k], 0) == 0) {
                th_proc_dump_log(&w[k], 40);
                fprintf(stderr, "bench_grievance: sy-grievance exited with %d\n", w[k].exit_status);
                for (int j = 0; j < nw; j++)
                    th_proc_cleanup(&w[j]);
                return;
            }
            long long s = in_pg < n ? stored(port[k]) : n;
            m = m < 0 || s < 0 ? -1 : m + s;
        }
        double at = th_mono_s() - t0;
        if (in_pg < n && (m < 0 || m >= n) && (in_pg = pg_count(b, r)) >= n)
            out->pg_s = at;
        /* The GRM copy commits before the PostgreSQL transaction that holds it. */
        if (grm && in_grm < n && in_pg >= n && (in_grm = grm_count(b, r)) >= n)
            out->both_s = at;
        now = th_mono_s();
    }
    if (!grm)
        out->both_s = out->pg_s;
    out->cpu_s = 0;
    out->peak_kb = 0;
    for (int k = 0; k < nw; k++) {
        out->cpu_s += th_cpu_s(w[k].pid);
        out->peak_kb += th_status_kb(w[k].pid, "VmHWM");
    }
    if (in_pg < n || (grm && in_grm < n)) {
        fprintf(stderr,
                "bench_grievance: after %.0f s %lld of %ld grievances in PostgreSQL, %lld in the "
                "GRM\n",
                now - t0, in_pg, n, in_grm);
        for (int k = 0; k < nw; k++) {
            th_proc_dump_log(&w[k], 40);
            th_proc_cleanup(&w[k]);
        }
        return;
    }
    /* Rows are committed before their messages are acked: let the acks land, then stop. */
    for (int i = 0; i < 100 && th_queue_depth(b->a, b->queue) > 0; i++)
        th_sleep_ms(POLL_MS);
    int warnings = 0;
    for (int k = 0; k < nw; k++) {
        th_proc_signal(&w[k], SIGTERM);
        if (th_proc_wait(&w[k], 30000) != 0)
            th_proc_cleanup(&w[k]);
        warnings +=
            th_log_count(&w[k], "\"level\":\"warn\"") + th_log_count(&w[k], "\"level\":\"error\"");
    }

    char mids[64], gids[64];
    snprintf(mids, sizeof mids, "bm-%s-%d-%%", b->run, r);
    snprintf(gids, sizeof gids, "bg-%s-%d-%%", b->run, r);
    const char *pm[] = {mids}, *pg[] = {gids};
    long long tasks = pg_num(b, "SELECT count(*) FROM tasks WHERE task_id LIKE $1", 1, pm);
    long long done =
        pg_num(b, "SELECT count(*) FROM tasks WHERE task_id LIKE $1 AND status = 'done'", 1, pm);
    long long pushed = pg_num(
        b, "SELECT count(*) FROM grm_sync WHERE grievance_id LIKE $1 AND NOT pending", 1, pg);
    long long pending =
        pg_num(b, "SELECT count(*) FROM grm_sync WHERE grievance_id LIKE $1 AND pending", 1, pg);
    long long history =
        pg_num(b, "SELECT count(*) FROM status_history WHERE grievance_id LIKE $1", 1, pg);
    uint32_t dead = th_queue_depth(b->a, b->dead), left = th_queue_depth(b->a, b->queue);
    printf("          check: tasks %lld/%lld done, grm_sync %lld pushed %lld pending, "
           "status_history %lld, dead letters %u, left in queue %u, log warnings %d\n",
           done, tasks, pushed, pending, history, dead, left, warnings);
    out->ok = tasks == n && done == n && history == n && dead == 0 && left == 0 &&
              (grm ? pushed == n && pending == 0 : pending == n);
    for (int k = 0; k < nw && (!out->ok || warnings > 0); k++)
        th_proc_dump_log(&w[k], 20);
}

/* --- the run ------------------------------------------------------------------------------- */

static void cleanup(struct bench *b)
{
    char like[64], phones[32];
    snprintf(like, sizeof like, "bg-%s-%%", b->run);
    const char *g[] = {like};
    const char *const sqls[] = {
        "DELETE FROM status_history WHERE grievance_id LIKE $1",
        "DELETE FROM file_attachments WHERE grievance_id LIKE $1",
        "DELETE FROM grm_sync WHERE grievance_id LIKE $1",
        "DELETE FROM sync_history WHERE grievance_id LIKE $1",
        "DELETE FROM grievances WHERE grievance_id LIKE $1",
    };
    for (size_t i = 0; i < sizeof sqls / sizeof sqls[0]; i++)
        if (sy_pg_exec(b->pg, sqls[i], 1, g, NULL) != 0)
            fprintf(stderr, "bench_grievance: %s: %s\n", sqls[i], sy_pg_error(b->pg));
    char mlike[64];
    snprintf(mlike, sizeof mlike, "bm-%s-%%", b->run);
    const char *m[] = {mlike};
    if (sy_pg_exec(b->pg, "DELETE FROM tasks WHERE task_id LIKE $1", 1, m, NULL) != 0)
        fprintf(stderr, "bench_grievance: tasks: %s\n", sy_pg_error(b->pg));
    snprintf(phones, sizeof phones, "+4%s%%", b->phone_base);
    const char *p[] = {phones};
    if (sy_pg_exec(b->pg, "DELETE FROM users WHERE phone_number LIKE $1", 1, p, NULL) != 0)
        fprintf(stderr, "bench_grievance: users: %s\n", sy_pg_error(b->pg));
    char sql[160];
    snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", b->qtable);
    if (sy_mysql_exec(b->my, sql, 0, NULL, NULL) != 0)
        fprintf(stderr, "bench_grievance: %s: %s\n", sql, sy_mysql_error(b->my));
    th_purge_worker(b->a, b->topo, WORKER);
    th_rm_tree(b->dir);
}

int main(void)
{
    const char *url = th_need_env("SY_AMQP_URL");
    const char *pg_url = th_need_env("SY_PG_URL");
    const char *my_url = th_need_env("SY_GRM_MYSQL_URL");
    const char *bin = th_need_env("SY_GRIEVANCE_BIN");
    const char *src = th_need_env("SY_SOURCE_DIR");
    const char *build = th_need_env("SY_BUILD_DIR");
    long n = getenv("SY_BENCH_N") ? atol(getenv("SY_BENCH_N")) : 100000;
    const char *rounds = getenv("SY_BENCH_ROUNDS") ? getenv("SY_BENCH_ROUNDS") : "B4F1PB";
    if (n < 1 || n > 1000000)
        die("SY_BENCH_N", "not a count from 1 to 1000000");
    if (strlen(rounds) > ROUNDS_MAX || strspn(rounds, "B41PFDQ") != strlen(rounds))
        die("SY_BENCH_ROUNDS", "at most 10 of B (baseline), 4, 1 (threads), P (PG only), F "
                               "(prefetch 1000), D, Q (2 and 4 replicas)");

    struct bench *b = calloc(1, sizeof *b);
    char path[1200], err[512];
    if (!b)
        die("bench", "out of memory");
    th_run_id(b->run);
    snprintf(b->phone_base, sizeof b->phone_base, "%06llu",
             strtoull(b->run + 8, NULL, 16) % 1000000ULL);
    snprintf(b->actor, sizeof b->actor, "apikey:bench-%s", b->run);

    b->a = th_fleet_amqp(WORKER, "bench-grievance", &b->topo, b->queue, b->dead);

    /* The worker applies no migrations. */
    if (!(b->pg = sy_pg_connect(pg_url, err, sizeof err)))
        die("postgresql", err);
    snprintf(path, sizeof path, "%s/schemas/sql/postgres", src);
    if (sy_pg_migrate(b->pg, path, NULL, NULL, err, sizeof err) != 0)
        die("migrate", err);
    if (!(b->my = sy_mysql_connect(my_url, err, sizeof err)))
        die("mariadb", err);
    snprintf(b->table, sizeof b->table, "grm_%s", b->run);
    if (sy_mysql_quote_ident(b->table, b->qtable, sizeof b->qtable) != 0)
        die("table name", b->table);
    char *ddl = grm_ddl(b, src);
    if (sy_mysql_exec(b->my, ddl, 0, NULL, NULL) != 0)
        die("GRM table", sy_mysql_error(b->my));
    free(ddl);

    snprintf(b->dir, sizeof b->dir, "%s/Testing", build);
    mkdir(b->dir, 0755);
    snprintf(b->dir, sizeof b->dir, "%s/Testing/grievance-bench-%s", build, b->run);
    if (mkdir(b->dir, 0755) != 0)
        die(b->dir, strerror(errno));
    snprintf(b->files, sizeof b->files, "%s/files", b->dir);
    snprintf(b->map, sizeof b->map, "%s/grm.yaml", b->dir);
    if (mkdir(b->files, 0755) != 0)
        die(b->files, strerror(errno));
    write_map(b);

    size_t len = 0;
    free(envelope(b, 0, 0, &len));
    printf("messages  %ld grievance.submitted of ~%zu bytes each, pre-filled; rounds %s\n", n, len,
           rounds);
    fflush(stdout);

    /* Baseline and worker rounds alternate (B 4 F 1 P B by default): the broker's state drifts
     * over a run, and a baseline at each end averages it out. */
    struct round res[ROUNDS_MAX];
    int nres = 0, nbare = 0;
    double bare_s = 0;
    bool all_ok = true;
    for (int r = 0; rounds[r]; r++) {
        prefill(b, r, n);
        if (rounds[r] == 'B') {
            double cpu, t = th_bare_drain(url, b->queue, n, &cpu);
            printf("baseline  bare librabbitmq consumer: %ld msgs in %.3f s = %.0f msg/s\n", n, t,
                   n / t);
            fflush(stdout);
            bare_s += t;
            nbare++;
            continue;
        }
        struct round *o = &res[nres++];
        o->kind = rounds[r];
        run_worker(b, bin, r, n, o);
        all_ok = all_ok && o->ok;
        const char *what = kind_name(o->kind);
        if (o->pg_s > 0 && o->both_s > 0)
            printf("grievance sy-grievance %-20s: %ld in PostgreSQL in %.2f s = %.0f/s, in both "
                   "in %.2f s = %.0f/s; CPU %.1f s (%.0f us per grievance), peak RSS %.1f MB%s\n",
                   what, n, o->pg_s, n / o->pg_s, o->both_s, n / o->both_s, o->cpu_s,
                   o->cpu_s * 1e6 / (double)n, o->peak_kb / 1024.0,
                   o->ok ? "" : " [VERIFY FAILED]");
        else
            printf("grievance sy-grievance %-20s: did not finish\n", what);
        fflush(stdout);
        th_purge_worker(b->a, b->topo, WORKER);
    }
    double bare = nbare ? n * nbare / bare_s : 0;
    for (int i = 0; i < nres && bare > 0; i++)
        if (res[i].both_s > 0)
            printf("ratio     grievances/s / bare drain rate (%.0f msg/s), %s: %.3f\n", bare,
                   kind_name(res[i].kind), n / res[i].both_s / bare);
    for (int i = 0; i < nres; i++)
        if (res[i].kind == '4' && res[i].both_s > 0)
            printf("target    >= %.0f grievances/s in both databases (4 threads): %.0f/s, %s\n",
                   TARGET, n / res[i].both_s, n / res[i].both_s >= TARGET ? "met" : "not met");

    cleanup(b);
    sy_mysql_destroy(b->my);
    sy_pg_destroy(b->pg);
    sy_amqp_destroy(b->a);
    sy_topology_destroy(b->topo);
    free(b);
    return all_ok ? 0 : 1;
}
