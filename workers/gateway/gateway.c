/* gateway.c - sy-gateway's handler: settings, the HTTP server and its routes, publishing a
 * request as a message the broker confirmed, and the Redis pool behind delivery dedup. */
#include "gateway.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/api.h"
#include "gateway/auth.h"
#include "gateway/hookdb.h"
#include "gateway/pgpool.h"
#include "gateway/webhooks.h"
#include "sy/config.h"
#include "sy/crypto.h"
#include "sy/err.h"
#include "sy/json.h"
#include "sy/log.h"
#include "sy/msg.h"
#include "sy/redis.h"
#include "sy/schema.h"
#include "sy/worker.h"

#define REDIS_CONNS      4    /* pooled connections; requests beyond wait for one */
#define REDIS_TIMEOUT_MS 1000 /* connect and each command: dedup must not stall a webhook */
#define RETRY_AFTER_S    5
#define READ_CONNS       8 /* PostgreSQL connections of the API's and the hooks' reads */

#define C_(field) offsetof(struct gw_conf, field)
static const struct sy_conf_key gw_conf_keys[] = {
    {"SY_GATEWAY_ADDR", SY_CONF_STR, "127.0.0.1:8080", 0, 0, C_(addr), 0,
     "host:port of the API and the webhooks (health and metrics stay on SY_HTTP_ADDR)"},
    /* At most half a message's limit (SY_MSG_MAX_BYTES): a body is published whole, inside
     * an envelope with a few fields of its own. */
    {"SY_GATEWAY_MAX_BODY", SY_CONF_INT, "1048576", 1024, SY_MSG_MAX_BYTES / 2, C_(max_body), 0,
     "largest request body in bytes; larger ones get 413"},
    {"SY_GATEWAY_CONNECTIONS", SY_CONF_INT, "1024", 1, 4096, C_(max_conns), 0,
     "connections served at once, each on a thread of its own (a request may wait up to "
     "SY_GATEWAY_PUBLISH_TIMEOUT for the broker); more are closed when accepted"},
    {"SY_GATEWAY_WEBHOOKS", SY_CONF_STR, SY_DEFAULT_ROOT "/deploy/config/webhooks.yaml", 0, 0,
     C_(webhooks), 0,
     "the webhooks file: Chatwoot hooks and WhatsApp, secrets named by env or file"},
    {"SY_GATEWAY_PUBLISH_TIMEOUT", SY_CONF_MS, "5s", 100, 60000, C_(publish_timeout_ms), 0,
     "how long a request waits for the broker's confirm before it is answered 503"},
    {"SY_GATEWAY_JWT_SECRET", SY_CONF_SECRET, NULL, 0, 0, C_(jwt_secret), 0,
     "HMAC key of the REST API's HS256 tokens; unset: tokens are refused, API keys only"},
    {NULL, SY_CONF_STR, NULL, 0, 0, 0, 0, NULL},
};
#undef C_

const struct gw_route gw_routes[] = {
    {"POST", "/api/grievances/", gw_api_grievance_create},
    {"GET", "/api/grievances/{id}/", gw_api_grievance_get},
    {"PUT", "/api/grievances/{id}/", gw_api_grievance_update},
    {"GET", "/api/grievances/{id}/status/", gw_api_status_get},
    {"PUT", "/api/grievances/{id}/status/", gw_api_status_update},
    {"POST", "/api/users/", gw_api_user_create},
    {"GET", "/api/users/{id}/", gw_api_user_get},
    {"PUT", "/api/users/{id}/", gw_api_user_update},
    {"POST", "/api/files/", gw_api_file_create},
    {"GET", "/api/files/{id}/", gw_api_file_get},
    {"POST", "/webhooks/chatwoot/{hook_id}", gw_chatwoot_event},
    {"GET", "/webhooks/whatsapp", gw_whatsapp_verify},
    {"POST", "/webhooks/whatsapp", gw_whatsapp_event},
};
const size_t gw_nroutes = sizeof gw_routes / sizeof gw_routes[0];

/* --- Redis pool --------------------------------------------------------------------------- */

/* A few connections shared by the request threads; each is opened when first needed, and one
 * that failed a command is closed so the next user connects afresh. */
