/* glpi.c - sy-glpi's handler: one chatwoot.* message at a time (see glpi.h). */
#include "glpi/glpi.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "glpi/client.h"
#include "glpi/hooks.h"
#include "glpi/mirror.h"
#include "sy/clock.h"
#include "sy/err.h"
#include "sy/http.h"
#include "sy/json.h"
#include "sy/log.h"
#include "sy/metrics.h"
#include "sy/pg.h"
#include "sy/redis.h"

#define HOOK_TTL_MS      30000 /* settings changed with syctl reach a running worker this late */
#define REDIS_TIMEOUT_MS 5000
#define READY_EVERY_MS   5000

struct gl_conf {
    long long connect_timeout_ms;
    long long timeout_ms;
};

#define C_(field) offsetof(struct gl_conf, field)
static const struct sy_conf_key gl_conf_keys[] = {
    {"SY_GLPI_CONNECT_TIMEOUT", SY_CONF_MS, "5s", 100, 60000, C_(connect_timeout_ms), 0,
     "how long connecting to a GLPI server may take"},
    {"SY_GLPI_TIMEOUT", SY_CONF_MS, "30s", 1000, 300000, C_(timeout_ms), 0,
     "how long one GLPI call may take in all (GLPI's searches are slow on big ticket tables)"},
    {NULL, SY_CONF_STR, NULL, 0, 0, 0, 0, NULL},
};
#undef C_

/* A hook's settings and session as this process last read them. A session replaced after a
 * change of settings is kept (other threads may be in a call with it) and ended at exit. */
struct hook {
    struct hook *next;
    char *id;
    struct glpi_session *s; /* NULL: no such hook (then `missing` since loaded_ms) */
    int64_t loaded_ms;
};

struct gl {
    struct sy_worker *w;
    const struct gl_conf *conf;
    const char *pg_url, *redis_url;
    pthread_mutex_t mu; /* hooks and retired */
    struct hook *hooks;
    struct glpi_session **retired;
    size_t nretired;
    struct sy_pg_probe *ready; /* /readyz's own connection and last answer */
    struct sy_counter *unhandled, *no_hook, *mirrored, *refused;
};

struct gl_thread {
    struct gl *g;
    struct sy_pg *pg;
    struct sy_redis *redis;
    struct sy_http *http;
};

static struct sy_http *http_new(const struct gl *g, bool allow_http)
{
    struct sy_http_opts o = {
        .connect_timeout_ms = (long)g->conf->connect_timeout_ms,
        .timeout_ms = (long)g->conf->timeout_ms,
        .body_max = 8u * 1024u * 1024u,
        .insecure_http = allow_http,
    };

    return sy_http_new(&o);
}

/* --- hooks ---------------------------------------------------------------------------------- */

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool hook_same(const struct glpi_hook *a, const struct glpi_hook *b)
{
    return same(a->api_url, b->api_url) && same(a->app_token, b->app_token) &&
           same(a->user_token, b->user_token) && same(a->webhook_secret, b->webhook_secret) &&
           a->entity_id == b->entity_id && a->ticket_type == b->ticket_type &&
           a->category_id == b->category_id && a->default_user_id == b->default_user_id &&
           a->contact_sync == b->contact_sync && a->allow_http == b->allow_http;
}

static void retire(struct gl *g, struct glpi_session *s)
{
    struct glpi_session **r = realloc(g->retired, (g->nretired + 1) * sizeof *r);

    if (!r) {
        /* Forgotten rather than freed: a thread may still be in a call with it. */
        return;
    }
    g->retired = r;
    g->retired[g->nretired++] = s;
}

/* The session of hook `id`, read again from PostgreSQL when older than HOOK_TTL_MS. 0 with
 * *s NULL when the hook has no GLPI settings; a PostgreSQL error otherwise. */
