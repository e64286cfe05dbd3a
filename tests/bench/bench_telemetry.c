/* bench_telemetry.c - how many plant readings per second sy-telemetry takes from Mosquitto
 * (SY_MQTT_URL) into PostgreSQL, against a bare paho subscriber fed the same way in the same run,
 * and whether a worker killed while readings pour in loses any:
 *   B. a persistent session ($share/<group>/<root>/#, QoS 1) made for a fresh client id, N
 *      messages published while it is away, then a bare MQTTAsync client resumes it and only
 *      counts (returning from the callback at once): the clock runs from its connect to the last
 *      message. What Mosquitto hands one QoS 1 consumer on this machine.
 *   1. the same pre-fill into the session of the client id sy-telemetry is given, then the worker
 *      starts; the clock runs until PostgreSQL holds every reading of the round (counted every
 *      100 ms). Then every reading must be there exactly once and the worker's spool empty.
 *   K. sy-telemetry runs while N readings (N / 4 messages) are published; it is SIGKILLed at 5
 *      random moments of the publishing and restarted at once with the same client id and spool.
 *      Once the count settles: lost = published readings - rows. The target is 0.
 * A message is one line's four metrics, {"ts": ms, "rate", "efficiency", "temperature",
 * "power"} inside deploy/config/telemetry.yaml's ranges for a line, on
 * <root>/<plant>/line/<device> over 500 devices; the ts of a device's messages rise 100 ms apart,
 * so each reading has its own primary key (plant, device, metric, ts). Every round has a plant of
 * its own. The worker reads the fleet's telemetry.yaml with the run's own shared subscription group
 * and, in place of "plants", the run's own root level: a sy-telemetry of the stack (or the
 * persistent session of a stopped one) sees none of the bench's messages, so it can neither store
 * them behind the bench's back nor make up for readings the bench's worker lost. SY_BENCH_N
 * messages (default 200000), SY_BENCH_ROUNDS (default "B1B"; B, 1 and K). The run deletes its
 * rows, Redis keys, sessions and files at the end. Exits 0 when it ran and every round verified,
 * 1 otherwise (a reading lost included), 77 when a service or the worker it needs is missing. */
#include <MQTTAsync.h>
#include <dirent.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bare_consumer.h"
#include "harness.h"
#include "http.h"
#include "mqtt.h"
#include "sy/pg.h"

#define DEVICES      500
#define METRICS      4   /* readings in one message */
#define WINDOW       200 /* QoS 1 publishes in flight: paho is fastest at a few hundred */
#define EXPIRY_S     3600
#define POLL_MS      100
#define ROUND_MAX_MS (30 * 60 * 1000)
#define SETTLE_MS    30000 /* K: a count unchanged this long has settled */
#define KILLS        5
#define ROUNDS_MAX   8
#define TS_STEP_MS   100
#define SEG_MB       64 /* the worker's spool segments (its default) */
#define SEG_MB_K     2  /* K: small, so the spool moves to new segments and drops old ones */

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_telemetry: %s: %s\n", what, why);
    exit(1);
}

struct bench {
    char run[17];
    const char *url, *bin;
    long n;
    char group[32];
    char root[32]; /* the first topic level, "plants" in the fleet's */
    char dir[1100], yaml[1200];
    int64_t base_ms; /* the first ts of every device */
    struct sy_pg *pg;
    /* What the run made, to remove at the end. */
    char plants[ROUNDS_MAX][48];
    char clients[ROUNDS_MAX][64];
    int nrounds;
};

static void names_of(struct bench *b, int r)
{
    snprintf(b->plants[r], sizeof b->plants[r], "bench-%s-%d", b->run, r);
    snprintf(b->clients[r], sizeof b->clients[r], "bench-telemetry-%s-%d", b->run, r);
}

/* --- the messages --------------------------------------------------------------------------- */

/* Message i of a plant: device i % DEVICES, its (i / DEVICES)th message. Values wander inside the
 * ranges the bench's telemetry.yaml gives a line. */
static size_t message(const struct bench *b, const char *plant, long i, char *topic, size_t tlen,
                      char *body, size_t blen)
{
    long d = i % DEVICES, k = i / DEVICES;
    uint32_t h = (uint32_t)(i * 2654435761u);
    snprintf(topic, tlen, "%s/%s/line/line-%03ld", b->root, plant, d);
    int len =
        snprintf(body, blen,
                 "{\"ts\": %lld, \"rate\": %.1f, \"efficiency\": %.1f, "
                 "\"temperature\": %.1f, \"power\": %.1f}",
                 (long long)(b->base_ms + k * TS_STEP_MS), 180.0 + (h % 2400) / 10.0,
                 70.0 + (h % 290) / 10.0, 820.0 + (h % 5000) / 10.0, 3100.0 + (h % 9000) / 10.0);
    return (size_t)len;
}

