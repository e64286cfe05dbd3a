/* gateway.h - sy-gateway's shared state, and how a route turns a request into a message that
 * the broker confirmed before the client hears 2xx. */
#ifndef GW_GATEWAY_H
#define GW_GATEWAY_H

#include <jansson.h>
#include <stdbool.h>

#include "http.h"

struct sy_worker;
struct sy_handler;
struct gw_webhooks; /* webhooks.yaml, see webhooks.h */
struct gw_redis_pool;
struct gw_auth; /* the REST API's keys and tokens, see auth.h */
struct gw_pg_pool;
struct gw_hookdb; /* Chatwoot hooks stored in PostgreSQL, see hookdb.h */

/* Every route sy-gateway serves, in the order they are tried (the API's and the webhooks';
 * /healthz, /readyz and /metrics are the runtime's, on SY_HTTP_ADDR). */
extern const struct gw_route gw_routes[];
extern const size_t gw_nroutes;

/* The handler sy-gateway runs (main.c). */
extern const struct sy_handler gateway_handler;

/* Settings (environment variables), loaded by the runtime before init. */
struct gw_conf {
    char *addr;                   /* SY_GATEWAY_ADDR: where the API and webhooks listen */
    long long max_body;           /* SY_GATEWAY_MAX_BODY: bytes */
    long long max_conns;          /* SY_GATEWAY_CONNECTIONS */
    char *webhooks;               /* SY_GATEWAY_WEBHOOKS: the webhooks file */
    long long publish_timeout_ms; /* SY_GATEWAY_PUBLISH_TIMEOUT */
    char *jwt_secret;             /* SY_GATEWAY_JWT_SECRET(_FILE); NULL: JWTs refused */
};

struct gw {
    struct sy_worker *w;
    const struct gw_conf *conf;
    struct gw_server *server;
    struct gw_redis_pool *redis; /* for delivery dedup; NULL without SY_REDIS_URL */
    struct gw_webhooks *hooks;
    struct gw_auth *auth;     /* API keys (in SY_PG_URL) and JWTs for the REST API */
    struct gw_pg_pool *pg;    /* the API's reads; NULL without SY_PG_URL (reads answer 503) */
    struct gw_hookdb *hookdb; /* hooks not in webhooks.yaml; NULL without SY_PG_URL */
    _Atomic int accepting;    /* 1 once the runtime runs its broker thread (set by run) */
};

/* Publishes a message of `type` whose data is the JSON object `data`, and answers: 202
 * {"id": "<message id>", "status": "accepted"} once the broker confirmed it; 400 naming the
 * field when data breaks the type's schema; 503 with Retry-After when the broker is away or
 * did not confirm in time. id NULL: a fresh id. Returns 0 when published. */
int gw_publish(struct gw *g, const struct gw_request *rq, struct gw_response *rs, const char *type,
               const char *id, const json_t *data);

/* Delivery dedup in Redis: marks `key` seen for ttl_s. 1 when this is the first time, 0 when
 * it was seen already, negative when Redis is unreachable (the caller then goes on without
 * dedup: consumers deduplicate by message id too). gw_seen_forget undoes a mark whose
 * publish failed, so the sender's retry is not taken for a duplicate. */
int gw_seen_first(struct gw *g, const char *key, int ttl_s);
void gw_seen_forget(struct gw *g, const char *key);

#endif
