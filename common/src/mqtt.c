/* mqtt.c - the MQTT v5 consumer of mqtt.h on paho's MQTTAsync. paho reconnects by itself only
 * after a first connection succeeded, so a thread of ours retries until then. */
#include "sy/mqtt.h"

#include <MQTTAsync.h>
#include <errno.h>
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

#define FILTERS_MAX   64
#define RETRY_MS      2000
#define DISCONNECT_MS 3000
#define URL_MAX       1024

struct sy_mqtt {
    MQTTAsync client;
    struct sy_mqtt_opts o;
    char uri[URL_MAX], user[256], password[256];
    char *filters[FILTERS_MAX];
    int qos[FILTERS_MAX];

    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t retry;
    bool retry_started, stopping, connecting, ever_connected, disconnected;
    unsigned long failures;

    atomic_bool connected, subscribed;
    atomic_ulong connections, arrived;
    atomic_int unsubscribed; /* 0 waiting, 1 done, -1 failed */
};

/* scheme://[user[:password]@]host[:port][/...] into paho's tcp:// or ssl:// URI. */
static int parse_url(struct sy_mqtt *m, const char *url, char *err, size_t errlen)
{
    const char *p = strstr(url, "://"), *host, *at, *end;
    bool tls;

    if (!p)
        goto bad;
    if ((size_t)(p - url) == 3 && strncmp(url, "tcp", 3) == 0)
        tls = false;
    else if ((size_t)(p - url) == 4 && strncmp(url, "mqtt", 4) == 0)
        tls = false;
    else if ((size_t)(p - url) == 3 && strncmp(url, "ssl", 3) == 0)
        tls = true;
    else if ((size_t)(p - url) == 5 && strncmp(url, "mqtts", 5) == 0)
        tls = true;
    else
        goto bad;
    host = p + 3;
    end = host + strcspn(host, "/?#");
    at = memchr(host, '@', (size_t)(end - host));
    if (at) {
        const char *colon = memchr(host, ':', (size_t)(at - host));
        size_t ul = (size_t)((colon ? colon : at) - host);

        if (ul >= sizeof m->user || (colon && (size_t)(at - colon - 1) >= sizeof m->password))
            goto bad;
        memcpy(m->user, host, ul);
        m->user[ul] = '\0';
        if (colon) {
            memcpy(m->password, colon + 1, (size_t)(at - colon - 1));
            m->password[at - colon - 1] = '\0';
            if (m->password[0])
                sy_log_add_secret(m->password);
        }
        host = at + 1;
    }
    if (host == end)
        goto bad;
    if (snprintf(m->uri, sizeof m->uri, "%s://%.*s%s", tls ? "ssl" : "tcp", (int)(end - host), host,
                 memchr(host, ':', (size_t)(end - host)) ? ""
                 : tls                                   ? ":8883"
                                                         : ":1883") >= (int)sizeof m->uri)
        goto bad;
    return 0;
bad:
    snprintf(err, errlen, "SY_MQTT_URL: expected tcp://, mqtt://, ssl:// or mqtts:// host[:port]");
    return -SY_ECONFIG;
}

/* --- callbacks (paho's threads) --------------------------------------------------------------- */

static int on_arrived(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg)
{
    struct sy_mqtt *m = ctx;
    size_t tl = topic_len > 0 ? (size_t)topic_len : strlen(topic);

    atomic_fetch_add(&m->arrived, 1);
    m->o.on_message(m->o.ud, topic, tl, msg->payload,
                    msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0, msg->dup != 0);
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1; /* handled: never let paho queue it (it would acknowledge it anyway) */
}

static void on_lost(void *ctx, char *cause)
{
    struct sy_mqtt *m = ctx;

    atomic_store(&m->connected, false);
    atomic_store(&m->subscribed, false);
    sy_log_warn("mqtt.lost", "connection to %s lost (%s); reconnecting", m->uri,
                cause ? cause : "no reason given");
}

