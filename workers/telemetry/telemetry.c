/* telemetry.c - sy-telemetry: plant readings from MQTT into PostgreSQL and Redis, with alerts.
 *
 * paho's receiving thread appends each message to the local spool and returns, and only then
 * does paho acknowledge it to the broker. The worker's own thread reads the spool in batches
 * (by size or age), decodes and checks the readings, and commits each batch in one PostgreSQL
 * transaction together with its rejects, alert changes and the spool position it reached; the
 * spool is released up to there only after the commit. So a kill at any moment loses nothing:
 * unacknowledged messages come again from the broker's session, acknowledged ones are in the
 * spool past the committed position, and storing a reading twice is a no-op. */
#include "telemetry/telemetry.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sy/clock.h"
#include "sy/err.h"
#include "sy/log.h"
#include "sy/metrics.h"
#include "sy/mqtt.h"
#include "sy/pg.h"
#include "sy/redis.h"
#include "sy/schema.h"
#include "telemetry/alerts.h"
#include "telemetry/batch.h"
#include "telemetry/history.h"
#include "telemetry/latest.h"
#include "telemetry/model.h"
#include "telemetry/series.h"
#include "telemetry/spool.h"

#define REDIS_TIMEOUT_MS 2000
#define READY_EVERY_MS   5000
#define IDLE_WAIT_MS     500
#define BACKOFF_MAX_MS   30000
#define DRAIN_MS         5000 /* after the MQTT client stopped: what is spooled, stored now */
#define CLIENT_ID_MAX    128
#define SUBS_MAX         16
#define SLOTS            3

struct tm_conf {
    char *config, *client_id, *spool_dir;
    long long spool_segment_mb, spool_max_mb, batch_max, batch_wait_ms, receive_max;
    bool leave;
};

#define C_(field) offsetof(struct tm_conf, field)
static const struct sy_conf_key tm_conf_keys[] = {
    {"SY_TELEMETRY_CONFIG", SY_CONF_STR, SY_DEFAULT_ROOT "/deploy/config/telemetry.yaml", 0, 0,
     C_(config), 0, "topics, kinds and metrics, limits and alert rules, read at start"},
    {"SY_TELEMETRY_CLIENT_ID", SY_CONF_STR, NULL, 0, 0, C_(client_id), 0,
     "the MQTT client id, fixed per replica (the broker keeps its session under it); default "
     "sy-telemetry-<host name>"},
    {"SY_TELEMETRY_SPOOL_DIR", SY_CONF_STR, "/var/spool/switchyard/telemetry", 0, 0, C_(spool_dir),
     0,
     "where each replica keeps its spool (a folder per client id); must "
     "survive a restart of the process"},
    {"SY_TELEMETRY_SPOOL_SEGMENT_MB", SY_CONF_INT, "64", 1, 1024, C_(spool_segment_mb), 0,
     "size of one spool segment file"},
    {"SY_TELEMETRY_SPOOL_MAX_MB", SY_CONF_INT, "4096", 2, 1048576, C_(spool_max_mb), 0,
     "spool kept at most (while PostgreSQL is away); past it the broker is slowed down"},
    {"SY_TELEMETRY_BATCH", SY_CONF_INT, "5000", 1, 100000, C_(batch_max), 0,
     "readings committed together at most"},
    {"SY_TELEMETRY_BATCH_WAIT", SY_CONF_MS, "200ms", 1, 60000, C_(batch_wait_ms), 0,
     "how long a batch may wait to fill up"},
    {"SY_TELEMETRY_RECEIVE_MAX", SY_CONF_INT, "1000", 1, 65535, C_(receive_max), 0,
     "QoS 1 messages the broker may have in flight to this replica"},
    {"SY_TELEMETRY_LEAVE_ON_STOP", SY_CONF_BOOL, "false", 0, 0, C_(leave), 0,
     "on SIGTERM, leave the shared subscription and end the MQTT session (for a replica that "
     "is not coming back: a stopped member keeps getting its share otherwise)"},
    {NULL, SY_CONF_STR, NULL, 0, 0, 0, 0, NULL},
};
#undef C_