struct gw_redis_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const char *url; /* the runtime's */
    struct sy_redis *idle[REDIS_CONNS];
    size_t nidle;
    size_t nopen; /* idle plus taken */
    atomic_bool ok;
};

static struct gw_redis_pool *pool_new(const char *url)
{
    struct gw_redis_pool *p = calloc(1, sizeof *p);

    if (!p)
        return NULL;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return NULL;
    }
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return NULL;
    }
    p->url = url;
    atomic_init(&p->ok, true);
    return p;
}

static void pool_destroy(struct gw_redis_pool *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nidle; i++)
        sy_redis_destroy(p->idle[i]);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static void pool_health(struct gw_redis_pool *p, bool ok, const char *why)
{
    if (ok && !atomic_exchange(&p->ok, true))
        sy_log_info("gateway.redis", "Redis is reachable again: delivery dedup resumes");
    else if (!ok && atomic_exchange(&p->ok, false))
        sy_log_write(SY_LOG_WARN, "gateway.redis", -1, why,
                     "Redis is unreachable: deliveries pass without dedup");
}

/* A connection for this thread alone, or NULL when Redis cannot be reached. */
static struct sy_redis *pool_take(struct gw_redis_pool *p)
{
    struct sy_redis *r = NULL;
    char err[256];

    pthread_mutex_lock(&p->mu);
    while (p->nidle == 0 && p->nopen == REDIS_CONNS)
        pthread_cond_wait(&p->cv, &p->mu);
    if (p->nidle > 0) {
        r = p->idle[--p->nidle];
        pthread_mutex_unlock(&p->mu);
        return r;
    }
    p->nopen++;
    pthread_mutex_unlock(&p->mu);

