/* bench_ingest.c - how many documents per second sy-ingest takes from the stack's Dovecot
 * (SY_IMAP_URL): small mails, each with one small attachment of its own, against a bare IMAP
 * client fetching the same messages from the same server in the same run:
 *   B. SY_BENCH_N messages fetched whole (;UID=n) by 4 threads, each with one kept-alive
 *      connection: what the IMAP server hands out at best;
 *   1. one sy-ingest (4 handler threads) started and ready, then one ingest.poll.email; the
 *      clock runs until PostgreSQL records every message as expanded. Then every message must
 *      have made exactly one stored document (language and department included) and nothing may
 *      be dead-lettered.
 * Each round has a mailbox and a source of its own with mails of its own (N appended before the
 * round; SY_BENCH_N, default 1000); rounds: SY_BENCH_ROUNDS (default "B1B"). The run removes
 * its mailboxes, rows and files at the end. Exits 0 when it ran and every round verified, 1
 * otherwise (77: a service it needs is not configured). */
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bare_consumer.h"
#include "harness.h"
#include "http.h"
#include "sy/amqp.h"
#include "sy/crypto.h"
#include "sy/err.h"
#include "sy/pg.h"
#include "sy/topology.h"

#define WORKER       "ingest"
#define BARE_THREADS 4
#define ROUNDS_MAX   8
#define START_MAX_MS 20000
#define ROUND_MAX_MS (30 * 60 * 1000)
#define POLL_MS      100
#define ATTACHMENT   2048 /* bytes of each mail's attachment */

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_ingest: %s: %s\n", what, why);
    exit(1);
}

struct bench {
    char run[17];
    char base[256]; /* imap://host:port/ */
    const char *user, *password, *bin;
    long n;
    struct sy_amqp *a;
    struct sy_topology *topo;
    struct sy_pg *pg;
    char queue[256], dead[256];
    char dir[1200];
};

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    size_t *bytes = ud;

    (void)p;
    if (bytes)
        *bytes += size * n;
    return size * n;
}

static CURL *imap_handle(const struct bench *b)
{
    CURL *c = curl_easy_init();

    if (!c)
        die("curl", "cannot start");
    curl_easy_setopt(c, CURLOPT_USERNAME, b->user);
    curl_easy_setopt(c, CURLOPT_PASSWORD, b->password);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    return c;
}

static void imap_do(CURL *c, const struct bench *b, const char *path, const char *command,
                    const char *upload, size_t *bytes)
{
    char url[512];
    FILE *in = NULL;
    CURLcode cc;

    snprintf(url, sizeof url, "%s%s", b->base, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, command);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, bytes);
    curl_easy_setopt(c, CURLOPT_UPLOAD, upload ? 1L : 0L);
    if (upload) {
        in = fmemopen((void *)upload, strlen(upload), "r");
        curl_easy_setopt(c, CURLOPT_READDATA, in);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)strlen(upload));
    }
    cc = curl_easy_perform(c);
    if (in)
        fclose(in);
    if (cc != CURLE_OK)
        die(url, curl_easy_strerror(cc));
}