static void on_subscribed(void *ctx, MQTTAsync_successData5 *r)
{
    struct sy_mqtt *m = ctx;
    int bad = 0;

    if (m->o.nfilters == 1) {
        bad = r->reasonCode >= MQTTREASONCODE_UNSPECIFIED_ERROR;
    } else {
        for (int i = 0; i < r->alt.sub.reasonCodeCount; i++)
            bad += r->alt.sub.reasonCodes[i] >= MQTTREASONCODE_UNSPECIFIED_ERROR;
    }
    if (bad) {
        sy_log_error("mqtt.subscribe", "%s refused %d of %zu subscriptions (%s)", m->uri, bad,
                     m->o.nfilters, MQTTReasonCode_toString(r->reasonCode));
        return;
    }
    atomic_store(&m->subscribed, true);
    sy_log_info("mqtt.subscribed", "%zu subscription(s) at QoS 1 on %s, first %s", m->o.nfilters,
                m->uri, m->filters[0]);
}

static void on_subscribe_failed(void *ctx, MQTTAsync_failureData5 *r)
{
    struct sy_mqtt *m = ctx;

    sy_log_error("mqtt.subscribe", "subscribing on %s failed: %s (%d)", m->uri,
                 r && r->message ? r->message : MQTTReasonCode_toString(r ? r->reasonCode : 0),
                 r ? r->code : 0);
}

/* Every successful connection, the first and each automatic one: subscribe (again). The session
 * keeps the subscriptions when it survived, but a broker that lost it would send nothing. */
static void on_connected(void *ctx, char *cause)
{
    struct sy_mqtt *m = ctx;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    int rc;

    (void)cause;
    atomic_store(&m->connected, true);
    atomic_fetch_add(&m->connections, 1);
    pthread_mutex_lock(&m->mu);
    m->ever_connected = true;
    m->connecting = false;
    m->failures = 0;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    sy_log_info("mqtt.connected", "connected to %s as %s", m->uri, m->o.client_id);
    ro.onSuccess5 = on_subscribed;
    ro.onFailure5 = on_subscribe_failed;
    ro.context = m;
    rc = MQTTAsync_subscribeMany(m->client, (int)m->o.nfilters, m->filters, m->qos, &ro);
    if (rc != MQTTASYNC_SUCCESS)
        sy_log_error("mqtt.subscribe", "cannot subscribe on %s: %s", m->uri,
                     MQTTAsync_strerror(rc));
}

static void on_connect_failed(void *ctx, MQTTAsync_failureData5 *r)
{
    struct sy_mqtt *m = ctx;
    unsigned long n;

    pthread_mutex_lock(&m->mu);
    m->connecting = false;
    n = ++m->failures;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    /* The first failure, then one line a minute or so while the broker stays away. */
    if (n == 1 || n % 30 == 0)
        sy_log_warn("mqtt.connect", "cannot connect to %s (%s, %lu attempts); retrying", m->uri,
                    r && r->message ? r->message : MQTTReasonCode_toString(r ? r->reasonCode : 0),
                    n);
}

