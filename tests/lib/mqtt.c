/* mqtt.c - see mqtt.h. paho's asynchronous client answers through callbacks on its own threads;
 * every call here that must know the outcome waits on a struct op the callbacks complete. */
#include "mqtt.h"

#include <MQTTAsync.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WHY_MAX 256

static void say(const char *client_id, const char *what, const char *why)
{
    fprintf(stderr, "th_mqtt: %s: %s: %s\n", client_id ? client_id : "?", what, why);
}

/* A deadline timeout_ms from now on the clock pthread_cond_timedwait uses by default. */
static struct timespec deadline(int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* The text of a failure paho reported: its code, the MQTT reason code and its message. */
static void failure_text(char *buf, size_t len, const MQTTAsync_failureData5 *f)
{
    if (!f) {
        snprintf(buf, len, "failed (no details)");
        return;
    }
    const char *code = f->code ? MQTTAsync_strerror(f->code) : NULL;
    snprintf(buf, len, "%s%s%s%s%s", code ? code : "", code && f->reasonCode ? ", " : "",
             f->reasonCode ? MQTTReasonCode_toString(f->reasonCode) : "",
             f->message && (code || f->reasonCode) ? ": " : "", f->message ? f->message : "");
    if (!buf[0])
        snprintf(buf, len, "failed (code %d)", f->code);
}

/* --- one call whose outcome a thread waits for ------------------------------------------------ */

struct op {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rc;     /* 0 or -1 */
    int reason; /* the MQTT reason code of the answer */
    char why[WHY_MAX];
};

static void op_init(struct op *o)
{
    memset(o, 0, sizeof *o);
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
}

static void op_fini(struct op *o)
{
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->cv);
}