struct tele {
    struct sy_worker *w;
    const struct tm_conf *conf;
    struct tm_model *model;
    struct tm_spool *spool;
    struct sy_mqtt *mqtt;
    struct sy_pg_probe *ready;
    const char *pg_url, *redis_url, *mqtt_url;
    char client_id[CLIENT_ID_MAX + 1];

    /* Batches in three stages, each on a thread of its own: the run thread fills one, the
     * committer stores the one before in PostgreSQL, the latest thread puts the one before that
     * into Redis. Slots go round in order. */
    struct slot {
        struct tm_batch b;
        int32_t *ids; /* its readings' series numbers */
        enum { FREE, FULL, STORED } state;
    } slot[SLOTS];
    size_t fill_at, commit_at, latest_at;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t committer, latest_thread, stopper;
    bool committer_started, latest_started, committer_quit, committer_gone;
    bool stopper_started;
    atomic_bool stopper_done;

    /* the run thread's own */
    struct tm_spool_pos pos;
    /* the committer's own (the run thread's before the committer starts) */
    struct sy_pg *pg;
    struct tm_series *series;
    struct tm_buf rows;
    bool alerts_pending;
    /* the latest thread's own */
    struct sy_redis *redis;
    struct tm_latest latest;

    struct sy_counter *messages, *stored, *duplicates, *rejected, *alerts, *redis_failures,
        *db_failures, *batches;
    struct sy_gauge *spool_bytes;
    struct sy_histogram *commit_seconds;
};

/* paho's receiving thread: into the spool before paho may acknowledge. A payload past the
 * size limit is kept cut (one byte over), enough for the decoder to reject it as too large. */
static void on_message(void *ud, const char *topic, size_t topic_len, const void *payload,
                       size_t len, bool dup)
{
    struct tele *g = ud;
    size_t max = tm_model_max_payload(g->model);
    size_t keep = len > max ? max + 1 : len;
    size_t tl = topic_len > TM_TOPIC_MAX ? TM_TOPIC_MAX + 1 : topic_len;
    int rc;

    while ((rc = tm_spool_append(g->spool, topic, tl, payload, keep, sy_wall_us(), dup)) != 0) {
        /* No room on disk for a segment: not acknowledging is the only way not to lose it. */
        sy_log_error("telemetry.spool", "cannot spool a message (%s): trying again in 1 s",
                     sy_strerror(rc));
        sleep(1);
    }
    sy_counter_add(g->messages, 1);
}

/* --- stores ----------------------------------------------------------------------------------- */

static int pg_ready(struct tele *g)
{
    char err[256];

    if (g->pg)
        return 0;
    if (!(g->pg = sy_pg_connect(g->pg_url, err, sizeof err))) {
        sy_log_write(SY_LOG_WARN, "telemetry.pg", -1, err, "PostgreSQL not reachable");
        return -SY_ECONN;
    }
    if (tm_history_stage(g->pg) != 0) {
        sy_pg_destroy(g->pg);
        g->pg = NULL;
        return -SY_ECONN;
    }
    return 0;
}

static void redis_write(struct tele *g, const struct tm_batch *b)
{
    char err[256];
    size_t devices;
    int rc;

    if (!g->redis &&
        !(g->redis = sy_redis_connect(g->redis_url, REDIS_TIMEOUT_MS, err, sizeof err))) {
        sy_counter_add(g->redis_failures, 1);
        return;
    }
    rc = tm_latest_write(&g->latest, g->redis, b, &devices);
    if (rc == -SY_ECONN || rc == -SY_ETIMEOUT) /* the script may run twice: newer-only */
        rc = tm_latest_write(&g->latest, g->redis, b, &devices);
    if (rc != 0)
        sy_counter_add(g->redis_failures, 1);
}

/* One transaction: readings, rejects, alerts, position (the series the readings name are
 * registered before it). 0, or the error (rolled back). */