    r = sy_redis_connect(p->url, REDIS_TIMEOUT_MS, err, sizeof err);
    if (!r) {
        pool_health(p, false, err);
        pthread_mutex_lock(&p->mu);
        p->nopen--;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    return r;
}

/* Gives a connection back; one whose last command failed with rc is closed instead. */
static void pool_put(struct gw_redis_pool *p, struct sy_redis *r, int rc)
{
    bool broken = rc < 0 && rc != -SY_EINVAL;

    pool_health(p, !broken, broken ? sy_strerror(rc) : NULL);
    pthread_mutex_lock(&p->mu);
    if (broken) {
        sy_redis_destroy(r);
        p->nopen--;
    } else {
        p->idle[p->nidle++] = r;
    }
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

int gw_seen_first(struct gw *g, const char *key, int ttl_s)
{
    struct sy_redis *r;
    uint8_t raw[16];
    char token[2 * sizeof raw + 1];
    int rc;

    if (!g->redis)
        return -SY_ECONFIG;
    /* Each claim writes a value of its own, so a resend after a lost answer is not taken for
     * somebody else's earlier mark (see sy_redis_set_nx). */
    if (sy_random_bytes(raw, sizeof raw) != 0)
        return -SY_EIO;
    sy_hex_encode(raw, sizeof raw, token);
    if (!(r = pool_take(g->redis)))
        return -SY_ECONN;
    rc = sy_redis_set_nx(r, key, token, ttl_s * 1000);
    pool_put(g->redis, r, rc);
    return rc;
}

void gw_seen_forget(struct gw *g, const char *key)
{
    struct sy_redis *r;
    int rc;

    if (!g->redis || !(r = pool_take(g->redis)))
        return;
    rc = sy_redis_del(r, key);
    pool_put(g->redis, r, rc);
    if (rc != 0)
        sy_log_write(SY_LOG_WARN, "gateway.dedup", -1, sy_strerror(rc),
                     "could not forget a delivery mark; the sender's retry may be taken for a "
                     "duplicate until it expires");
}

/* --- publishing --------------------------------------------------------------------------- */

/* A schema error reads "data.a.b: why"; the field is what follows "data.", up to the colon. */
static void schema_field(const char *err, char *field, size_t fieldsz)
{
    const char *colon = strstr(err, ": ");
    size_t n;

    field[0] = '\0';
    if (strncmp(err, "data.", 5) != 0 || !colon)
        return;
    n = (size_t)(colon - (err + 5));
    if (n >= fieldsz)
        n = fieldsz - 1;
    memcpy(field, err + 5, n);
    field[n] = '\0';
}

/* Checks data against the type's schema exactly as the runtime will, for an error naming the
 * field. 0, or a filled 400/500 response. */
static int check_data(struct gw *g, const struct gw_request *rq, struct gw_response *rs,
                      const char *type, const char *id, const void *mp, size_t mplen)
{
    struct sy_msg *msg = NULL;
    void *body = NULL;
    size_t len = 0;
    char err[512], field[256];
    int rc;

    rc = sy_msg_encode(type, id, sy_worker_name(g->w), 0, mp, mplen, &body, &len);
    if (rc != 0) {
        gw_error(rs, rq, 500, "internal", NULL, "cannot build the message: %s", sy_strerror(rc));
        return rc;
    }
    rc = sy_msg_decode(body, len, &msg, err, sizeof err);
    if (rc == 0)
        rc = sy_schemas_check(sy_worker_schemas(g->w), msg, err, sizeof err);
    if (rc != 0) {
        schema_field(err, field, sizeof field);
        gw_error(rs, rq, 400, "invalid", field[0] ? field : NULL, "%s", err);
    }
    sy_msg_destroy(msg);
    free(body);
    return rc;
}

int gw_publish(struct gw *g, const struct gw_request *rq, struct gw_response *rs, const char *type,
               const char *id, const json_t *data)
{
    char fresh[37], used[SY_MSG_ID_MAX + 1];
    void *mp = NULL;
    size_t mplen = 0;
    int rc;

    if (!atomic_load(&g->accepting)) {
        gw_error(rs, rq, 503, "unavailable", NULL, "the gateway is starting; try again");
        rs->retry_after_s = RETRY_AFTER_S;
        return -SY_ESHUTDOWN;
    }
    if (!id) {
        /* One id for the check and the publish, so the answer names what was published. */
        sy_uuid4(fresh);
        id = fresh;
    }
    rc = sy_json_to_msgpack(data, &mp, &mplen);
    if (rc != 0) {
        gw_error(rs, rq, 500, "internal", NULL, "cannot encode the message: %s", sy_strerror(rc));
        return rc;
    }
    /* The runtime checks the schema before it publishes; only a refusal pays for a second
     * check that names the field. */
    rc = sy_worker_publish(g->w, type, id, mp, mplen, (int)g->conf->publish_timeout_ms, used);
    switch (rc) {
    case 0:
        gw_json(rs, 202, json_pack("{s:s, s:s}", "id", used, "status", "accepted"));
        break;
    case -SY_ECONN:
    case -SY_ETIMEOUT:
    case -SY_ENACK:
    case -SY_ESHUTDOWN:
        sy_log_write(SY_LOG_WARN, "gateway.publish", -1, sy_strerror(rc),
                     "%s %s not confirmed by the broker", type, id);
        gw_error(rs, rq, 503, "unavailable", NULL, "the message broker did not confirm: %s",
                 sy_strerror(rc));
        rs->retry_after_s = RETRY_AFTER_S;
        break;
    case -SY_EUNROUTABLE:
        sy_log_error("gateway.publish",
                     "%s has no queue bound in the topology: a configuration error", type);
        gw_error(rs, rq, 500, "unroutable", NULL, "no consumer is configured for %s", type);
        break;
    case -SY_ESCHEMA:
        if (check_data(g, rq, rs, type, id, mp, mplen) == 0)
            gw_error(rs, rq, 400, "invalid", NULL, "the message breaks the schema of %s", type);
        break;
    default:
        sy_log_write(SY_LOG_ERROR, "gateway.publish", -1, sy_strerror(rc), "%s %s not published",
                     type, id);
        gw_error(rs, rq, 500, "internal", NULL, "not published: %s", sy_strerror(rc));
        break;
    }
    free(mp);
    return rc;
}

/* --- lifecycle ---------------------------------------------------------------------------- */

static void gw_exit(void *state)
{
    struct gw *g = state;

    if (!g)
        return;
    gw_server_stop(g->server);
    gw_webhooks_destroy(g->hooks);
    gw_auth_destroy(g->auth);
    gw_hookdb_destroy(g->hookdb);
    gw_pg_pool_destroy(g->pg);
    pool_destroy(g->redis);
    free(g);
}

static int gw_init(struct sy_worker *w, void **state)
{
    const struct gw_conf *conf = sy_worker_conf(w);
    struct gw *g = calloc(1, sizeof *g);
    const char *redis_url = sy_worker_url(w, "redis");
    char err[1024];
    int rc = -SY_ECONFIG;

    if (!g)
        return -SY_ENOMEM;
    g->w = w;
    g->conf = conf;
    atomic_init(&g->accepting, 0);
    g->hooks = gw_webhooks_load(conf->webhooks, err, sizeof err);
    if (!g->hooks) {
        sy_log_write(SY_LOG_ERROR, "worker.config", -1, err, "SY_GATEWAY_WEBHOOKS: bad file");
        goto fail;
    }
    g->auth = gw_auth_new(sy_worker_url(w, "pg"), (const uint8_t *)conf->jwt_secret,
                          conf->jwt_secret ? strlen(conf->jwt_secret) : 0, 0, err, sizeof err);
    if (!g->auth) {
        sy_log_write(SY_LOG_ERROR, "worker.config", -1, err, "SY_GATEWAY_JWT_SECRET: refused");
        goto fail;
    }
    /* A few connections: a read is one short statement, and PostgreSQL's connections are
     * dear (its default max_connections is 100 for the whole fleet). */
    if (sy_worker_url(w, "pg") &&
        (!(g->pg = gw_pg_pool_new(sy_worker_url(w, "pg"), READ_CONNS, "API and hook reads")) ||
         !(g->hookdb = gw_hookdb_new(g->pg)))) {
        rc = -SY_ENOMEM;
        goto fail;
    }
    if (redis_url && !(g->redis = pool_new(redis_url))) {
        rc = -SY_ENOMEM;
        goto fail;
    }
    struct gw_server_opts o = {
        .addr = conf->addr,
        .max_body = (size_t)conf->max_body,
        .max_conns = (unsigned)conf->max_conns,
        .routes = gw_routes,
        .nroutes = gw_nroutes,
        .ctx = g,
    };
    g->server = gw_server_start(&o, err, sizeof err);
    if (!g->server) {
        sy_log_write(SY_LOG_ERROR, "worker.config", -1, err, "SY_GATEWAY_ADDR: cannot serve");
        goto fail;
    }
    sy_log_info(
        "gateway.start",
        "serving on port %d: up to %d connections, bodies up to %lld bytes, publish timeout %lld "
        "ms, webhooks from %s%s, delivery dedup %s",
        gw_server_port(g->server), (int)conf->max_conns, conf->max_body, conf->publish_timeout_ms,
        conf->webhooks, g->hookdb ? " and the database's GLPI hooks" : "",
        g->redis ? "in Redis" : "off");
    *state = g;
    return 0;
fail:
    gw_exit(g);
    return rc;
}

static int gw_run(void *state)
{
    struct gw *g = state;

    /* The runtime's broker thread runs now: requests may publish. */
    atomic_store(&g->accepting, 1);
    while (!sy_worker_sleep(g->w, 60 * 1000)) {
    }
    /* Requests in progress finish their publishes while the broker still runs. */
    gw_server_stop(g->server);
    g->server = NULL;
    return 0;
}

static int gw_ready(void *state)
{
    struct gw *g = state;
    struct sy_redis *r;
    int rc;

    if (!atomic_load(&g->accepting))
        return -1;
    if (!g->redis)
        return 0;
    if (!(r = pool_take(g->redis)))
        return -1;
    rc = sy_redis_ping(r);
    pool_put(g->redis, r, rc);
    return rc == 0 ? 0 : -1;
}

const struct sy_handler gateway_handler = {
    .name = "gateway",
    .conf = gw_conf_keys,
    .conf_size = sizeof(struct gw_conf),
    .init = gw_init,
    .run = gw_run,
    .ready = gw_ready,
    .exit = gw_exit,
};