static void on_disconnected(void *ctx, MQTTAsync_successData5 *r)
{
    struct sy_mqtt *m = ctx;

    (void)r;
    pthread_mutex_lock(&m->mu);
    m->disconnected = true;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

static void on_disconnect_failed(void *ctx, MQTTAsync_failureData5 *r)
{
    (void)r;
    on_disconnected(ctx, NULL);
}

/* --- connecting ------------------------------------------------------------------------------- */

static int connect_once(struct sy_mqtt *m)
{
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer5;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    MQTTProperties props = MQTTProperties_initializer;
    MQTTProperty p;
    int rc;

    co.keepAliveInterval = m->o.keepalive_s > 0 ? m->o.keepalive_s : 30;
    co.cleanstart = 0;
    co.automaticReconnect = 1;
    co.minRetryInterval = 1;
    co.maxRetryInterval = 30;
    co.connectTimeout = 10;
    co.onSuccess5 = NULL; /* on_connected covers it */
    co.onFailure5 = on_connect_failed;
    co.context = m;
    if (m->user[0])
        co.username = m->user;
    if (m->password[0])
        co.password = m->password;
    if (strncmp(m->uri, "ssl://", 6) == 0) {
        ssl.enableServerCertAuth = 1;
        ssl.verify = 1;
        co.ssl = &ssl;
    }
    p.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL;
    p.value.integer4 = (unsigned)m->o.session_expiry_s;
    MQTTProperties_add(&props, &p);
    p.identifier = MQTTPROPERTY_CODE_RECEIVE_MAXIMUM;
    p.value.integer2 = (unsigned short)m->o.receive_max;
    MQTTProperties_add(&props, &p);
    co.connectProperties = &props;
    rc = MQTTAsync_connect(m->client, &co);
    MQTTProperties_free(&props);
    return rc;
}

/* Until the first connection: paho's automatic reconnection takes over from there. */
static void *retry_main(void *arg)
{
    struct sy_mqtt *m = arg;

    pthread_mutex_lock(&m->mu);
    while (!m->stopping && !m->ever_connected) {
        if (!m->connecting) {
            int rc;

            m->connecting = true;
            pthread_mutex_unlock(&m->mu);
            rc = connect_once(m);
            pthread_mutex_lock(&m->mu);
            if (rc != MQTTASYNC_SUCCESS) {
                m->connecting = false;
                sy_log_warn("mqtt.connect", "cannot start connecting to %s: %s", m->uri,
                            MQTTAsync_strerror(rc));
            }
        }
        struct timespec until = sy_cond_at(sy_mono_ms() + RETRY_MS);

        /* wakes on stop, on a failure (then waits the rest out below) and on success */
        pthread_cond_timedwait(&m->cv, &m->mu, &until);
        if (!m->stopping && !m->ever_connected && !m->connecting) {
            until = sy_cond_at(sy_mono_ms() + RETRY_MS);
            pthread_cond_timedwait(&m->cv, &m->mu, &until);
        }
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

struct sy_mqtt *sy_mqtt_start(const struct sy_mqtt_opts *o, char *err, size_t errlen)
{
    MQTTAsync_createOptions cr = MQTTAsync_createOptions_initializer5;
    struct sy_mqtt *m;
    int rc;

    if (!o || !o->url || !o->client_id || !o->client_id[0] || !o->on_message || o->nfilters == 0 ||
        o->nfilters > FILTERS_MAX || o->receive_max < 1 || o->receive_max > 65535 ||
        o->session_expiry_s < 0 || o->session_expiry_s > 0xffffffffLL) {
        snprintf(err, errlen,
                 "mqtt: bad options (url, client id, 1..%d filters, receive "
                 "maximum 1..65535, session expiry)",
                 FILTERS_MAX);
        return NULL;
    }
    if (!(m = calloc(1, sizeof *m))) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->o = *o;
    m->o.client_id = NULL; /* copies of our own, below */
    m->o.filters = NULL;
    pthread_mutex_init(&m->mu, NULL);
    sy_cond_init(&m->cv);
    if (parse_url(m, o->url, err, errlen) != 0)
        goto fail;
    for (size_t i = 0; i < o->nfilters; i++) {
        if (!(m->filters[i] = strdup(o->filters[i]))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        m->qos[i] = 1;
    }
    if (!(m->o.client_id = strdup(o->client_id))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    cr.sendWhileDisconnected = 0;
    rc = MQTTAsync_createWithOptions(&m->client, m->uri, m->o.client_id,
                                     MQTTCLIENT_PERSISTENCE_NONE, NULL, &cr);
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(err, errlen, "mqtt: cannot create the client: %s", MQTTAsync_strerror(rc));
        m->client = NULL;
        goto fail;
    }
    if ((rc = MQTTAsync_setCallbacks(m->client, m, on_lost, on_arrived, NULL)) !=
            MQTTASYNC_SUCCESS ||
        (rc = MQTTAsync_setConnected(m->client, m, on_connected)) != MQTTASYNC_SUCCESS) {
        snprintf(err, errlen, "mqtt: cannot set callbacks: %s", MQTTAsync_strerror(rc));
        goto fail;
    }
    if ((rc = pthread_create(&m->retry, NULL, retry_main, m)) != 0) {
        snprintf(err, errlen, "mqtt: cannot start a thread: %s", strerror(rc));
        goto fail;
    }
    m->retry_started = true;
    return m;
fail:
    sy_mqtt_stop(m);
    return NULL;
}

bool sy_mqtt_ready(const struct sy_mqtt *m)
{
    return m && atomic_load(&m->connected) && atomic_load(&m->subscribed);
}

unsigned long sy_mqtt_connections(const struct sy_mqtt *m)
{
    return m ? atomic_load(&m->connections) : 0;
}

static void on_unsubscribed(void *ctx, MQTTAsync_successData5 *r)
{
    struct sy_mqtt *m = ctx;

    (void)r;
    atomic_store(&m->unsubscribed, 1);
}

static void on_unsubscribe_failed(void *ctx, MQTTAsync_failureData5 *r)
{
    struct sy_mqtt *m = ctx;

    (void)r;
    atomic_store(&m->unsubscribed, -1);
}

/* Disconnects (ending the session with end_session) and frees everything. */
static void finish(struct sy_mqtt *m, bool end_session)
{
    pthread_mutex_lock(&m->mu);
    m->stopping = true;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    if (m->retry_started)
        pthread_join(m->retry, NULL);
    if (m->client) {
        if (MQTTAsync_isConnected(m->client)) {
            MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
            MQTTProperty p = {.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL};
            struct timespec until;

            if (end_session) {
                p.value.integer4 = 0;
                MQTTProperties_add(&d.properties, &p);
            }
            d.timeout = DISCONNECT_MS;
            d.onSuccess5 = on_disconnected;
            d.onFailure5 = on_disconnect_failed;
            d.context = m;
            if (MQTTAsync_disconnect(m->client, &d) == MQTTASYNC_SUCCESS) {
                until = sy_cond_at(sy_mono_ms() + DISCONNECT_MS + 1000);
                pthread_mutex_lock(&m->mu);
                while (!m->disconnected &&
                       pthread_cond_timedwait(&m->cv, &m->mu, &until) != ETIMEDOUT)
                    ;
                pthread_mutex_unlock(&m->mu);
            }
            MQTTProperties_free(&d.properties);
        }
        MQTTAsync_destroy(&m->client);
    }
    for (size_t i = 0; i < FILTERS_MAX; i++)
        free(m->filters[i]);
    free((char *)m->o.client_id);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void sy_mqtt_stop(struct sy_mqtt *m)
{
    if (m)
        finish(m, false);
}

void sy_mqtt_leave(struct sy_mqtt *m, int quiet_ms, int max_ms)
{
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    long long end = sy_mono_ms() + max_ms, quiet_since;
    unsigned long seen;

    if (!m)
        return;
    if (!m->client || !MQTTAsync_isConnected(m->client)) {
        sy_log_warn("mqtt.leave",
                    "not connected to %s: the session of %s stays (it ends when "
                    "it expires, with whatever the broker queued for it)",
                    m->uri, m->o.client_id);
        finish(m, false);
        return;
    }
    ro.onSuccess5 = on_unsubscribed;
    ro.onFailure5 = on_unsubscribe_failed;
    ro.context = m;
    if (MQTTAsync_unsubscribeMany(m->client, (int)m->o.nfilters, m->filters, &ro) !=
        MQTTASYNC_SUCCESS) {
        finish(m, false);
        return;
    }
    while (atomic_load(&m->unsubscribed) == 0 && sy_mono_ms() < end)
        usleep(10000);
    if (atomic_load(&m->unsubscribed) != 1) {
        sy_log_warn("mqtt.leave", "%s did not confirm the unsubscription: keeping the session",
                    m->uri);
        finish(m, false);
        return;
    }
    /* What was queued or in flight for us still comes: take it before ending the session. */
    seen = atomic_load(&m->arrived);
    quiet_since = sy_mono_ms();
    while (sy_mono_ms() < end && sy_mono_ms() - quiet_since < quiet_ms) {
        usleep(10000);
        if (atomic_load(&m->arrived) != seen) {
            seen = atomic_load(&m->arrived);
            quiet_since = sy_mono_ms();
        }
    }
    sy_log_info("mqtt.leave", "left %s: unsubscribed, session of %s ended", m->uri, m->o.client_id);
    finish(m, true);
}