static int commit_batch(struct tele *g, const struct tm_batch *b, int32_t *ids, long long *inserted,
                        size_t *changes)
{
    int rc;

    *changes = 0;
    if ((rc = pg_ready(g)) != 0)
        return rc;
    if ((rc = tm_series_resolve(g->series, g->pg, b, ids)) != 0)
        return rc;
    if ((rc = sy_pg_begin(g->pg)) != 0)
        return rc;
    rc = tm_history_write(g->pg, &g->rows, b, ids, g->client_id, tm_spool_id(g->spool), inserted);
    if (rc == 0)
        rc = tm_alerts_apply(g->pg, g->model, b, changes);
    if (rc == 0 && (rc = sy_pg_commit(g->pg)) == 0)
        return 0;
    sy_pg_rollback(g->pg);
    if (strcmp(sy_pg_sqlstate(g->pg), "42P01") == 0)
        tm_history_stage(g->pg); /* a reset connection lost its temporary table */
    return rc;
}

/* The readings of message j alone, as a batch of their own. */
static struct tm_batch message_view(const struct tm_batch *b, size_t j, size_t *from)
{
    struct tm_batch v = *b;
    size_t i = *from;

    while (i < b->n && b->msg[i] < j)
        i++;
    v.r = b->r + i;
    v.msg = b->msg + i;
    v.n = 0;
    v.good = v.rejected = 0;
    while (i + v.n < b->n && b->msg[i + v.n] == j) {
        if (v.r[v.n].why[0])
            v.rejected++;
        else
            v.good++;
        v.n++;
    }
    v.end = b->m[j].next;
    *from = i + v.n;
    return v;
}

/* PostgreSQL refused the batch's data: one message at a time, so that only the one it refuses
 * becomes rejects (with its refusal as the reason) and the rest is stored. */
static int commit_each(struct tele *g, struct tm_batch *b, int32_t *ids, long long *inserted,
                       size_t *changes)
{
    size_t from = 0;
    int rc = 0;

    *inserted = 0;
    *changes = 0;
    for (size_t j = 0; j < b->nm; j++) {
        size_t start = from, ch = 0;
        struct tm_batch v = message_view(b, j, &from);
        long long ins = 0;

        rc = commit_batch(g, &v, ids + (v.r - b->r), &ins, &ch);
        if (rc == -SY_EDBDATA) {
            b->good -= v.good;
            b->rejected += v.good;
            for (size_t i = 0; i < v.n; i++)
                if (!b->r[start + i].why[0])
                    snprintf(b->r[start + i].why, sizeof b->r[start + i].why,
                             "PostgreSQL refused it: %.120s", sy_pg_error(g->pg));
            v = message_view(b, j, &start);
            rc = commit_batch(g, &v, ids + (v.r - b->r), &ins, &ch);
        }
        if (rc != 0)
            return rc;
        *inserted += ins;
        *changes += ch;
    }
    return 0;
}

static void count_batch(struct tele *g, const struct tm_batch *b, long long inserted,
                        size_t changes)
{
    sy_counter_add(g->stored, (uint64_t)inserted);
    sy_counter_add(g->duplicates, b->good - (size_t)inserted);
    sy_counter_add(g->rejected, b->rejected);
    sy_counter_add(g->batches, 1);
    sy_counter_add(g->alerts, changes);
    if (changes)
        g->alerts_pending = true;
}

/* Stores the batch, trying again (backing off) while PostgreSQL fails; gives up only when the
 * process is stopping (the spool keeps the batch for the next start). 0 when stored. */