static int hook_session(struct gl_thread *t, const char *id, struct glpi_session **s, char *err,
                        size_t errlen)
{
    struct gl *g = t->g;
    int64_t now = sy_mono_ms();
    struct glpi_hook h;
    struct hook *k;
    int rc = 0;

    pthread_mutex_lock(&g->mu);
    for (k = g->hooks; k && strcmp(k->id, id) != 0; k = k->next)
        ;
    if (k && now - k->loaded_ms < HOOK_TTL_MS) {
        *s = k->s;
        goto out;
    }
    rc = glpi_hook_load(t->pg, id, &h, err, errlen);
    if (rc != 0 && rc != -SY_ENOTFOUND)
        goto out;
    if (rc == 0) {
        /* Whatever a GLPI error or a URL may echo, the tokens never reach a log line. */
        sy_log_add_secret(h.user_token);
        if (h.app_token)
            sy_log_add_secret(h.app_token);
        if (h.webhook_secret)
            sy_log_add_secret(h.webhook_secret);
    }
    if (!k) {
        if (!(k = calloc(1, sizeof *k)) || !(k->id = strdup(id))) {
            free(k);
            if (rc == 0)
                glpi_hook_clear(&h);
            rc = -SY_ENOMEM;
            goto out;
        }
        k->next = g->hooks;
        g->hooks = k;
    }
    if (rc == -SY_ENOTFOUND) {
        if (k->s)
            retire(g, k->s);
        k->s = NULL;
        rc = 0;
    } else {
        if (!k->s || !hook_same(glpi_session_hook(k->s), &h)) {
            struct glpi_session *fresh = glpi_session_new(&h);

            if (!fresh) {
                glpi_hook_clear(&h);
                rc = -SY_ENOMEM;
                goto out;
            }
            if (k->s)
                retire(g, k->s);
            k->s = fresh;
        }
        glpi_hook_clear(&h);
    }
    k->loaded_ms = now;
    *s = k->s;
out:
    pthread_mutex_unlock(&g->mu);
    return rc;
}

/* --- handler -------------------------------------------------------------------------------- */

static const char *const unhandled_events[] = {
    "message_updated", "webwidget_triggered",    "inbox_created",
    "inbox_updated",   "conversation_typing_on", "conversation_typing_off",
};

static int connect_stores(struct gl_thread *t, struct sy_msg *msg)
{
    char err[256];

    if (!t->pg && !(t->pg = sy_pg_connect(t->g->pg_url, err, sizeof err))) {
        sy_msg_fail(msg, SY_RETRY, "PostgreSQL: %s", err);
        return -1;
    }
    if (!t->redis &&
        !(t->redis = sy_redis_connect(t->g->redis_url, REDIS_TIMEOUT_MS, err, sizeof err))) {
        sy_msg_fail(msg, SY_RETRY, "Redis: %s", err);
        return -1;
    }
    return 0;
}

static enum sy_verdict gl_handle(void *tstate, struct sy_msg *msg)
{
    struct gl_thread *t = tstate;
    const char *type = sy_msg_type(msg), *event = strchr(type, '.') + 1, *hook;
    json_t *data = NULL, *payload;
    struct glpi_session *s = NULL;
    struct gl_ev e = {0};
    char err[256];
    int rc = -1;

    for (size_t i = 0; i < sizeof unhandled_events / sizeof *unhandled_events; i++)
        if (strcmp(event, unhandled_events[i]) == 0) {
            sy_counter_add(t->g->unhandled, 1);
            return SY_ACK;
        }
    if (!(data = sy_msg_data_json(msg)))
        return sy_msg_fail(msg, SY_RETRY, "out of memory");
    hook = json_string_value(json_object_get(data, "hook"));
    payload = json_object_get(data, "payload");
    if (!hook || !json_is_object(payload)) {
        json_decref(data);
        return sy_msg_fail(msg, SY_REJECT, "data.hook and data.payload: required");
    }
    if (connect_stores(t, msg) != 0)
        goto out;
    if ((rc = hook_session(t, hook, &s, err, sizeof err)) != 0) {
        if (rc == -SY_ECONN) {
            sy_pg_destroy(t->pg);
            t->pg = NULL;
        }
        sy_msg_fail(msg, SY_RETRY, "GLPI settings of hook %s: %s", hook, err);
        rc = -1;
        goto out;
    }
    if (!s) {
        /* The webhook may serve other integrations: nothing to mirror is not an error. */
        sy_counter_add(t->g->no_hook, 1);
        rc = 0;
        goto out;
    }
    if (!t->http && !(t->http = http_new(t->g, true))) {
        sy_msg_fail(msg, SY_RETRY, "out of memory");
        goto out;
    }
    e = (struct gl_ev){.pg = t->pg,
                       .redis = t->redis,
                       .http = t->http,
                       .s = s,
                       .h = glpi_session_hook(s),
                       .msg = msg,
                       .lock_ttl_ms = gl_lock_ttl_ms(t->g->conf->timeout_ms),
                       .refused = t->g->refused};
    if (glpi_hook_check(e.h, err, sizeof err) != 0) {
        /* Stored around syctl's checks (or before them): fixed settings let it through. */
        sy_msg_fail(msg, SY_RETRY, "hook %s: %s", hook, err);
        rc = -1;
    } else if (strcmp(event, "contact_created") == 0) {
        /* Handler threads may take it after a later contact_updated: it must not undo that. */
        rc = gl_contact(&e, payload, false);
    } else if (strcmp(event, "contact_updated") == 0) {
        rc = gl_contact(&e, payload, true);
    } else if (strcmp(event, "message_created") == 0) {
        rc = gl_message(&e, payload);
    } else if (strcmp(event, "conversation_created") == 0 ||
               strcmp(event, "conversation_updated") == 0) {
        rc = gl_conversation(&e, payload, false);
    } else if (strcmp(event, "conversation_status_changed") == 0) {
        rc = gl_conversation(&e, payload, true);
    } else {
        sy_counter_add(t->g->unhandled, 1);
        rc = 0;
    }
    if (rc == 0)
        sy_counter_add(t->g->mirrored, 1);
    if (e.pg_lost) {
        sy_pg_destroy(t->pg);
        t->pg = NULL;
    }
    if (e.redis_lost) {
        sy_redis_destroy(t->redis);
        t->redis = NULL;
    }
out:
    json_decref(data);
    return rc == 0 ? SY_ACK : sy_msg_verdict(msg);
}