static void op_finish(struct op *o, int rc, int reason, const char *why)
{
    pthread_mutex_lock(&o->mu);
    o->done = true;
    o->rc = rc;
    o->reason = reason;
    snprintf(o->why, sizeof o->why, "%s", why ? why : "");
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

static void op_ok(void *ctx, MQTTAsync_successData5 *r)
{
    int reason = r ? (int)r->reasonCode : 0;
    /* A SUBACK's reason code is the granted QoS, or a refusal from 0x80 up. */
    if (reason >= 0x80)
        op_finish(ctx, -1, reason, MQTTReasonCode_toString((enum MQTTReasonCodes)reason));
    else
        op_finish(ctx, 0, reason, NULL);
}

static void op_fail(void *ctx, MQTTAsync_failureData5 *f)
{
    char why[WHY_MAX];
    failure_text(why, sizeof why, f);
    op_finish(ctx, -1, f ? (int)f->reasonCode : -1, why);
}

/* Waits for the op; -1 (with the reason printed) when it failed or did not finish in time.
 * After a timeout the caller must destroy the client before o goes out of scope: paho then
 * fails the pending call, and its callback still points at o. */
static int op_wait(struct op *o, const char *client_id, const char *what)
{
    struct timespec end = deadline(TH_MQTT_TIMEOUT_MS);
    int rc = 0;
    pthread_mutex_lock(&o->mu);
    while (!o->done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&o->cv, &o->mu, &end);
    bool done = o->done;
    int result = o->rc;
    pthread_mutex_unlock(&o->mu);
    if (!done) {
        say(client_id, what, "no answer in time");
        return -1;
    }
    if (result != 0)
        say(client_id, what, o->why);
    return result;
}

/* --- connections ------------------------------------------------------------------------------ */

/* A v5 client that keeps nothing on disk and takes up to `queued` publishes not yet written to
 * the socket. NULL on failure (printed). */
static MQTTAsync client_new(const char *url, const char *client_id, int queued)
{
    MQTTAsync c = NULL;
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
    /* paho refuses a publish while maxBufferedMessages (100 by default) wait in its command
     * queue, connected or not: the window is the bound here. */
    co.maxBufferedMessages = queued > 100 ? queued : 100;
    int rc =
        MQTTAsync_createWithOptions(&c, url, client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        say(client_id, "create", MQTTAsync_strerror(rc));
        return NULL;
    }
    return c;
}

/* Connects with the given clean start and Session Expiry Interval, at most max_inflight QoS 1
 * publishes outstanding; 0 or -1 (printed). */
static int client_connect(MQTTAsync c, const char *client_id, bool clean, long long expiry_s,
                          int max_inflight)
{
    struct op o;
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer5;
    MQTTProperties props = MQTTProperties_initializer;
    MQTTProperty expiry = {.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL};
    int rc;

    if (expiry_s < 0 || expiry_s > UINT32_MAX) {
        say(client_id, "connect", "session expiry out of range");
        return -1;
    }
    expiry.value.integer4 = (unsigned int)expiry_s;
    if (MQTTProperties_add(&props, &expiry) != 0) {
        say(client_id, "connect", "cannot set the session expiry");
        return -1;
    }
    op_init(&o);
    co.cleanstart = clean ? 1 : 0;
    co.keepAliveInterval = 60;
    co.connectTimeout = TH_MQTT_TIMEOUT_MS / 1000;
    co.maxInflight = max_inflight;
    co.connectProperties = &props;
    co.onSuccess5 = op_ok;
    co.onFailure5 = op_fail;
    co.context = &o;
    if ((rc = MQTTAsync_connect(c, &co)) != MQTTASYNC_SUCCESS) {
        say(client_id, "connect", MQTTAsync_strerror(rc));
        rc = -1;
    } else {
        rc = op_wait(&o, client_id, "connect");
    }
    MQTTProperties_free(&props);
    if (rc != 0 && !o.done)
        MQTTAsync_destroy(&c); /* -2 tells the caller its handle is gone */
    op_fini(&o);
    return rc == 0 ? 0 : (o.done ? -1 : -2);
}

static int client_subscribe(MQTTAsync c, const char *client_id, const char *filter)
{
    struct op o;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    int rc;

    op_init(&o);
    ro.onSuccess5 = op_ok;
    ro.onFailure5 = op_fail;
    ro.context = &o;
    if ((rc = MQTTAsync_subscribe(c, filter, 1, &ro)) != MQTTASYNC_SUCCESS) {
        say(client_id, "subscribe", MQTTAsync_strerror(rc));
        op_fini(&o);
        return -1;
    }
    rc = op_wait(&o, client_id, "subscribe");
    if (rc != 0 && !o.done) {
        MQTTAsync_destroy(&c);
        op_fini(&o);
        return -2;
    }
    op_fini(&o);
    return rc;
}

/* A normal DISCONNECT (reason 0), waiting up to TH_MQTT_TIMEOUT_MS for publishes in flight;
 * then the client is destroyed. 0 or -1. */
static int client_close(MQTTAsync c, const char *client_id)
{
    struct op o;
    MQTTAsync_disconnectOptions dopt = MQTTAsync_disconnectOptions_initializer5;
    int rc = 0;

    if (!c)
        return 0;
    op_init(&o);
    dopt.timeout = TH_MQTT_TIMEOUT_MS;
    dopt.onSuccess5 = op_ok;
    dopt.onFailure5 = op_fail;
    dopt.context = &o;
    if (MQTTAsync_isConnected(c)) {
        if ((rc = MQTTAsync_disconnect(c, &dopt)) != MQTTASYNC_SUCCESS) {
            say(client_id, "disconnect", MQTTAsync_strerror(rc));
            rc = -1;
        } else {
            rc = op_wait(&o, client_id, "disconnect");
        }
    }
    MQTTAsync_destroy(&c);
    op_fini(&o);
    return rc;
}

/* Connects (and subscribes filter when not NULL) on a new client; NULL on failure. */
static MQTTAsync client_open(const char *url, const char *client_id, bool clean, long long expiry_s,
                             int max_inflight, const char *filter)
{
    MQTTAsync c = client_new(url, client_id, 0);
    int rc;

    if (!c)
        return NULL;
    if ((rc = client_connect(c, client_id, clean, expiry_s, max_inflight)) != 0) {
        if (rc == -1) /* -2: already destroyed on the timeout */
            MQTTAsync_destroy(&c);
        return NULL;
    }
    if (filter && (rc = client_subscribe(c, client_id, filter)) != 0) {
        if (rc == -1)
            client_close(c, client_id);
        return NULL;
    }
    return c;
}

int th_mqtt_session(const char *url, const char *client_id, const char *filter, long long expiry_s)
{
    if (!url || !client_id || !filter || expiry_s <= 0) {
        say(client_id, "session", "needs a url, a client id, a filter and an expiry > 0");
        return -1;
    }
    MQTTAsync c = client_open(url, client_id, false, expiry_s, 10, filter);
    return c ? client_close(c, client_id) : -1;
}

int th_mqtt_drop_session(const char *url, const char *client_id)
{
    if (!url || !client_id) {
        say(client_id, "drop session", "needs a url and a client id");
        return -1;
    }
    MQTTAsync c = client_open(url, client_id, true, 0, 10, NULL);
    return c ? client_close(c, client_id) : -1;
}

/* --- publisher -------------------------------------------------------------------------------- */

struct th_mqtt_pub {
    MQTTAsync c;
    char *client_id;
    int window;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int inflight;
    int waiting; /* threads in send or flush waiting for acknowledgements */
    long long acked, failed;
    bool lost;
    char why[WHY_MAX]; /* the first failure */
};

/* Under p->mu: wakes a waiting sender or flusher. */
static void pub_wake_locked(struct th_mqtt_pub *p)
{
    if (p->waiting)
        pthread_cond_broadcast(&p->cv);
}

/* Under p->mu. */
static void pub_failed_locked(struct th_mqtt_pub *p, const char *why)
{
    if (p->failed++ == 0) {
        snprintf(p->why, sizeof p->why, "%s", why);
        say(p->client_id, "publish", why);
    }
}

static void pub_ok(void *ctx, MQTTAsync_successData5 *r)
{
    struct th_mqtt_pub *p = ctx;
    pthread_mutex_lock(&p->mu);
    p->inflight--;
    /* A PUBACK's reason code: 0x10 (no matching subscribers) is still a success. */
    if (r && r->reasonCode >= 0x80)
        pub_failed_locked(p, MQTTReasonCode_toString(r->reasonCode));
    else
        p->acked++;
    pub_wake_locked(p);
    pthread_mutex_unlock(&p->mu);
}

static void pub_fail(void *ctx, MQTTAsync_failureData5 *f)
{
    struct th_mqtt_pub *p = ctx;
    char why[WHY_MAX];
    failure_text(why, sizeof why, f);
    pthread_mutex_lock(&p->mu);
    p->inflight--;
    pub_failed_locked(p, why);
    pub_wake_locked(p);
    pthread_mutex_unlock(&p->mu);
}

static void pub_lost(void *ctx, char *cause)
{
    struct th_mqtt_pub *p = ctx;
    pthread_mutex_lock(&p->mu);
    p->lost = true;
    say(p->client_id, "connection lost", cause ? cause : "(no cause given)");
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    MQTTAsync_free(cause);
}

static int pub_arrived(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
    (void)ctx;
    (void)topic_len;
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

struct th_mqtt_pub *th_mqtt_pub_new(const char *url, const char *client_id, int window)
{
    struct th_mqtt_pub *p = NULL;
    int rc;

    if (!url || !client_id || window < 1 || window > 65535) {
        say(client_id, "publisher", "needs a url, a client id and a window of 1..65535");
        return NULL;
    }
    if (!(p = calloc(1, sizeof *p)) || !(p->client_id = strdup(client_id))) {
        free(p);
        say(client_id, "publisher", "out of memory");
        return NULL;
    }
    p->window = window;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (!(p->c = client_new(url, client_id, window)))
        goto fail;
    if ((rc = MQTTAsync_setCallbacks(p->c, p, pub_lost, pub_arrived, NULL)) != MQTTASYNC_SUCCESS) {
        say(client_id, "callbacks", MQTTAsync_strerror(rc));
        goto fail;
    }
    /* The window is kept here, not by paho's maxInflight: publishes paho holds back wait in its
     * command queue, which it scans for every command it sends (a third slower at 200). */
    if ((rc = client_connect(p->c, client_id, true, 0, 65535)) != 0) {
        if (rc == -2)
            p->c = NULL; /* destroyed on the timeout */
        goto fail;
    }
    return p;
fail:
    if (p->c)
        MQTTAsync_destroy(&p->c);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->client_id);
    free(p);
    return NULL;
}

static int pub_send(struct th_mqtt_pub *p, const char *topic, const void *payload, size_t len,
                    int qos, bool retained)
{
    MQTTAsync_message m = MQTTAsync_message_initializer;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    struct timespec end;
    int rc = 0;

    if (!p || !topic || (len && !payload) || len > INT32_MAX || qos < 0 || qos > 2) {
        if (p) {
            pthread_mutex_lock(&p->mu);
            pub_failed_locked(p, "bad arguments to th_mqtt_pub_send");
            pthread_mutex_unlock(&p->mu);
        }
        return -1;
    }
    pthread_mutex_lock(&p->mu);
    if (p->inflight >= p->window) {
        end = deadline(TH_MQTT_TIMEOUT_MS);
        p->waiting++;
        while (p->inflight >= p->window && !p->lost && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&p->cv, &p->mu, &end);
        p->waiting--;
    }
    if (p->lost || p->inflight >= p->window) {
        pub_failed_locked(p, p->lost ? "connection lost" : "no acknowledgement frees the window");
        pthread_mutex_unlock(&p->mu);
        return -1;
    }
    p->inflight++;
    pthread_mutex_unlock(&p->mu);

    m.payload = (void *)payload;
    m.payloadlen = (int)len;
    m.qos = qos;
    m.retained = retained ? 1 : 0;
    ro.onSuccess5 = pub_ok;
    ro.onFailure5 = pub_fail;
    ro.context = p;
    if ((rc = MQTTAsync_sendMessage(p->c, topic, &m, &ro)) != MQTTASYNC_SUCCESS) {
        pthread_mutex_lock(&p->mu);
        p->inflight--;
        pub_failed_locked(p, MQTTAsync_strerror(rc));
        pthread_mutex_unlock(&p->mu);
        return -1;
    }
    return 0;
}

int th_mqtt_pub_send(struct th_mqtt_pub *p, const char *topic, const void *payload, size_t len,
                     int qos)
{
    return pub_send(p, topic, payload, len, qos, false);
}

int th_mqtt_pub_retain(struct th_mqtt_pub *p, const char *topic, const void *payload, size_t len,
                       int qos)
{
    return pub_send(p, topic, payload, len, qos, true);
}

int th_mqtt_pub_flush(struct th_mqtt_pub *p, int timeout_ms)
{
    struct timespec end = deadline(timeout_ms);
    int rc = 0;

    if (!p)
        return -1;
    pthread_mutex_lock(&p->mu);
    p->waiting++;
    while (p->inflight > 0 && !p->lost && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&p->cv, &p->mu, &end);
    p->waiting--;
    int left = p->inflight;
    long long failed = p->failed;
    bool lost = p->lost;
    pthread_mutex_unlock(&p->mu);
    if (left > 0) {
        char why[WHY_MAX];
        snprintf(why, sizeof why, "%d publishes unacknowledged%s", left,
                 lost ? " when the connection was lost" : " at the timeout");
        say(p->client_id, "flush", why);
    }
    if (failed > 0) {
        char why[WHY_MAX + 64];
        snprintf(why, sizeof why, "%lld publishes failed, the first: %s", failed, p->why);
        say(p->client_id, "flush", why);
    }
    return left == 0 && failed == 0 ? 0 : -1;
}

long long th_mqtt_pub_acked(struct th_mqtt_pub *p)
{
    pthread_mutex_lock(&p->mu);
    long long v = p->acked;
    pthread_mutex_unlock(&p->mu);
    return v;
}

long long th_mqtt_pub_failed(struct th_mqtt_pub *p)
{
    pthread_mutex_lock(&p->mu);
    long long v = p->failed;
    pthread_mutex_unlock(&p->mu);
    return v;
}

void th_mqtt_pub_free(struct th_mqtt_pub *p)
{
    if (!p)
        return;
    /* paho fails what is still pending while it is destroyed: the callbacks need p. */
    client_close(p->c, p->client_id);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->client_id);
    free(p);
}