/* A mailbox of the round's own with n small mails, each with an attachment of unique bytes. */
static void fill(const struct bench *b, const char *mailbox, int r)
{
    CURL *c = imap_handle(b);
    char cmd[96], *mail = malloc(16384), blob[ATTACHMENT + 1], *b64;

    if (!mail || !(b64 = malloc(sy_base64_encoded_len(ATTACHMENT) + 1)))
        die("fill", "out of memory");
    snprintf(cmd, sizeof cmd, "CREATE %s", mailbox);
    imap_do(c, b, "", cmd, NULL, NULL);
    for (long i = 0; i < b->n; i++) {
        int k = snprintf(blob, sizeof blob, "%%PDF-1.4\n%% %s round %d mail %ld\n", b->run, r, i);

        for (int j = k; j < ATTACHMENT; j++)
            blob[j] = (char)('a' + (i + j) % 26);
        sy_base64_encode(blob, ATTACHMENT, false, b64);
        snprintf(mail, 16384,
                 "From: Depot <depot@example.org>\r\nTo: ingest@example.org\r\n"
                 "Subject: Track inspection report %ld\r\nMessage-ID: <b%ld-%d-%s@example.org>\r\n"
                 "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"q\"\r\n\r\n"
                 "--q\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n"
                 "The maintenance team finished the inspection of the viaduct.\r\n"
                 "--q\r\nContent-Type: application/pdf\r\n"
                 "Content-Disposition: attachment; filename=\"report-%ld.pdf\"\r\n"
                 "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--q--\r\n",
                 i, i, r, b->run, i, b64);
        imap_do(c, b, mailbox, NULL, mail, NULL);
    }
    curl_easy_cleanup(c);
    free(mail);
    free(b64);
}

static void drop(const struct bench *b, const char *mailbox)
{
    CURL *c = imap_handle(b);
    char cmd[96];

    snprintf(cmd, sizeof cmd, "DELETE %s", mailbox);
    imap_do(c, b, "", cmd, NULL, NULL);
    curl_easy_cleanup(c);
}

/* --- the bare client ------------------------------------------------------------------------- */

struct bare {
    const struct bench *b;
    const char *mailbox;
    long first;
    size_t bytes;
};

static void *bare_thread(void *arg)
{
    struct bare *t = arg;
    CURL *c = imap_handle(t->b);
    char path[128];

    for (long uid = t->first; uid <= t->b->n; uid += BARE_THREADS) {
        snprintf(path, sizeof path, "%s/;UID=%ld", t->mailbox, uid);
        imap_do(c, t->b, path, NULL, NULL, &t->bytes);
    }
    curl_easy_cleanup(c);
    return NULL;
}

static double run_bare(const struct bench *b, const char *mailbox, size_t *bytes)
{
    struct bare t[BARE_THREADS];
    pthread_t th[BARE_THREADS];
    double t0 = th_mono_s();

    *bytes = 0;
    for (int i = 0; i < BARE_THREADS; i++) {
        t[i] = (struct bare){.b = b, .mailbox = mailbox, .first = i + 1};
        if (pthread_create(&th[i], NULL, bare_thread, &t[i]) != 0)
            die("bare client", "cannot start a thread");
    }
    for (int i = 0; i < BARE_THREADS; i++) {
        pthread_join(th[i], NULL);
        *bytes += t[i].bytes;
    }
    return th_mono_s() - t0;
}

/* --- sy-ingest ------------------------------------------------------------------------------- */

static long long count(struct bench *b, const char *sql, const char *source)
{
    struct sy_pg_res *res = NULL;
    long long n;

    if (sy_pg_exec(b->pg, sql, 1, &source, &res) != 0)
        die("counting", sy_pg_error(b->pg));
    n = atoll(sy_pg_res_get(res, 0, 0));
    sy_pg_res_free(res);
    return n;
}