/* --- lifecycle ------------------------------------------------------------------------------ */

static void gl_exit(void *state)
{
    struct gl *g = state;
    struct sy_http *http;

    if (!g)
        return;
    /* Sessions are ended at GLPI, so they do not pile up there with every restart. */
    http = http_new(g, true);
    while (g->hooks) {
        struct hook *k = g->hooks;

        g->hooks = k->next;
        glpi_session_free(k->s, http);
        free(k->id);
        free(k);
    }
    for (size_t i = 0; i < g->nretired; i++)
        glpi_session_free(g->retired[i], http);
    free(g->retired);
    sy_http_destroy(http);
    sy_pg_probe_free(g->ready);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

static int gl_init(struct sy_worker *w, void **state)
{
    struct gl *g = calloc(1, sizeof *g);

    if (!g)
        return -SY_ENOMEM;
    pthread_mutex_init(&g->mu, NULL);
    g->w = w;
    g->conf = sy_worker_conf(w);
    g->pg_url = sy_worker_url(w, "pg");
    g->redis_url = sy_worker_url(w, "redis");
    if (!g->pg_url || !g->redis_url) {
        sy_log_error("worker.config", "SY_PG_URL and SY_REDIS_URL: required (the hooks and links "
                                      "live in PostgreSQL, the mutexes in Redis)");
        gl_exit(g);
        return -SY_ECONFIG;
    }
    if (!(g->ready = sy_pg_probe_new(g->pg_url, READY_EVERY_MS))) {
        gl_exit(g);
        return -SY_ENOMEM;
    }
    g->unhandled = sy_counter_get("sy_glpi_events_total", "Chatwoot events by what became of them",
                                  "outcome=\"unhandled\"");
    g->no_hook = sy_counter_get("sy_glpi_events_total", "Chatwoot events by what became of them",
                                "outcome=\"no_hook\"");
    g->mirrored = sy_counter_get("sy_glpi_events_total", "Chatwoot events by what became of them",
                                 "outcome=\"mirrored\"");
    g->refused =
        sy_counter_get("sy_glpi_followups_total",
                       "Chatwoot messages by what became of their followup", "outcome=\"refused\"");
    *state = g;
    return 0;
}

static int gl_thread_init(void *state, void **tstate)
{
    struct gl_thread *t = calloc(1, sizeof *t);

    if (!t)
        return -SY_ENOMEM;
    t->g = state;
    *tstate = t;
    return 0;
}

static void gl_thread_exit(void *state, void *tstate)
{
    struct gl_thread *t = tstate;

    (void)state;
    sy_pg_destroy(t->pg);
    sy_redis_destroy(t->redis);
    sy_http_destroy(t->http);
    free(t);
}

/* Ready while PostgreSQL answers: the hooks and links are there. GLPI being away only delays
 * the mirror, so it does not make the worker unready. */
static int gl_ready(void *state)
{
    return sy_pg_probe_check(((struct gl *)state)->ready);
}

const struct sy_handler glpi_handler = {
    .name = "glpi",
    .conf = gl_conf_keys,
    .conf_size = sizeof(struct gl_conf),
    .init = gl_init,
    .thread_init = gl_thread_init,
    .thread_exit = gl_thread_exit,
    .handle = gl_handle,
    .ready = gl_ready,
    .exit = gl_exit,
};