/* --- subscriber ------------------------------------------------------------------------------- */

struct th_mqtt_sub {
    MQTTAsync c;
    char *client_id;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct th_mqtt_msg **msgs; /* each allocated alone: a pointer handed out stays valid */
    size_t n, cap;
    bool lost;
};

static void sub_lost(void *ctx, char *cause)
{
    struct th_mqtt_sub *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->lost = true;
    say(s->client_id, "connection lost", cause ? cause : "(no cause given)");
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    MQTTAsync_free(cause);
}

static void msg_free(struct th_mqtt_msg *m)
{
    if (m) {
        free(m->topic);
        free(m->payload);
        free(m);
    }
}

/* Keeps the message; returning 0 when out of memory makes paho deliver it again. */
static int sub_arrived(void *ctx, char *topic, int topic_len, MQTTAsync_message *pm)
{
    struct th_mqtt_sub *s = ctx;
    size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    size_t len = pm->payloadlen > 0 ? (size_t)pm->payloadlen : 0;
    struct th_mqtt_msg *m = calloc(1, sizeof *m);

    if (!m || !(m->topic = malloc(tlen + 1)) || !(m->payload = malloc(len + 1))) {
        msg_free(m);
        return 0;
    }
    memcpy(m->topic, topic, tlen);
    m->topic[tlen] = '\0';
    if (len)
        memcpy(m->payload, pm->payload, len);
    m->payload[len] = '\0';
    m->len = len;
    m->qos = pm->qos;
    m->retained = pm->retained != 0;
    m->dup = pm->dup != 0;
    pthread_mutex_lock(&s->mu);
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        struct th_mqtt_msg **grown = realloc(s->msgs, cap * sizeof *grown);
        if (!grown) {
            pthread_mutex_unlock(&s->mu);
            msg_free(m);
            return 0;
        }
        s->msgs = grown;
        s->cap = cap;
    }
    s->msgs[s->n++] = m;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    MQTTAsync_freeMessage(&pm);
    MQTTAsync_free(topic);
    return 1;
}