static bool run_worker(struct bench *b, const char *mailbox, const char *name, double *secs,
                       double *cpu)
{
    char conf[1300], yaml[1024], addr[64], sources[1400], files[1400], source[96];
    struct th_proc p;
    int port = th_free_port();

    snprintf(source, sizeof source, "email:%s", name);
    snprintf(conf, sizeof conf, "%s/%s.yaml", b->dir, name);
    snprintf(yaml, sizeof yaml,
             "limits:\n  max_bytes: 1048576\n"
             "email:\n  %s:\n    url: %s%s\n    user: ${SY_IMAP_USER}\n"
             "    password_env: SY_IMAP_PASSWORD\n    allow_plain: true\n    batch: 10000\n",
             name, b->base, mailbox);
    if (th_write_file(conf, yaml) != 0)
        die(conf, "cannot write");
    snprintf(addr, sizeof addr, "SY_HTTP_ADDR=127.0.0.1:%d", port);
    snprintf(sources, sizeof sources, "SY_INGEST_SOURCES=%s", conf);
    snprintf(files, sizeof files, "SY_FILES_ROOT=%s/files", b->dir);
    const char *env[] = {addr, sources, files, "SY_LOG_LEVEL=warn", NULL};
    if (th_proc_spawn(&p, b->bin, env) != 0)
        die("sy-ingest", "cannot start");
    for (int64_t end = th_now_ms() + START_MAX_MS;;) {
        struct th_reply rep = th_http(port, "GET", "/readyz", NULL, NULL);
        long st = rep.status;

        th_reply_free(&rep);
        if (st == 200)
            break;
        if (th_proc_wait(&p, 0) == 0 || th_now_ms() > end) {
            th_proc_dump_log(&p, 30);
            die("sy-ingest", "not ready");
        }
        th_sleep_ms(50);
    }
    double t0 = th_mono_s();
    if (th_publish_body(b->a, b->topo->exchange, "ingest.poll.email", NULL, "\x80", 1, NULL) != 0 ||
        sy_amqp_wait_confirms(b->a, 10000) != 0)
        die("publishing the poll", sy_amqp_error(b->a));
    long long done = 0;
    for (int64_t end = th_now_ms() + ROUND_MAX_MS; th_now_ms() < end; th_sleep_ms(POLL_MS))
        if ((done = count(b,
                          "SELECT count(*) FROM document_items WHERE source = $1"
                          " AND status = 'expanded'",
                          source)) >= b->n)
            break;
    *secs = th_mono_s() - t0;
    *cpu = th_cpu_s(p.pid);
    long long stored = count(b,
                             "SELECT count(*) FROM documents WHERE source = $1"
                             " AND language = 'en' AND department = 'Engineering'",
                             source);
    uint32_t dead = th_queue_depth(b->a, b->dead);
    th_proc_signal(&p, SIGTERM);
    if (th_proc_wait(&p, 30000) != 0)
        th_proc_cleanup(&p);
    printf("          check: %lld of %ld messages expanded, %lld documents (en, Engineering), "
           "dead letters %u, exit %d\n",
           done, b->n, stored, dead, p.exit_status);
    return done == b->n && stored == b->n && dead == 0 && p.exit_status == 0;
}

static void cleanup(struct bench *b)
{
    char like[64], fences[80], cmd[1400];
    const char *p[1] = {like}, *f[1] = {fences};

    snprintf(like, sizeof like, "email:bench%s%%", b->run);
    snprintf(fences, sizeof fences, "ingest:email:bench%s%%", b->run);
    sy_pg_exec(b->pg, "DELETE FROM document_items WHERE source LIKE $1", 1, p, NULL);
    sy_pg_exec(b->pg, "DELETE FROM documents WHERE source LIKE $1", 1, p, NULL);
    sy_pg_exec(b->pg, "DELETE FROM ingest_sources WHERE source LIKE $1", 1, p, NULL);
    sy_pg_exec(b->pg, "DELETE FROM sy_fences WHERE resource LIKE $1", 1, f, NULL);
    th_purge_worker(b->a, b->topo, WORKER);
    th_purge_worker(b->a, b->topo, "knowledge");
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", b->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_ingest: could not remove %s\n", b->dir);
}