/* Publishes messages [from, to) of a plant; after each, tick(ud, i) when given. Returns the
 * seconds it took (flush included). */
static double publish(const struct bench *b, const char *plant, const char *client_id, long from,
                      long to, void (*tick)(void *ud, long i), void *ud)
{
    char topic[160], body[256], pid[96];
    snprintf(pid, sizeof pid, "%s-pub", client_id);
    struct th_mqtt_pub *p = th_mqtt_pub_new(b->url, pid, WINDOW);
    if (!p)
        die("publisher", "cannot connect");
    double t0 = th_mono_s();
    for (long i = from; i < to; i++) {
        size_t len = message(b, plant, i, topic, sizeof topic, body, sizeof body);
        if (th_mqtt_pub_send(p, topic, body, len, 1) != 0)
            die("publish", "a message was not taken");
        if (tick)
            tick(ud, i);
    }
    if (th_mqtt_pub_flush(p, 120000) != 0)
        die("publish", "not every message was acknowledged");
    double s = th_mono_s() - t0;
    th_mqtt_pub_free(p);
    printf("publish   %ld QoS 1 messages in %.2f s = %.0f msg/s (window %d)\n", to - from, s,
           (to - from) / s, WINDOW);
    fflush(stdout);
    return s;
}

/* The bytes of topics and payloads of messages [from, to) of a plant. */
static long long content_bytes(const struct bench *b, const char *plant, long from, long to)
{
    char topic[160], body[256];
    long long total = 0;
    for (long i = from; i < to; i++) {
        size_t len = message(b, plant, i, topic, sizeof topic, body, sizeof body);
        total += (long long)(strlen(topic) + len);
    }
    return total;
}

/* --- the bare subscriber -------------------------------------------------------------------- */