static void sub_release(struct th_mqtt_sub *s)
{
    for (size_t i = 0; i < s->n; i++)
        msg_free(s->msgs[i]);
    free(s->msgs);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->client_id);
    free(s);
}

struct th_mqtt_sub *th_mqtt_sub_new(const char *url, const char *client_id, const char *filter)
{
    struct th_mqtt_sub *s = NULL;
    int rc;

    if (!url || !client_id) {
        say(client_id, "subscriber", "needs a url and a client id");
        return NULL;
    }
    if (!(s = calloc(1, sizeof *s)) || !(s->client_id = strdup(client_id))) {
        free(s);
        say(client_id, "subscriber", "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (!(s->c = client_new(url, client_id, 0)))
        goto fail;
    if ((rc = MQTTAsync_setCallbacks(s->c, s, sub_lost, sub_arrived, NULL)) != MQTTASYNC_SUCCESS) {
        say(client_id, "callbacks", MQTTAsync_strerror(rc));
        goto fail;
    }
    if ((rc = client_connect(s->c, client_id, false, 0, 10)) != 0) {
        if (rc == -2)
            s->c = NULL;
        goto fail;
    }
    if (filter && (rc = client_subscribe(s->c, client_id, filter)) != 0) {
        if (rc == -2)
            s->c = NULL;
        goto fail;
    }
    return s;
fail:
    if (s->c)
        client_close(s->c, client_id);
    sub_release(s);
    return NULL;
}

size_t th_mqtt_sub_wait(struct th_mqtt_sub *s, size_t n, int timeout_ms)
{
    struct timespec end = deadline(timeout_ms);
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    while (s->n < n && !s->lost && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&s->cv, &s->mu, &end);
    size_t got = s->n;
    pthread_mutex_unlock(&s->mu);
    return got;
}

size_t th_mqtt_sub_count(struct th_mqtt_sub *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

const struct th_mqtt_msg *th_mqtt_sub_get(struct th_mqtt_sub *s, size_t i)
{
    pthread_mutex_lock(&s->mu);
    const struct th_mqtt_msg *m = i < s->n ? s->msgs[i] : NULL;
    pthread_mutex_unlock(&s->mu);
    return m;
}

bool th_mqtt_sub_lost(struct th_mqtt_sub *s)
{
    pthread_mutex_lock(&s->mu);
    bool lost = s->lost;
    pthread_mutex_unlock(&s->mu);
    return lost;
}

void th_mqtt_sub_free(struct th_mqtt_sub *s)
{
    if (!s)
        return;
    client_close(s->c, s->client_id);
    sub_release(s);
}