int main(void)
{
    struct bench *b = calloc(1, sizeof *b);
    const char *url = th_need_env("SY_IMAP_URL");
    const char *rounds = getenv("SY_BENCH_ROUNDS") ? getenv("SY_BENCH_ROUNDS") : "B1B";
    const char *slash;
    char err[512], path[1200];

    if (!b)
        die("bench", "out of memory");
    b->user = th_need_env("SY_IMAP_USER");
    b->password = th_need_env("SY_IMAP_PASSWORD");
    b->bin = th_need_env("SY_INGEST_BIN");
    th_need_env("SY_REDIS_URL");
    b->n = getenv("SY_BENCH_N") ? atol(getenv("SY_BENCH_N")) : 1000;
    if (b->n < 1 || b->n > 100000)
        die("SY_BENCH_N", "not a count from 1 to 100000");
    if (strlen(rounds) > ROUNDS_MAX || strspn(rounds, "B1") != strlen(rounds))
        die("SY_BENCH_ROUNDS", "at most 8 of B (bare IMAP client) and 1 (one sy-ingest)");
    if (!(slash = strchr(url + 7, '/')))
        die("SY_IMAP_URL", "expected imap://host:port/MAILBOX");
    snprintf(b->base, sizeof b->base, "%.*s", (int)(slash + 1 - url), url);
    th_run_id(b->run);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    b->a = th_fleet_amqp(WORKER, "bench-ingest", &b->topo, b->queue, b->dead);
    if (sy_amqp_declare(b->a, b->topo, "knowledge") != 0)
        die("amqp declare", sy_amqp_error(b->a));
    uint32_t queued = 0, consumers = 0;
    if (sy_amqp_queue_info(b->a, b->queue, &queued, &consumers) != 0 || consumers > 0)
        die(b->queue, "another consumer takes from it (a fleet of workers is running here: "
                      "./fleet down, then ./fleet bench)");
    if (!(b->pg = sy_pg_connect(th_need_env("SY_PG_URL"), err, sizeof err)))
        die("postgresql", err);
    snprintf(path, sizeof path, "%s/schemas/sql/postgres", th_need_env("SY_SOURCE_DIR"));
    if (sy_pg_migrate(b->pg, path, NULL, NULL, err, sizeof err) != 0)
        die("migrate", err);
    snprintf(b->dir, sizeof b->dir, "%s/Testing", th_need_env("SY_BUILD_DIR"));
    mkdir(b->dir, 0755);
    snprintf(b->dir, sizeof b->dir, "%s/Testing/ingest-bench-%s", th_need_env("SY_BUILD_DIR"),
             b->run);
    if (mkdir(b->dir, 0755) != 0)
        die(b->dir, "cannot create");

    printf("messages  %ld a round, each with one %d-byte attachment; rounds %s\n", b->n, ATTACHMENT,
           rounds);
    fflush(stdout);
    double bare_s = 0, best = 0;
    int nbare = 0;
    bool ok = true;
    for (int r = 0; rounds[r]; r++) {
        char mailbox[64], name[64];

        snprintf(name, sizeof name, "bench%s%d", b->run, r);
        snprintf(mailbox, sizeof mailbox, "%s", name);
        fill(b, mailbox, r);
        if (rounds[r] == 'B') {
            size_t bytes;
            double t = run_bare(b, mailbox, &bytes);

            printf("baseline  bare IMAP client, %d threads: %ld messages (%zu bytes) in %.2f s = "
                   "%.0f messages/s\n",
                   BARE_THREADS, b->n, bytes, t, b->n / t);
            bare_s += t;
            nbare++;
        } else {
            double secs, cpu;
            bool good = run_worker(b, mailbox, name, &secs, &cpu);

            printf("ingest    sy-ingest x1: %ld documents in %.2f s = %.0f documents/s; CPU %.2f s "
                   "(%.0f us per document)%s\n",
                   b->n, secs, b->n / secs, cpu, cpu * 1e6 / (double)b->n,
                   good ? "" : " [VERIFY FAILED]");
            ok = ok && good;
            if (b->n / secs > best)
                best = b->n / secs;
        }
        fflush(stdout);
        drop(b, mailbox);
    }
    if (nbare && best > 0)
        printf("ratio     sy-ingest documents/s / bare IMAP messages/s (%.0f/s): %.3f\n",
               b->n * nbare / bare_s, best / (b->n * nbare / bare_s));
    cleanup(b);
    sy_pg_destroy(b->pg);
    sy_amqp_destroy(b->a);
    sy_topology_destroy(b->topo);
    curl_global_cleanup();
    free(b);
    return ok ? 0 : 1;
}