struct bare {
    char prefix[96]; /* "<root>/<plant>/": messages of others are not counted */
    size_t plen;
    long want;
    atomic_long got;
    double end;
    bool lost;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static int bare_arrived(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
    struct bare *c = ctx;
    size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    if (tlen > c->plen && memcmp(topic, c->prefix, c->plen) == 0 &&
        atomic_fetch_add(&c->got, 1) + 1 == c->want) {
        pthread_mutex_lock(&c->mu);
        c->end = th_mono_s();
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void bare_lost(void *ctx, char *cause)
{
    struct bare *c = ctx;
    fprintf(stderr, "bench_telemetry: bare subscriber lost its connection: %s\n",
            cause ? cause : "?");
    pthread_mutex_lock(&c->mu);
    c->lost = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    MQTTAsync_free(cause);
}

static void bare_connect_failed(void *ctx, MQTTAsync_failureData5 *f)
{
    fprintf(stderr, "bench_telemetry: bare subscriber cannot connect: %s\n",
            f && f->message ? f->message : MQTTAsync_strerror(f ? f->code : -1));
    bare_lost(ctx, NULL);
}

/* Resumes client_id's session and counts the plant's messages until n arrived. The seconds from
 * connecting to the last; *cpu the CPU seconds this process spent meanwhile; -1 on failure. */
static double bare_drain(const struct bench *b, const char *client_id, const char *plant, long n,
                         double *cpu)
{
    MQTTAsync c = NULL;
    MQTTAsync_createOptions cr = MQTTAsync_createOptions_initializer5;
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer5;
    MQTTProperties props = MQTTProperties_initializer;
    MQTTProperty expiry = {.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL};
    struct bare ctx = {.want = n};
    double secs = -1;

    snprintf(ctx.prefix, sizeof ctx.prefix, "%s/%s/", b->root, plant);
    ctx.plen = strlen(ctx.prefix);
    pthread_mutex_init(&ctx.mu, NULL);
    pthread_cond_init(&ctx.cv, NULL);
    expiry.value.integer4 = EXPIRY_S;
    MQTTProperties_add(&props, &expiry);
    if (MQTTAsync_createWithOptions(&c, b->url, client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL,
                                    &cr) != MQTTASYNC_SUCCESS ||
        MQTTAsync_setCallbacks(c, &ctx, bare_lost, bare_arrived, NULL) != MQTTASYNC_SUCCESS)
        die("bare subscriber", "cannot create the client");
    co.cleanstart = 0;
    co.connectProperties = &props;
    co.onFailure5 = bare_connect_failed;
    co.context = &ctx;
    double cpu0 = th_cpu_s(getpid()), t0 = th_mono_s();
    if (MQTTAsync_connect(c, &co) != MQTTASYNC_SUCCESS)
        die("bare subscriber", "cannot connect");
    pthread_mutex_lock(&ctx.mu);
    while (ctx.end == 0 && !ctx.lost && th_mono_s() - t0 < ROUND_MAX_MS / 1000.0) {
        pthread_mutex_unlock(&ctx.mu);
        th_sleep_ms(20);
        pthread_mutex_lock(&ctx.mu);
    }
    if (ctx.end > 0)
        secs = ctx.end - t0;
    pthread_mutex_unlock(&ctx.mu);
    *cpu = th_cpu_s(getpid()) - cpu0;
    if (secs < 0)
        fprintf(stderr, "bench_telemetry: bare subscriber got %ld of %ld messages\n",
                atomic_load(&ctx.got), n);
    MQTTAsync_disconnectOptions dopt = MQTTAsync_disconnectOptions_initializer5;
    dopt.timeout = 5000;
    MQTTAsync_disconnect(c, &dopt);
    th_sleep_ms(100);
    MQTTAsync_destroy(&c);
    MQTTProperties_free(&props);
    /* Anything beyond n would be a message counted twice. */
    if (atomic_load(&ctx.got) != n) {
        fprintf(stderr, "bench_telemetry: bare subscriber counted %ld messages, not %ld\n",
                atomic_load(&ctx.got), n);
        secs = -1;
    }
    pthread_mutex_destroy(&ctx.mu);
    pthread_cond_destroy(&ctx.cv);
    return secs;
}

/* --- sy-telemetry --------------------------------------------------------------------------- */

/* The fleet's telemetry.yaml (kinds, ranges and alerts as deployed) with a shared subscription
 * group of this run's own in place of the fleet's, and the run's root level in place of
 * "plants": a sy-telemetry of the stack, or a stopped one's session, then takes none of the
 * bench's messages (it would store them, or fill in what the bench's worker lost). */
static void write_config(struct bench *b, const char *src)
{
    char path[1200], line[1024];
    bool replaced = false;
    snprintf(path, sizeof path, "%s/deploy/config/telemetry.yaml", src);
    FILE *in = fopen(path, "r"), *out = fopen(b->yaml, "w");
    if (!in || !out)
        die(in ? b->yaml : path, strerror(errno));
    fprintf(out, "# bench_telemetry: %s with the group and root level of the run.\n", path);
    while (fgets(line, sizeof line, in)) {
        if (!replaced && strncmp(line, "  group:", 8) == 0) {
            fprintf(out, "  group: %s\n", b->group);
            replaced = true;
            continue;
        }
        const char *at = line;
        for (const char *hit; (hit = strstr(at, "plants/")); at = hit + strlen("plants/")) {
            fwrite(at, 1, (size_t)(hit - at), out);
            fprintf(out, "%s/", b->root);
        }
        fputs(at, out);
    }
    fclose(in);
    if (fclose(out) != 0 || !replaced)
        die(b->yaml, replaced ? strerror(errno) : "no mqtt group line to replace");
}

/* One number from PostgreSQL; -1 on failure (printed). */
static long long pg_num(struct bench *b, const char *sql, const char *plant)
{
    struct sy_pg_res *res = NULL;
    long long v = -1;
    const char *params[] = {plant};
    if (sy_pg_exec(b->pg, sql, 1, params, &res) != 0)
        fprintf(stderr, "bench_telemetry: %s: %s\n", sql, sy_pg_error(b->pg));
    else if (sy_pg_res_rows(res) == 1 && sy_pg_res_get(res, 0, 0))
        v = strtoll(sy_pg_res_get(res, 0, 0), NULL, 10);
    sy_pg_res_free(res);
    return v;
}

static long long rows(struct bench *b, const char *plant)
{
    return pg_num(b, "SELECT count(*) FROM telemetry_readings WHERE plant = $1", plant);
}

/* A running sy-telemetry with its client id and spool. */
struct worker {
    struct th_proc p;
    int port;
    char addr[64], client[128], config[1300], spool[1300], spool_dir[1200], seg[64];
    int seg_mb;
    int starts;
};

/* Readings the worker reports stored (committed): what the clock watches. Counting rows every
 * 100 ms instead would scan an index of up to a million entries each time, and PostgreSQL's
 * CPU would go to the benchmark rather than to the worker. The rows are counted at the end. */
static long long stored(const struct worker *w)
{
    return th_metric(w->port, "sy_telemetry_readings_total{outcome=\"stored\"}");
}

static void worker_start(const struct bench *b, struct worker *w)
{
    const char *env[] = {w->addr, w->client,           w->config, w->spool,
                         w->seg,  "SY_LOG_LEVEL=warn", NULL};
    w->port = th_free_port();
    snprintf(w->addr, sizeof w->addr, "SY_HTTP_ADDR=127.0.0.1:%d", w->port);
    if (th_proc_spawn(&w->p, b->bin, env) != 0)
        die(b->bin, "cannot start");
    w->starts++;
}

/* A worker of round r whose spool has segments of seg_mb MiB. */
static void worker_init(const struct bench *b, struct worker *w, int r, int seg_mb)
{
    memset(w, 0, sizeof *w);
    w->seg_mb = seg_mb;
    snprintf(w->seg, sizeof w->seg, "SY_TELEMETRY_SPOOL_SEGMENT_MB=%d", seg_mb);
    snprintf(w->client, sizeof w->client, "SY_TELEMETRY_CLIENT_ID=%s", b->clients[r]);
    snprintf(w->config, sizeof w->config, "SY_TELEMETRY_CONFIG=%s", b->yaml);
    snprintf(w->spool_dir, sizeof w->spool_dir, "%s/spool-%d", b->dir, r);
    if (mkdir(w->spool_dir, 0755) != 0)
        die(w->spool_dir, strerror(errno));
    snprintf(w->spool, sizeof w->spool, "SY_TELEMETRY_SPOOL_DIR=%s", w->spool_dir);
}

/* Stops the worker with SIGTERM (SIGKILL after 30 s); true when it exited 0. */
static bool worker_stop(struct worker *w)
{
    th_proc_signal(&w->p, SIGTERM);
    if (th_proc_wait(&w->p, 30000) != 0) {
        fprintf(stderr, "bench_telemetry: sy-telemetry did not stop in 30 s\n");
        th_proc_cleanup(&w->p);
        return false;
    }
    return w->p.exit_status == 0;
}

struct round {
    char kind;
    long msgs, readings;
    double secs, cpu_s;
    long peak_kb;
    long long lost, dups;
    bool ok;
};

/* Counts and checks what round r left in PostgreSQL: every reading of the plant once. *distinct
 * is the number of different (device, metric, ts), *dups the rows beyond those. */
static bool verify_rows(struct bench *b, int r, long readings, long long *distinct, long long *dups)
{
    const char *plant = b->plants[r];
    long long all = rows(b, plant);
    long long keys =
        pg_num(b,
               "SELECT count(*) FROM (SELECT DISTINCT device, metric, ts FROM telemetry_readings"
               " WHERE plant = $1) d",
               plant);
    long long devices =
        pg_num(b, "SELECT count(DISTINCT device) FROM telemetry_readings WHERE plant = $1", plant);
    long long metrics =
        pg_num(b, "SELECT count(DISTINCT metric) FROM telemetry_readings WHERE plant = $1", plant);
    long long rejects = pg_num(b, "SELECT count(*) FROM telemetry_rejects WHERE plant = $1", plant);
    long want_devices = readings / METRICS < DEVICES ? readings / METRICS : DEVICES;
    *distinct = keys;
    *dups = all - keys;
    printf("          check: %lld rows, %lld distinct (device, metric, ts), %lld devices, %lld "
           "metrics, %lld rejected; %ld readings published\n",
           all, keys, devices, metrics, rejects, readings);
    return all == readings && keys == readings && devices == want_devices && metrics == METRICS &&
           rejects == 0;
}

/* After the worker stopped: everything its spool took is stored. The worker records per client
 * id how far its spool (<spool dir>/<client id>/, named by spool.id) is in PostgreSQL and removes
 * the segments before that position, so a drained spool is one segment, the newest, holding the
 * recorded position, which lies past at least `content` bytes (the topics and payloads the spool
 * took). */
static bool verify_spool(struct bench *b, const struct worker *w, const char *client_id,
                         long long content)
{
    char dir[1300], path[1400], id[80] = "";
    unsigned long long newest = 0;
    int segs = 0;
    /* The worker keeps each client id's spool in a folder of that name. */
    snprintf(dir, sizeof dir, "%s/%s", w->spool_dir, client_id);
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        if (strlen(e->d_name) == 20 && strcmp(e->d_name + 16, ".seg") == 0) {
            unsigned long long no = strtoull(e->d_name, NULL, 16);
            segs++;
            newest = no > newest ? no : newest;
        }
    if (d)
        closedir(d);
    snprintf(path, sizeof path, "%s/spool.id", dir);
    FILE *f = fopen(path, "r");
    if (f && !fgets(id, sizeof id, f))
        id[0] = '\0';
    if (f)
        fclose(f);
    id[strcspn(id, " \r\n")] = '\0';

    struct sy_pg_res *res = NULL;
    const char *params[] = {client_id};
    bool ok = false;
    if (sy_pg_exec(b->pg, "SELECT spool_id, seg, off FROM telemetry_spool WHERE client_id = $1", 1,
                   params, &res) != 0) {
        fprintf(stderr, "bench_telemetry: telemetry_spool: %s\n", sy_pg_error(b->pg));
    } else if (sy_pg_res_rows(res) != 1) {
        printf("          spool: %d segments, no position recorded for %s\n", segs, client_id);
    } else {
        const char *sid = sy_pg_res_get(res, 0, 0);
        unsigned long long seg = strtoull(sy_pg_res_get(res, 0, 1), NULL, 10);
        long long off = strtoll(sy_pg_res_get(res, 0, 2), NULL, 10);
        long long past = seg ? (long long)(seg - 1) * w->seg_mb * 1048576LL + off : 0;
        ok = segs == 1 && seg == newest && strcmp(sid, id) == 0 && past >= content;
        printf("          spool: %d segment(s) of %d MiB, newest %llu; stored up to segment %llu "
               "offset %lld (%lld bytes, content %lld) of spool %s%s\n",
               segs, w->seg_mb, newest, seg, off, past, content,
               strcmp(sid, id) == 0 ? "(this one)" : sid, ok ? "" : " [NOT DRAINED]");
    }
    sy_pg_res_free(res);
    return ok;
}

/* Redis holds the newest reading of each device: device line-000's rate must carry the ts of its
 * last message (in µs). */
static bool verify_latest(struct bench *b, int r, long msgs)
{
    redisContext *rc = th_redis();
    long long want = (long long)(b->base_ms + (msgs - 1) / DEVICES * TS_STEP_MS) * 1000;
    long long got = -1;
    redisReply *rep = redisCommand(rc, "HGET telemetry:latest:%s:line-000 rate:ts", b->plants[r]);
    if (rep && rep->type == REDIS_REPLY_STRING)
        got = strtoll(rep->str, NULL, 10);
    freeReplyObject(rep);
    redisFree(rc);
    printf("          redis: line-000's newest rate at %lld us, expected %lld\n", got, want);
    return got == want;
}

/* Round 1: the pre-filled session drained by one sy-telemetry. */
static void run_worker(struct bench *b, int r, struct round *o)
{
    struct worker w;
    long want = b->n * METRICS;
    long long in = 0, dups = 0;

    o->msgs = b->n;
    o->readings = want;
    worker_init(b, &w, r, SEG_MB);
    worker_start(b, &w);
    double t0 = th_mono_s();
    for (int64_t end = th_now_ms() + ROUND_MAX_MS; th_now_ms() < end; th_sleep_ms(POLL_MS)) {
        if (th_proc_wait(&w.p, 0) == 0) {
            fprintf(stderr, "bench_telemetry: sy-telemetry exited with %d\n", w.p.exit_status);
            th_proc_dump_log(&w.p, 40);
            return;
        }
        if ((in = stored(&w)) >= want)
            break;
    }
    o->secs = th_mono_s() - t0;
    o->cpu_s = th_cpu_s(w.p.pid);
    o->peak_kb = th_status_kb(w.p.pid, "VmHWM");
    if (in < want) {
        fprintf(stderr, "bench_telemetry: after %.0f s %lld of %ld readings in PostgreSQL\n",
                o->secs, in, want);
        th_proc_dump_log(&w.p, 40);
        th_proc_cleanup(&w.p);
        return;
    }
    /* Readings arriving late (doubles would) have a moment to show before the count. */
    th_sleep_ms(1000);
    bool stopped = worker_stop(&w);
    int warnings =
        th_log_count(&w.p, "\"level\":\"warn\"") + th_log_count(&w.p, "\"level\":\"error\"");
    long long distinct = 0;
    bool rows_ok = verify_rows(b, r, want, &distinct, &dups);
    bool spool_ok = verify_spool(b, &w, b->clients[r], content_bytes(b, b->plants[r], 0, b->n));
    bool latest_ok = verify_latest(b, r, o->msgs);
    printf("          worker exit %d, log warnings %d\n", w.p.exit_status, warnings);
    o->dups = dups;
    o->ok = rows_ok && spool_ok && latest_ok && stopped;
    if (!o->ok || warnings > 0)
        th_proc_dump_log(&w.p, 20);
}

/* Round K: publishing while the worker runs, killed at KILLS random moments. */
struct killer {
    const struct bench *b;
    struct worker *w;
    long at[KILLS];
    int next;
    double cpu_s;
    long peak_kb;
};

static void kill_tick(void *ud, long i)
{
    struct killer *k = ud;
    if (k->next >= KILLS || i != k->at[k->next])
        return;
    k->next++;
    k->cpu_s += th_cpu_s(k->w->p.pid);
    long kb = th_status_kb(k->w->p.pid, "VmHWM");
    if (kb > k->peak_kb)
        k->peak_kb = kb;
    th_proc_signal(&k->w->p, SIGKILL);
    th_proc_wait(&k->w->p, 10000);
    printf("          kill %d after message %ld: SIGKILLed (status %d), restarted\n", k->next, i,
           k->w->p.exit_status);
    worker_start(k->b, k->w);
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static void run_kills(struct bench *b, int r, struct round *o)
{
    struct worker w;
    struct killer k = {.b = b, .w = &w};
    long msgs = (b->n + METRICS - 1) / METRICS, want = msgs * METRICS;
    long long in = 0, dups = 0;
    uint32_t rnd[KILLS];

    o->msgs = msgs;
    o->readings = want;
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        die("getrandom", strerror(errno));
    for (int i = 0; i < KILLS; i++)
        k.at[i] = 1 + (long)(rnd[i] % (uint32_t)(msgs > 2 ? msgs - 2 : 1));
    qsort(k.at, KILLS, sizeof k.at[0], cmp_long);
    /* The session first, so what is published before the worker subscribes is kept too. */
    char filter[96];
    snprintf(filter, sizeof filter, "$share/%s/%s/#", b->group, b->root);
    if (th_mqtt_session(b->url, b->clients[r], filter, EXPIRY_S) != 0)
        die("session", b->clients[r]);
    worker_init(b, &w, r, SEG_MB_K);
    worker_start(b, &w);
    double t0 = th_mono_s();
    publish(b, b->plants[r], b->clients[r], 0, msgs, kill_tick, &k);
    while (k.next < KILLS) /* the same index twice: one kill is left */
        kill_tick(&k, k.at[k.next]);
    long long last = -1;
    int64_t still_since = th_now_ms();
    for (int64_t end = th_now_ms() + ROUND_MAX_MS; th_now_ms() < end; th_sleep_ms(POLL_MS)) {
        if (th_proc_wait(&w.p, 0) == 0) {
            fprintf(stderr, "bench_telemetry: sy-telemetry exited with %d\n", w.p.exit_status);
            th_proc_dump_log(&w.p, 40);
            break;
        }
        if ((in = rows(b, b->plants[r])) >= want)
            break;
        if (in != last) {
            last = in;
            still_since = th_now_ms();
        } else if (th_now_ms() - still_since > SETTLE_MS) {
            break;
        }
    }
    o->secs = th_mono_s() - t0;
    o->cpu_s = k.cpu_s + th_cpu_s(w.p.pid);
    long kb = th_status_kb(w.p.pid, "VmHWM");
    o->peak_kb = kb > k.peak_kb ? kb : k.peak_kb;
    th_sleep_ms(1000);
    bool stopped = !w.p.exited && worker_stop(&w);
    long long distinct = 0;
    bool rows_ok = verify_rows(b, r, want, &distinct, &dups);
    o->lost = want - distinct;
    o->dups = dups;
    bool spool_ok = verify_spool(b, &w, b->clients[r], content_bytes(b, b->plants[r], 0, msgs));
    bool latest_ok = verify_latest(b, r, msgs);
    printf("          %d starts, lost %lld of %ld readings, duplicates %lld, final exit %d\n",
           w.starts, o->lost, want, dups, w.p.exit_status);
    o->ok = rows_ok && spool_ok && latest_ok && stopped && o->lost == 0;
    if (!o->ok)
        th_proc_dump_log(&w.p, 30);
}

/* --- the run -------------------------------------------------------------------------------- */

/* A stopped worker's or the bare client's session would stay in the run's share group and take
 * a share of the next round's messages. */
static void drop_session(struct bench *b, int r)
{
    if (th_mqtt_drop_session(b->url, b->clients[r]) != 0)
        fprintf(stderr, "bench_telemetry: the session of %s stays\n", b->clients[r]);
}

/* The run's rows, Redis keys, sessions and files. */
static void cleanup(struct bench *b)
{
    static const char *const sqls[] = {
        ("DELETE FROM telemetry_points WHERE series IN"
         " (SELECT id FROM telemetry_series WHERE plant = $1)"),
        "DELETE FROM telemetry_series WHERE plant = $1",
        "DELETE FROM telemetry_rejects WHERE plant = $1",
        "DELETE FROM telemetry_alert_state WHERE plant = $1",
        "DELETE FROM telemetry_alerts WHERE plant = $1",
    };
    redisContext *rc = b->pg ? th_redis() : NULL;
    for (int r = 0; r < b->nrounds; r++) {
        drop_session(b, r);
        if (!b->pg)
            continue;
        const char *plant[] = {b->plants[r]}, *client[] = {b->clients[r]};
        for (size_t i = 0; i < sizeof sqls / sizeof sqls[0]; i++)
            if (sy_pg_exec(b->pg, sqls[i], 1, plant, NULL) != 0)
                fprintf(stderr, "bench_telemetry: %s: %s\n", sqls[i], sy_pg_error(b->pg));
        if (sy_pg_exec(b->pg, "DELETE FROM telemetry_spool WHERE client_id = $1", 1, client,
                       NULL) != 0)
            fprintf(stderr, "bench_telemetry: telemetry_spool: %s\n", sy_pg_error(b->pg));
        for (int d = 0; d < DEVICES; d++) {
            redisAppendCommand(rc, "DEL telemetry:latest:%s:line-%03d", b->plants[r], d);
            redisAppendCommand(rc, "SREM telemetry:devices:line %s:line-%03d", b->plants[r], d);
        }
        for (int i = 0; i < 2 * DEVICES; i++) {
            void *rep = NULL;
            if (redisGetReply(rc, &rep) != REDIS_OK)
                break;
            freeReplyObject(rep);
        }
    }
    if (rc)
        redisFree(rc);
    th_rm_tree(b->dir);
}

static const char *kind_name(char kind)
{
    return kind == 'K' ? "5 SIGKILLs meanwhile" : "1 worker, pre-filled";
}

int main(void)
{
    struct bench *b = calloc(1, sizeof *b);
    const char *rounds = getenv("SY_BENCH_ROUNDS") ? getenv("SY_BENCH_ROUNDS") : "B1B";
    char err[512], path[1200];

    if (!b)
        die("bench", "out of memory");
    b->url = th_need_env("SY_MQTT_URL");
    const char *src = th_need_env("SY_SOURCE_DIR");
    const char *build = th_need_env("SY_BUILD_DIR");
    b->n = getenv("SY_BENCH_N") ? atol(getenv("SY_BENCH_N")) : 200000;
    if (b->n < 1 || b->n > 1000000)
        die("SY_BENCH_N", "not a count from 1 to 1000000");
    if (strlen(rounds) > ROUNDS_MAX || strspn(rounds, "B1K") != strlen(rounds))
        die("SY_BENCH_ROUNDS", "at most 8 of B (bare subscriber), 1 (one sy-telemetry) and K "
                               "(kills while publishing)");
    bool workers = strpbrk(rounds, "1K") != NULL;
    th_run_id(b->run);
    snprintf(b->group, sizeof b->group, "bench%s", b->run);
    snprintf(b->root, sizeof b->root, "bench%s", b->run);
    b->base_ms = th_now_ms() - 300000;

    if (workers) {
        struct stat st;
        b->bin = th_need_env("SY_TELEMETRY_BIN");
        if (stat(b->bin, &st) != 0) {
            fprintf(stderr, "skipped: %s is not built\n", b->bin);
            return 77;
        }
        th_need_env("SY_REDIS_URL");
        th_need_env("SY_AMQP_URL");
        /* The fleet's topology and schemas, as th_fleet_amqp gives them to workers. */
        snprintf(path, sizeof path, "%s/schemas/topology.yaml", src);
        setenv("SY_TOPOLOGY", path, 1);
        snprintf(path, sizeof path, "%s/schemas/messages", src);
        setenv("SY_SCHEMA_DIR", path, 1);
        if (!(b->pg = sy_pg_connect(th_need_env("SY_PG_URL"), err, sizeof err)))
            die("postgresql", err);
        snprintf(path, sizeof path, "%s/schemas/sql/postgres", src);
        if (sy_pg_migrate(b->pg, path, NULL, NULL, err, sizeof err) != 0)
            die("migrate", err);
    }
    snprintf(b->dir, sizeof b->dir, "%s/Testing", build);
    mkdir(b->dir, 0755);
    snprintf(b->dir, sizeof b->dir, "%s/Testing/telemetry-bench-%s", build, b->run);
    if (mkdir(b->dir, 0755) != 0)
        die(b->dir, strerror(errno));
    snprintf(b->yaml, sizeof b->yaml, "%s/telemetry.yaml", b->dir);
    write_config(b, src);

    char topic[160], body[256];
    size_t len = message(b, "plant", 0, topic, sizeof topic, body, sizeof body);
    printf("messages  %ld a round, %d readings each (%zu bytes, e.g. %s %s), over %d devices; "
           "rounds %s\n",
           b->n, METRICS, len, topic, body, DEVICES, rounds);
    fflush(stdout);

    struct round res[ROUNDS_MAX];
    int nres = 0, nbare = 0;
    double bare_s = 0, bare_cpu = 0;
    bool ok = true;
    for (int r = 0; rounds[r]; r++) {
        names_of(b, r);
        b->nrounds = r + 1;
        if (rounds[r] == 'K') {
            struct round *o = &res[nres++];
            memset(o, 0, sizeof *o);
            o->kind = 'K';
            run_kills(b, r, o);
            drop_session(b, r);
            ok = ok && o->ok;
            continue;
        }
        char filter[96];
        snprintf(filter, sizeof filter, "$share/%s%s/%s/#", b->group, rounds[r] == 'B' ? "b" : "",
                 b->root);
        if (th_mqtt_session(b->url, b->clients[r], filter, EXPIRY_S) != 0)
            die("session", b->clients[r]);
        publish(b, b->plants[r], b->clients[r], 0, b->n, NULL, NULL);
        if (rounds[r] == 'B') {
            double cpu, t = bare_drain(b, b->clients[r], b->plants[r], b->n, &cpu);
            if (t < 0) {
                printf("baseline  bare paho subscriber: did not finish\n");
                ok = false;
            } else {
                printf("baseline  bare paho subscriber: %ld msgs in %.3f s = %.0f msg/s; CPU %.2f "
                       "s (%.1f us per message)\n",
                       b->n, t, b->n / t, cpu, cpu * 1e6 / (double)b->n);
                bare_s += t;
                bare_cpu += cpu;
                nbare++;
            }
            fflush(stdout);
            drop_session(b, r);
            continue;
        }
        struct round *o = &res[nres++];
        memset(o, 0, sizeof *o);
        o->kind = rounds[r];
        run_worker(b, r, o);
        drop_session(b, r);
        ok = ok && o->ok;
        fflush(stdout);
    }

    double bare = nbare ? b->n * nbare / bare_s : 0;
    printf("\nround                          msgs/s  readings/s  CPU us/reading  peak RSS MB  "
           "lost  dups  ratio  verified\n");
    if (nbare)
        printf("%-28s %8.0f  %10s  %14s  %11s  %4s  %4s  %5s  %s\n", "bare paho subscriber", bare,
               "-", "-", "-", "-", "-", "1.000", "yes");
    for (int i = 0; i < nres; i++) {
        const struct round *o = &res[i];
        double msgs = o->secs > 0 ? o->msgs / o->secs : 0;
        char ratio[16] = "-";
        if (bare > 0 && o->kind != 'K')
            snprintf(ratio, sizeof ratio, "%.3f", msgs / bare);
        printf("%-28s %8.0f  %10.0f  %14.1f  %11.1f  %4lld  %4lld  %5s  %s\n", kind_name(o->kind),
               msgs, o->secs > 0 ? o->readings / o->secs : 0,
               o->readings ? o->cpu_s * 1e6 / (double)o->readings : 0, o->peak_kb / 1024.0, o->lost,
               o->dups, ratio, o->ok ? "yes" : "NO");
    }
    if (nbare)
        printf("ratio     sy-telemetry msgs/s / bare subscriber msgs/s (%.0f/s, bare CPU %.1f us "
               "per message); K rounds publish while the worker runs and are not compared\n",
               bare, bare_cpu * 1e6 / ((double)b->n * nbare));

    cleanup(b);
    sy_pg_destroy(b->pg);
    free(b);
    return ok ? 0 : 1;
}