static int flush(struct tele *g, struct tm_batch *b, int32_t *ids)
{
    long long backoff = 250, inserted = 0;
    size_t changes = 0;
    int rc;

    if (b->nm == 0)
        return 0;
    for (;;) {
        int64_t t0 = sy_mono_ms();

        rc = commit_batch(g, b, ids, &inserted, &changes);
        if (rc == -SY_EDBDATA)
            rc = commit_each(g, b, ids, &inserted, &changes);
        if (rc == 0) {
            sy_histogram_observe(g->commit_seconds, (double)(sy_mono_ms() - t0) / 1000.0);
            break;
        }
        sy_counter_add(g->db_failures, 1);
        sy_log_write(SY_LOG_WARN, "telemetry.commit", -1, g->pg ? sy_pg_error(g->pg) : "",
                     "storing %zu readings failed (%s); trying again in %lld ms", b->n,
                     sy_strerror(rc), backoff);
        if (sy_worker_sleep(g->w, backoff))
            return rc;
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    count_batch(g, b, inserted, changes);
    tm_spool_release(g->spool, b->end);
    sy_gauge_set(g->spool_bytes, (int64_t)tm_spool_bytes(g->spool));
    return 0;
}

static void publish_alerts(struct tele *g)
{
    size_t n = 0;

    if (!g->alerts_pending || pg_ready(g) != 0)
        return;
    if (tm_alerts_publish(g->pg, g->w, &n) == 0 && n < 100)
        g->alerts_pending = false;
}

/* Fills the batch from the spool: until it is full, or its first message is batch_wait old, or
 * (with idle) nothing came for a while. */
static void collect(struct tele *g, struct tm_batch *b, long long wait_ms)
{
    struct tm_spool_rec rec;
    int64_t deadline = 0;

    tm_batch_clear(b);
    while (b->n < (size_t)g->conf->batch_max) {
        int64_t left = deadline ? deadline - sy_mono_ms() : wait_ms;

        if (left <= 0 && deadline)
            break;
        if (tm_spool_read(g->spool, g->pos, &rec, (int)(left > 0 ? left : 0)) != 1) {
            if (deadline || b->nm || sy_worker_stopping(g->w) || wait_ms == 0)
                break;
            continue;
        }
        if (tm_batch_add(b, g->model, &rec) != 0)
            break; /* full: this record starts the next batch */
        g->pos = rec.next;
        if (!deadline)
            deadline = sy_mono_ms() + g->conf->batch_wait_ms;
    }
}

static int start_position(struct tele *g)
{
    struct tm_spool_pos pos;
    int rc;

    while ((rc = pg_ready(g)) != 0 ||
           (rc = tm_history_position(g->pg, g->client_id, tm_spool_id(g->spool), &pos)) < 0) {
        if (sy_worker_sleep(g->w, 2000))
            return -SY_ESHUTDOWN;
    }
    if (rc == 1 && tm_spool_holds(g->spool, pos)) {
        g->pos = pos;
    } else {
        g->pos = tm_spool_first(g->spool);
    }
    sy_log_info("telemetry.spool", "reading the spool from segment %llu offset %llu (%s)",
                (unsigned long long)g->pos.seg, (unsigned long long)g->pos.off,
                rc == 1 ? "stored position" : "its start");
    return 0;
}

/* --- the committer and the latest values ------------------------------------------------------ */

/* Stores the filled batches in order, and publishes the alerts they recorded. It stops when told
 * to and nothing is left, or when a batch cannot be stored while the process stops. */
static void *committer_main(void *arg)
{
    struct tele *g = arg;

    pthread_mutex_lock(&g->mu);
    for (;;) {
        struct slot *sl = &g->slot[g->commit_at];

        if (sl->state != FULL) {
            struct timespec until = sy_cond_at(sy_mono_ms() + 1000);

            if (g->committer_quit)
                break;
            if (pthread_cond_timedwait(&g->cv, &g->mu, &until) != 0 && g->alerts_pending) {
                pthread_mutex_unlock(&g->mu);
                publish_alerts(g); /* ones a broker hiccup held back */
                pthread_mutex_lock(&g->mu);
            }
            continue;
        }
        pthread_mutex_unlock(&g->mu);
        int rc = flush(g, &sl->b, sl->ids);
        if (rc == 0)
            publish_alerts(g);
        pthread_mutex_lock(&g->mu);
        if (rc != 0)
            break; /* stopping with PostgreSQL away: the spool keeps the rest */
        sl->state = STORED;
        g->commit_at = (g->commit_at + 1) % SLOTS;
        pthread_cond_broadcast(&g->cv);
    }
    g->committer_gone = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

/* Stored batches into Redis, in order, until the committer is gone and none is left. */
static void *latest_main(void *arg)
{
    struct tele *g = arg;

    pthread_mutex_lock(&g->mu);
    for (;;) {
        struct slot *sl = &g->slot[g->latest_at];

        if (sl->state != STORED) {
            if (g->committer_gone)
                break;
            pthread_cond_wait(&g->cv, &g->mu);
            continue;
        }
        pthread_mutex_unlock(&g->mu);
        redis_write(g, &sl->b);
        pthread_mutex_lock(&g->mu);
        sl->state = FREE;
        g->latest_at = (g->latest_at + 1) % SLOTS;
        pthread_cond_broadcast(&g->cv);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

/* The next batch to fill, once the other stages are done with it; NULL when the committer is
 * gone. */
static struct slot *free_slot(struct tele *g)
{
    struct slot *sl;

    pthread_mutex_lock(&g->mu);
    while (g->slot[g->fill_at].state != FREE && !g->committer_gone)
        pthread_cond_wait(&g->cv, &g->mu);
    sl = g->committer_gone ? NULL : &g->slot[g->fill_at];
    pthread_mutex_unlock(&g->mu);
    return sl;
}

static void submit(struct tele *g, struct slot *sl)
{
    pthread_mutex_lock(&g->mu);
    sl->state = FULL;
    g->fill_at = (g->fill_at + 1) % SLOTS;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* One batch from the spool to the committer: 1 when there was one, 0 when the spool had none,
 * -1 when the committer is gone. */
static int pass_on(struct tele *g, long long wait_ms)
{
    struct slot *sl = free_slot(g);

    if (!sl)
        return -1;
    collect(g, &sl->b, wait_ms);
    if (sl->b.nm == 0)
        return 0;
    submit(g, sl);
    return 1;
}

/* Waits for every batch passed on to be stored, then ends the two stages. */
static void committer_end(struct tele *g)
{
    pthread_mutex_lock(&g->mu);
    g->committer_quit = true;
    g->committer_gone |= !g->committer_started; /* the latest thread alone stops too */
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    if (g->committer_started)
        pthread_join(g->committer, NULL);
    if (g->latest_started)
        pthread_join(g->latest_thread, NULL);
    g->committer_started = g->latest_started = false;
}

/* On its own thread: stopping the client may wait for on_message, which may wait for room
 * in the spool, which the run thread makes meanwhile. */
static void *stop_mqtt(void *arg)
{
    struct tele *g = arg;

    if (g->conf->leave)
        sy_mqtt_leave(g->mqtt, 1000, 30000);
    else
        sy_mqtt_stop(g->mqtt);
    g->mqtt = NULL;
    atomic_store(&g->stopper_done, true);
    return NULL;
}

static int tm_run(void *state)
{
    struct tele *g = state;
    const char *const *filters;
    size_t nf = tm_model_subscriptions(g->model, &filters);
    char shared[SUBS_MAX][TM_TOPIC_MAX + 80];
    const char *subs[SUBS_MAX];
    struct sy_mqtt_opts o;
    char err[512];

    if (start_position(g) != 0)
        return 0;
    for (size_t i = 0; i < nf && i < SUBS_MAX; i++) {
        snprintf(shared[i], sizeof shared[i], "$share/%s/%s", tm_model_group(g->model), filters[i]);
        subs[i] = shared[i];
    }
    o = (struct sy_mqtt_opts){.url = g->mqtt_url,
                              .client_id = g->client_id,
                              .filters = subs,
                              .nfilters = nf < SUBS_MAX ? nf : SUBS_MAX,
                              .session_expiry_s = tm_model_session_expiry_s(g->model),
                              .receive_max = (int)g->conf->receive_max,
                              .on_message = on_message,
                              .ud = g};
    if (!(g->mqtt = sy_mqtt_start(&o, err, sizeof err))) {
        sy_log_error("telemetry.mqtt", "%s", err);
        return 1;
    }
    if (pthread_create(&g->latest_thread, NULL, latest_main, g) != 0) {
        sy_log_error("telemetry.start", "cannot start the latest values' thread");
        return 1;
    }
    g->latest_started = true;
    if (pthread_create(&g->committer, NULL, committer_main, g) != 0) {
        sy_log_error("telemetry.start", "cannot start the committer thread");
        committer_end(g);
        return 1;
    }
    g->committer_started = true;
    while (!sy_worker_stopping(g->w))
        if (pass_on(g, IDLE_WAIT_MS) < 0)
            break;
    /* Stop taking messages, storing what keeps coming meanwhile (leaving takes what the broker
     * still had for us), then what is spooled already. */
    if (pthread_create(&g->stopper, NULL, stop_mqtt, g) == 0) {
        g->stopper_started = true;
        while (!atomic_load(&g->stopper_done))
            if (pass_on(g, 100) < 0) {
                committer_end(g);
                return 0; /* PostgreSQL away: the spool keeps it for the next start */
            }
        pthread_join(g->stopper, NULL);
        g->stopper_started = false;
    }
    for (int64_t until = sy_mono_ms() + DRAIN_MS; sy_mono_ms() < until;)
        if (pass_on(g, 0) <= 0)
            break;
    committer_end(g);
    return 0;
}

/* --- lifecycle ------------------------------------------------------------------------------ */

static int tm_ready(void *state)
{
    struct tele *g = state;

    if (!sy_mqtt_ready(g->mqtt))
        return -1;
    return sy_pg_probe_check(g->ready);
}

static void tm_exit(void *state)
{
    struct tele *g = state;

    if (!g)
        return;
    if (g->stopper_started && !atomic_load(&g->stopper_done))
        return; /* the client still stops and paho's thread may use the spool: leave both */
    sy_mqtt_stop(g->mqtt);
    tm_spool_close(g->spool);
    tm_model_free(g->model);
    sy_pg_probe_free(g->ready);
    sy_pg_destroy(g->pg);
    sy_redis_destroy(g->redis);
    committer_end(g);
    for (size_t i = 0; i < SLOTS; i++) {
        tm_batch_free(&g->slot[i].b);
        free(g->slot[i].ids);
    }
    tm_series_free(g->series);
    tm_buf_free(&g->rows);
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

static struct sy_counter *readings(const char *outcome)
{
    char labels[64];

    snprintf(labels, sizeof labels, "outcome=\"%s\"", outcome);
    return sy_counter_get("sy_telemetry_readings_total", "readings and what became of them",
                          labels);
}

/* Every severity a rule names must be a message type the schemas know. */
static int check_rules(struct tele *g)
{
    const struct tm_rule *rules;
    size_t n = tm_model_rules(g->model, &rules);

    for (size_t i = 0; i < n; i++) {
        char type[64];

        snprintf(type, sizeof type, "telemetry.alert.%s", rules[i].severity);
        if (!sy_schemas_has(sy_worker_schemas(g->w), type)) {
            sy_log_error("worker.config",
                         "%s: alert rule %s: severity %s has no message schema "
                         "%s",
                         g->conf->config, rules[i].name, rules[i].severity, type);
            return -SY_ECONFIG;
        }
    }
    return 0;
}

static int tm_init(struct sy_worker *w, void **state)
{
    struct tele *g = calloc(1, sizeof *g);
    char err[1024], dir[PATH_MAX];
    int rc = -SY_ECONFIG;

    if (!g)
        return -SY_ENOMEM;
    pthread_mutex_init(&g->mu, NULL);
    sy_cond_init(&g->cv);
    g->w = w;
    g->conf = sy_worker_conf(w);
    g->pg_url = sy_worker_url(w, "pg");
    g->redis_url = sy_worker_url(w, "redis");
    g->mqtt_url = sy_worker_url(w, "mqtt");
    if (!g->pg_url || !g->redis_url || !g->mqtt_url) {
        sy_log_error("worker.config", "SY_MQTT_URL, SY_PG_URL and SY_REDIS_URL: required "
                                      "(readings come from MQTT, history goes to PostgreSQL, "
                                      "latest values to Redis)");
        goto fail;
    }
    if (g->conf->client_id && g->conf->client_id[0]) {
        snprintf(g->client_id, sizeof g->client_id, "%s", g->conf->client_id);
    } else {
        char host[HOST_NAME_MAX + 1] = "localhost";

        gethostname(host, sizeof host);
        host[HOST_NAME_MAX] = '\0';
        snprintf(g->client_id, sizeof g->client_id, "sy-telemetry-%s", host);
    }
    for (const char *c = g->client_id; *c; c++)
        if (!(*c == '-' || *c == '_' || *c == '.' || (*c >= '0' && *c <= '9') ||
              (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z'))) {
            sy_log_error("worker.config", "SY_TELEMETRY_CLIENT_ID: letters, digits, '-', '_' "
                                          "and '.' only (it names the spool folder too)");
            goto fail;
        }
    if (!(g->model = tm_model_load(g->conf->config, err, sizeof err))) {
        sy_log_write(SY_LOG_ERROR, "worker.config", -1, err, "SY_TELEMETRY_CONFIG: refused");
        goto fail;
    }
    if (tm_model_subscriptions(g->model, &(const char *const *){NULL}) > SUBS_MAX) {
        sy_log_error("worker.config", "%s: at most %d subscriptions", g->conf->config, SUBS_MAX);
        goto fail;
    }
    if ((rc = check_rules(g)) != 0)
        goto fail;
    if (g->conf->spool_max_mb < 2 * g->conf->spool_segment_mb) {
        sy_log_error("worker.config", "SY_TELEMETRY_SPOOL_MAX_MB: at least two segments "
                                      "(2 x SY_TELEMETRY_SPOOL_SEGMENT_MB)");
        rc = -SY_ECONFIG;
        goto fail;
    }
    snprintf(dir, sizeof dir, "%s/%s", g->conf->spool_dir, g->client_id);
    if (!(g->spool = tm_spool_open(dir, (size_t)g->conf->spool_segment_mb << 20,
                                   (size_t)g->conf->spool_max_mb << 20, err, sizeof err))) {
        sy_log_error("worker.config", "SY_TELEMETRY_SPOOL_DIR: %s", err);
        rc = -SY_ECONFIG;
        goto fail;
    }
    rc = -SY_ENOMEM;
    if (!(g->ready = sy_pg_probe_new(g->pg_url, READY_EVERY_MS)) || !(g->series = tm_series_new()))
        goto fail;
    for (size_t i = 0; i < SLOTS; i++)
        if (tm_batch_init(&g->slot[i].b, (size_t)g->conf->batch_max) != 0 ||
            !(g->slot[i].ids = calloc(g->slot[i].b.cap, sizeof *g->slot[i].ids)))
            goto fail;
    g->messages = sy_counter_get("sy_telemetry_messages_total",
                                 "MQTT messages spooled (before the broker was acknowledged)", "");
    g->stored = readings("stored");
    g->duplicates = readings("duplicate");
    g->rejected = readings("rejected");
    g->alerts = sy_counter_get("sy_telemetry_alerts_total", "alert raises and clears recorded", "");
    g->redis_failures = sy_counter_get("sy_telemetry_redis_failures_total",
                                       "batches whose latest values Redis did not take", "");
    g->db_failures = sy_counter_get("sy_telemetry_commit_failures_total",
                                    "batch commits PostgreSQL failed (each tried again)", "");
    g->batches = sy_counter_get("sy_telemetry_batches_total", "batches committed", "");
    g->spool_bytes = sy_gauge_get("sy_telemetry_spool_bytes", "bytes of spool segments kept", "");
    g->commit_seconds =
        sy_histogram_get("sy_telemetry_commit_seconds", "time to commit one batch", "");
    sy_log_info("telemetry.start", "client id %s, spool %s, batches of %lld readings or %lld ms",
                g->client_id, dir, g->conf->batch_max, g->conf->batch_wait_ms);
    *state = g;
    return 0;
fail:
    tm_exit(g);
    return rc;
}

const struct sy_handler telemetry_handler = {
    .name = "telemetry",
    .conf = tm_conf_keys,
    .conf_size = sizeof(struct tm_conf),
    .init = tm_init,
    .run = tm_run,
    .ready = tm_ready,
    .exit = tm_exit,
};
