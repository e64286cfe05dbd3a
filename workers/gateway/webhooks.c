/* webhooks.c - Chatwoot and WhatsApp Cloud API webhooks: the settings file, signature checks,
 * delivery dedup, and the messages each delivery becomes. */
#include "webhooks.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/gateway.h"
#include "gateway/hookdb.h"
#include "sy/config.h"
#include "sy/crypto.h"
#include "sy/doc.h"
#include "sy/err.h"
#include "sy/log.h"
#include "sy/schema.h"
#include "sy/worker.h"

#define HOOK_ID_MAX          64
#define SECRET_MAX           (64 * 1024)
#define EVENT_MAX            64
#define DELIVERY_MAX         100 /* "chatwoot:<delivery>" stays within SY_MSG_ID_MAX */
#define WAMID_MAX            110 /* "whatsapp:<wamid>" likewise */
#define CHALLENGE_MAX        64
#define TIMESTAMP_SKEW_S     300         /* Chatwoot's signed timestamp: at most 5 minutes off */
#define DEDUP_TTL_S          86400       /* a Chatwoot delivery id is remembered a day */
#define WA_DEDUP_TTL_S       (8 * 86400) /* WhatsApp redelivers for up to 7 days */
#define WA_MEDIA_MAX         1000        /* media messages in one delivery */
#define HOOKDB_RETRY_AFTER_S 5           /* a 503 while the hooks' database is away */
#define JSON_FLAGS           (JSON_REJECT_DUPLICATES)
#define SIG_PREFIX           "sha256="
#define SIG_PREFIX_LEN       (sizeof SIG_PREFIX - 1)

struct gw_hook {
    char *id;
    char *secret; /* NULL: deliveries are not signed */
    size_t secret_len;
};

struct gw_webhooks {
    struct gw_hook *chatwoot;
    size_t nchatwoot;
    bool whatsapp; /* configured */
    char *wa_verify_token;
    char *wa_app_secret;
    size_t wa_app_secret_len;
};

/* --- settings file ------------------------------------------------------------------------ */

void gw_webhooks_destroy(struct gw_webhooks *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->nchatwoot; i++) {
        free(h->chatwoot[i].id);
        free(h->chatwoot[i].secret);
    }
    free(h->chatwoot);
    free(h->wa_verify_token);
    free(h->wa_app_secret);
    free(h);
}

static bool token_ok(const char *s, size_t max)
{
    size_t n = 0;

    for (; s[n]; n++)
        if (!isalnum((unsigned char)s[n]) && s[n] != '.' && s[n] != '_' && s[n] != '-')
            return false;
    return n > 0 && n <= max;
}

/* A secret named by `<what>_env` or `<what>_file` in map m (a relative file is taken from the
 * settings file's directory). *out stays NULL when neither is given; required makes that an
 * error. 0, or -SY_ECONFIG with "name:line: why" in err. The value is never quoted. */
static int load_secret(const struct sy_doc *doc, const struct sy_node *m, const char *what,
                       const char *where, const char *dir, bool required, char **out,
                       size_t *outlen, char *err, size_t errlen)
{
    char kenv[64], kfile[64], path[4096];
    const struct sy_node *env, *file;
    char *value = NULL;
    size_t len = 0;
    int rc;

    snprintf(kenv, sizeof kenv, "%s_env", what);
    snprintf(kfile, sizeof kfile, "%s_file", what);
    env = sy_node_get(m, kenv);
    file = sy_node_get(m, kfile);
    *out = NULL;
    if (env && file) {
        sy_errf(err, errlen, "%s:%d: %s: give %s or %s, not both", sy_doc_name(doc),
                sy_node_line(env), where, kenv, kfile);
        return -SY_ECONFIG;
    }
    if (!env && !file) {
        if (!required)
            return 0;
        sy_errf(err, errlen, "%s:%d: %s: %s or %s is required", sy_doc_name(doc), sy_node_line(m),
                where, kenv, kfile);
        return -SY_ECONFIG;
    }
    if (env) {
        const char *name = sy_node_str(env), *v;

        if (!name || !token_ok(name, 128)) {
            sy_errf(err, errlen, "%s:%d: %s.%s: expected an environment variable name",
                    sy_doc_name(doc), sy_node_line(env), where, kenv);
            return -SY_ECONFIG;
        }
        v = getenv(name);
        if (!v || !*v) {
            sy_errf(err, errlen, "%s:%d: %s.%s: %s is not set", sy_doc_name(doc), sy_node_line(env),
                    where, kenv, name);
            return -SY_ECONFIG;
        }
        len = strlen(v);
        if (len > SECRET_MAX || !(value = strdup(v))) {
            sy_errf(err, errlen, "%s:%d: %s.%s: %s is too long", sy_doc_name(doc),
                    sy_node_line(env), where, kenv, name);
            return -SY_ECONFIG;
        }
    } else {
        const char *name = sy_node_str(file);

        if (!name || !*name) {
            sy_errf(err, errlen, "%s:%d: %s.%s: expected a file path", sy_doc_name(doc),
                    sy_node_line(file), where, kfile);
            return -SY_ECONFIG;
        }
        if (name[0] == '/')
            snprintf(path, sizeof path, "%s", name);
        else
            snprintf(path, sizeof path, "%s/%s", dir, name);
        rc = sy_read_file(path, SECRET_MAX, &value, &len);
        if (rc != 0) {
            sy_errf(err, errlen, "%s:%d: %s.%s: cannot read %s: %s", sy_doc_name(doc),
                    sy_node_line(file), where, kfile, path, sy_strerror(rc));
            return -SY_ECONFIG;
        }
        while (len > 0 && (value[len - 1] == '\n' || value[len - 1] == '\r'))
            value[--len] = '\0';
        if (len == 0 || strlen(value) != len) {
            free(value);
            sy_errf(err, errlen, "%s:%d: %s.%s: %s is empty or holds a NUL byte", sy_doc_name(doc),
                    sy_node_line(file), where, kfile, path);
            return -SY_ECONFIG;
        }
    }
    sy_log_add_secret(value);
    *out = value;
    *outlen = len;
    return 0;
}

static int load_chatwoot(struct gw_webhooks *h, const struct sy_doc *doc, const struct sy_node *cw,
                         const char *dir, char *err, size_t errlen)
{
    static const char *const hook_keys[] = {"secret_env", "secret_file", "description", NULL};
    size_t n = sy_node_len(cw);

    if (sy_node_is_null(cw))
        return 0;
    if (sy_node_kind(cw) != SY_NODE_MAP) {
        sy_errf(err, errlen, "%s:%d: chatwoot: expected a map of hooks by hook id",
                sy_doc_name(doc), sy_node_line(cw));
        return -SY_ECONFIG;
    }
    if (n > 0 && !(h->chatwoot = calloc(n, sizeof *h->chatwoot)))
        return -SY_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *id = NULL;
        const struct sy_node *hook = sy_node_at(cw, i, &id);
        struct gw_hook *k = &h->chatwoot[h->nchatwoot];
        char where[HOOK_ID_MAX + 16];
        int rc;

        if (!token_ok(id, HOOK_ID_MAX)) {
            sy_errf(err, errlen,
                    "%s:%d: chatwoot: hook id '%.80s': expected 1 to %d of "
                    "[A-Za-z0-9._-]",
                    sy_doc_name(doc), sy_node_line(hook), id, HOOK_ID_MAX);
            return -SY_ECONFIG;
        }
        snprintf(where, sizeof where, "chatwoot.%s", id);
        if (!sy_node_is_null(hook) && sy_node_kind(hook) != SY_NODE_MAP) {
            sy_errf(err, errlen,
                    "%s:%d: %s: expected a map (secret_env or secret_file) or "
                    "nothing",
                    sy_doc_name(doc), sy_node_line(hook), where);
            return -SY_ECONFIG;
        }
        if (sy_node_kind(hook) == SY_NODE_MAP) {
            if (sy_node_check_keys(doc, hook, hook_keys, err, errlen) != 0)
                return -SY_ECONFIG;
            if (!(k->id = strdup(id)))
                return -SY_ENOMEM;
            h->nchatwoot++;
            rc = load_secret(doc, hook, "secret", where, dir, false, &k->secret, &k->secret_len,
                             err, errlen);
            if (rc != 0)
                return rc;
        } else {
            if (!(k->id = strdup(id)))
                return -SY_ENOMEM;
            h->nchatwoot++;
        }
    }
    return 0;
}

static int load_whatsapp(struct gw_webhooks *h, const struct sy_doc *doc, const struct sy_node *wa,
                         const char *dir, char *err, size_t errlen)
{
    static const char *const keys[] = {"verify_token_env", "verify_token_file", "app_secret_env",
                                       "app_secret_file",  "description",       NULL};
    size_t len = 0;
    int rc;

    if (sy_node_is_null(wa))
        return 0;
    if (sy_node_kind(wa) != SY_NODE_MAP) {
        sy_errf(err, errlen, "%s:%d: whatsapp: expected a map", sy_doc_name(doc), sy_node_line(wa));
        return -SY_ECONFIG;
    }
    if (sy_node_check_keys(doc, wa, keys, err, errlen) != 0)
        return -SY_ECONFIG;
    rc = load_secret(doc, wa, "verify_token", "whatsapp", dir, true, &h->wa_verify_token, &len, err,
                     errlen);
    if (rc == 0)
        rc = load_secret(doc, wa, "app_secret", "whatsapp", dir, true, &h->wa_app_secret,
                         &h->wa_app_secret_len, err, errlen);
    if (rc == 0)
        h->whatsapp = true;
    return rc;
}

struct gw_webhooks *gw_webhooks_load(const char *path, char *err, size_t errlen)
{
    static const char *const top_keys[] = {"chatwoot", "whatsapp", NULL};
    struct sy_doc *doc = sy_doc_load_file(path, err, errlen);
    struct gw_webhooks *h = NULL;
    const struct sy_node *root;
    char dir[4096];
    const char *slash = strrchr(path, '/');
    int rc = -SY_ECONFIG;

    if (!doc)
        return NULL;
    if (slash)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else
        snprintf(dir, sizeof dir, ".");
    root = sy_doc_root(doc);
    if (root && sy_node_kind(root) != SY_NODE_MAP) {
        sy_errf(err, errlen, "%s:%d: expected a map with chatwoot and whatsapp", path,
                sy_node_line(root));
        goto out;
    }
    if (root && sy_node_check_keys(doc, root, top_keys, err, errlen) != 0)
        goto out;
    if (!(h = calloc(1, sizeof *h))) {
        sy_errf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    rc = load_chatwoot(h, doc, sy_node_get(root, "chatwoot"), dir, err, errlen);
    if (rc == 0)
        rc = load_whatsapp(h, doc, sy_node_get(root, "whatsapp"), dir, err, errlen);
    if (rc == -SY_ENOMEM)
        sy_errf(err, errlen, "%s: out of memory", path);
out:
    sy_doc_destroy(doc);
    if (rc != 0) {
        gw_webhooks_destroy(h);
        return NULL;
    }
    return h;
}

static const struct gw_hook *hook_find(const struct gw_webhooks *h, const char *id)
{
    for (size_t i = 0; i < h->nchatwoot; i++)
        if (strcmp(h->chatwoot[i].id, id) == 0)
            return &h->chatwoot[i];
    return NULL;
}

/* --- signatures --------------------------------------------------------------------------- */

/* True when sig is "sha256=" and the lower- or upper-case hex of mac; compared in constant
 * time over the fixed-length digest. */
static bool signature_ok(const char *sig, const uint8_t mac[SY_SHA256_LEN])
{
    uint8_t got[SY_SHA256_LEN];

    if (!sig || strncmp(sig, SIG_PREFIX, SIG_PREFIX_LEN) != 0 ||
        strlen(sig + SIG_PREFIX_LEN) != 2 * SY_SHA256_LEN)
        return false;
    if (sy_hex_decode(sig + SIG_PREFIX_LEN, 2 * SY_SHA256_LEN, got, sizeof got) != 0)
        return false;
    return sy_ct_equal(got, mac, SY_SHA256_LEN);
}

/* Unix seconds written as 1 to 12 decimal digits; -1 otherwise. */
static long long unix_seconds(const char *s)
{
    long long v = 0;
    size_t n = 0;

    if (!s)
        return -1;
    for (; s[n]; n++) {
        if (s[n] < '0' || s[n] > '9' || n >= 12)
            return -1;
        v = v * 10 + (s[n] - '0');
    }
    return n > 0 ? v : -1;
}

/* The body as a JSON object; NULL with a 400 naming the problem. */
static json_t *body_object(const struct gw_request *rq, struct gw_response *rs)
{
    json_error_t jerr;
    json_t *v = json_loadb(rq->body, rq->body_len, JSON_FLAGS, &jerr);

    if (!v) {
        gw_error(rs, rq, 400, "invalid", NULL, "the body is not JSON: line %d, column %d: %s",
                 jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        gw_error(rs, rq, 400, "invalid", NULL, "the body must be a JSON object");
        return NULL;
    }
    return v;
}

/* --- Chatwoot ----------------------------------------------------------------------------- */

static bool event_ok(const char *s)
{
    size_t n = 0;

    for (; s[n]; n++)
        if ((s[n] < 'a' || s[n] > 'z') && s[n] != '_')
            return false;
    return n > 0 && n <= EVENT_MAX;
}

/* 0 when the delivery is authentic and fresh, else a 401 naming the header at fault. */
static int chatwoot_verify(const struct gw_hook *k, const struct gw_request *rq,
                           struct gw_response *rs)
{
    const char *ts = gw_header(rq, "X-Chatwoot-Timestamp");
    const char *sig = gw_header(rq, "X-Chatwoot-Signature");
    uint8_t mac[SY_SHA256_LEN];
    long long t = unix_seconds(ts), now = (long long)time(NULL);
    char prefix[32];
    int n;

    if (!sig) {
        gw_error(rs, rq, 401, "unauthenticated", "X-Chatwoot-Signature",
                 "this hook requires a signed delivery (X-Chatwoot-Signature)");
        return -1;
    }
    if (t < 0) {
        gw_error(rs, rq, 401, "unauthenticated", "X-Chatwoot-Timestamp",
                 "X-Chatwoot-Timestamp is missing or not Unix seconds");
        return -1;
    }
    n = snprintf(prefix, sizeof prefix, "%s.", ts);
    sy_hmac_sha256_2(k->secret, k->secret_len, prefix, (size_t)n, rq->body, rq->body_len, mac);
    if (!signature_ok(sig, mac)) {
        gw_error(rs, rq, 401, "unauthenticated", "X-Chatwoot-Signature",
                 "X-Chatwoot-Signature does not match the delivery");
        return -1;
    }
    if (t < now - TIMESTAMP_SKEW_S || t > now + TIMESTAMP_SKEW_S) {
        gw_error(rs, rq, 401, "unauthenticated", "X-Chatwoot-Timestamp",
                 "X-Chatwoot-Timestamp is more than %d seconds from now", TIMESTAMP_SKEW_S);
        return -1;
    }
    return 0;
}

void gw_chatwoot_event(void *ctx, const struct gw_request *rq, struct gw_response *rs)
{
    struct gw *g = ctx;
    const struct gw_hook *k = hook_find(g->hooks, rq->params[0]);
    struct gw_hook stored = {0};
    char stored_id[HOOK_ID_MAX + 1];
    const char *delivery, *event;
    char type[EVENT_MAX + 16], id[DELIVERY_MAX + 16], key[HOOK_ID_MAX + DELIVERY_MAX + 32];
    json_t *body = NULL, *data = NULL;
    int seen = -1;

    if (!k && g->hookdb) {
        /* Not in the file: a hook that `syctl glpi hook add` stored, with its own secret. */
        int found = gw_hookdb_find(g->hookdb, rq->params[0], &stored.secret, &stored.secret_len);

        if (found < 0) {
            gw_error(rs, rq, 503, "unavailable", NULL, "the hooks' database is unreachable");
            rs->retry_after_s = HOOKDB_RETRY_AFTER_S;
            return;
        }
        if (found == 1 && !stored.secret) {
            /* Webhook signatures are checked: a stored hook without a secret could be fed by
             * anyone who guesses its URL. Only the webhooks file may name an unsigned hook. */
            gw_error(rs, rq, 401, "unauthenticated", "hook_id",
                     "hook '%.64s' has no webhook secret, so its deliveries cannot be "
                     "authenticated: store it with 'syctl glpi hook add %.64s --webhook-secret "
                     "SRC' (Chatwoot 4.11.2 and later sign deliveries)",
                     rq->params[0], rq->params[0]);
            return;
        }
        if (found == 1) {
            snprintf(stored_id, sizeof stored_id, "%s", rq->params[0]);
            stored.id = stored_id;
            k = &stored;
        }
    }
    if (!k) {
        gw_error(rs, rq, 404, "not_found", "hook_id", "no Chatwoot hook '%.64s' is configured",
                 rq->params[0]);
        return;
    }
    if (k->secret && chatwoot_verify(k, rq, rs) != 0)
        goto out;
    delivery = gw_header(rq, "X-Chatwoot-Delivery");
    if (delivery && !token_ok(delivery, DELIVERY_MAX)) {
        gw_error(rs, rq, 400, "invalid", "X-Chatwoot-Delivery",
                 "X-Chatwoot-Delivery: expected 1 to %d of [A-Za-z0-9._-]", DELIVERY_MAX);
        goto out;
    }
    if (!(body = body_object(rq, rs)))
        goto out;
    event = json_string_value(json_object_get(body, "event"));
    if (!event || !event_ok(event)) {
        gw_error(rs, rq, 400, "invalid", "event", "event: expected a string of 1 to %d of [a-z_]",
                 EVENT_MAX);
        goto out;
    }
    snprintf(type, sizeof type, "chatwoot.%s", event);
    if (!sy_schemas_has(sy_worker_schemas(g->w), type)) {
        gw_error(rs, rq, 422, "unsupported", "event", "event '%s' is not one this gateway takes",
                 event);
        goto out;
    }
    data = json_pack("{s:s, s:s?, s:O}", "hook", k->id, "delivery", delivery, "payload", body);
    if (!data) {
        gw_error(rs, rq, 500, "internal", NULL, "out of memory");
        goto out;
    }
    if (delivery) {
        /* Chatwoot keeps one delivery id across its retries: a redelivery is published once,
         * and carries the same message id for the consumer's own dedup. */
        snprintf(id, sizeof id, "chatwoot:%s", delivery);
        snprintf(key, sizeof key, "sy:gw:chatwoot:%s:%s", k->id, delivery);
        seen = gw_seen_first(g, key, DEDUP_TTL_S);
        if (seen == 0) {
            gw_json(rs, 200, json_pack("{s:s, s:s}", "id", id, "status", "duplicate"));
            rs->log_note = "duplicate delivery";
            goto out;
        }
    }
    if (gw_publish(g, rq, rs, type, delivery ? id : NULL, data) != 0 && seen == 1)
        gw_seen_forget(g, key);
out:
    if (stored.secret) {
        explicit_bzero(stored.secret, stored.secret_len);
        free(stored.secret);
    }
    json_decref(data);
    json_decref(body);
}

/* --- WhatsApp ----------------------------------------------------------------------------- */

void gw_whatsapp_verify(void *ctx, const struct gw_request *rq, struct gw_response *rs)
{
    struct gw *g = ctx;
    const char *mode = gw_query(rq, "hub.mode");
    const char *token = gw_query(rq, "hub.verify_token");
    const char *challenge = gw_query(rq, "hub.challenge");
    uint8_t want[SY_SHA256_LEN], got[SY_SHA256_LEN];
    size_t n = 0;

    if (!g->hooks->whatsapp || !mode || strcmp(mode, "subscribe") != 0) {
        gw_error(rs, rq, 403, "forbidden", "hub.mode", "not a subscription this gateway accepts");
        return;
    }
    if (!token) {
        gw_error(rs, rq, 403, "forbidden", "hub.verify_token", "hub.verify_token is missing");
        return;
    }
    /* Digests of both, so the comparison's time does not depend on the token's length. */
    sy_sha256(g->hooks->wa_verify_token, strlen(g->hooks->wa_verify_token), want);
    sy_sha256(token, strlen(token), got);
    if (!sy_ct_equal(want, got, sizeof want)) {
        gw_error(rs, rq, 403, "forbidden", "hub.verify_token", "hub.verify_token does not match");
        return;
    }
    for (; challenge && challenge[n]; n++)
        if (challenge[n] < '0' || challenge[n] > '9')
            break;
    if (!challenge || n == 0 || challenge[n] || n > CHALLENGE_MAX) {
        gw_error(rs, rq, 400, "invalid", "hub.challenge", "hub.challenge: expected 1 to %d digits",
                 CHALLENGE_MAX);
        return;
    }
    gw_text(rs, 200, challenge);
}

static bool is_media_type(const char *t)
{
    static const char *const media[] = {"document", "image", "audio", "video", "sticker"};

    for (size_t i = 0; i < sizeof media / sizeof media[0]; i++)
        if (strcmp(t, media[i]) == 0)
            return true;
    return false;
}

/* A string member of o, or NULL (absent or null is fine when optional); sets a 400 naming
 * where.name when it is required and missing, or present and not a non-empty string. */
static int str_member(const json_t *o, const char *name, bool required, const char *where,
                      const struct gw_request *rq, struct gw_response *rs, const char **out)
{
    const json_t *v = json_object_get(o, name);
    char field[256];

    *out = NULL;
    if ((!v || json_is_null(v)) && !required)
        return 0;
    if (json_is_string(v) && json_string_length(v) > 0 &&
        strlen(json_string_value(v)) == json_string_length(v)) {
        *out = json_string_value(v);
        return 0;
    }
    snprintf(field, sizeof field, "%s.%s", where, name);
    gw_error(rs, rq, 400, "invalid", field, "%s: expected a non-empty string", field);
    return -1;
}

/* One media message as ingest.whatsapp.media data; NULL with a 400 on a malformed message. */
static json_t *media_data(const json_t *m, const char *type, const char *phone_number_id,
                          const char *where, const struct gw_request *rq, struct gw_response *rs)
{
    const json_t *media = json_object_get(m, type);
    const char *from, *wamid, *ts, *media_id, *mime, *sha, *filename, *caption;
    char mwhere[224], field[256];
    long long t;

    /* where is at most 199 bytes (the caller's buffer), type a media type name. */
    snprintf(mwhere, sizeof mwhere, "%s.%.16s", where, type);
    if (!json_is_object(media)) {
        gw_error(rs, rq, 400, "invalid", mwhere, "%s: expected an object", mwhere);
        return NULL;
    }
    if (str_member(m, "from", true, where, rq, rs, &from) != 0 ||
        str_member(m, "id", true, where, rq, rs, &wamid) != 0 ||
        str_member(m, "timestamp", true, where, rq, rs, &ts) != 0 ||
        str_member(media, "id", true, mwhere, rq, rs, &media_id) != 0 ||
        str_member(media, "mime_type", true, mwhere, rq, rs, &mime) != 0 ||
        str_member(media, "sha256", false, mwhere, rq, rs, &sha) != 0 ||
        str_member(media, "filename", false, mwhere, rq, rs, &filename) != 0 ||
        str_member(media, "caption", false, mwhere, rq, rs, &caption) != 0)
        return NULL;
    if (strlen(wamid) > WAMID_MAX) {
        snprintf(field, sizeof field, "%s.id", where);
        gw_error(rs, rq, 400, "invalid", field, "%s: longer than %d bytes", field, WAMID_MAX);
        return NULL;
    }
    if ((t = unix_seconds(ts)) < 0) {
        snprintf(field, sizeof field, "%s.timestamp", where);
        gw_error(rs, rq, 400, "invalid", field, "%s: expected Unix seconds", field);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:s*, s:s*, s:s*, s:s, s:s, s:I, s:s, s:s}", "media_id", media_id,
                     "mime_type", mime, "sha256", sha, "filename", filename, "caption", caption,
                     "from", from, "wamid", wamid, "timestamp", (json_int_t)t, "phone_number_id",
                     phone_number_id, "media_type", type);
}

/* Collects every media message of the delivery into `out` (an array of data objects). 0, or
 * -1 with a 400 naming the first thing at fault; nothing is published from a malformed one. */
static int whatsapp_collect(const json_t *body, json_t *out, const struct gw_request *rq,
                            struct gw_response *rs)
{
    const json_t *entries = json_object_get(body, "entry"), *entry, *change;
    const char *object = json_string_value(json_object_get(body, "object"));
    size_t i, j, k;
    char where[160];

    if (!object || strcmp(object, "whatsapp_business_account") != 0) {
        gw_error(rs, rq, 400, "invalid", "object",
                 "object: expected \"whatsapp_business_account\"");
        return -1;
    }
    if (!json_is_array(entries)) {
        gw_error(rs, rq, 400, "invalid", "entry", "entry: expected an array");
        return -1;
    }
    json_array_foreach(entries, i, entry)
    {
        const json_t *changes = json_object_get(entry, "changes");

        if (!json_is_array(changes)) {
            snprintf(where, sizeof where, "entry[%zu].changes", i);
            gw_error(rs, rq, 400, "invalid", where, "%s: expected an array", where);
            return -1;
        }
        json_array_foreach(changes, j, change)
        {
            const json_t *value = json_object_get(change, "value"), *msgs, *m;
            const char *field = json_string_value(json_object_get(change, "field"));
            const char *phone = NULL;

            if (field && strcmp(field, "messages") != 0)
                continue; /* account and template updates: nothing to ingest */
            snprintf(where, sizeof where, "entry[%zu].changes[%zu].value", i, j);
            if (!json_is_object(value)) {
                gw_error(rs, rq, 400, "invalid", where, "%s: expected an object", where);
                return -1;
            }
            msgs = json_object_get(value, "messages");
            if (!msgs || json_is_null(msgs))
                continue; /* delivery receipts (statuses) only */
            if (!json_is_array(msgs)) {
                snprintf(where + strlen(where), sizeof where - strlen(where), ".messages");
                gw_error(rs, rq, 400, "invalid", where, "%s: expected an array", where);
                return -1;
            }
            json_array_foreach(msgs, k, m)
            {
                const char *type = json_string_value(json_object_get(m, "type"));
                char mwhere[200];
                json_t *d;

                snprintf(mwhere, sizeof mwhere, "%s.messages[%zu]", where, k);
                if (!json_is_object(m) || !type) {
                    gw_error(rs, rq, 400, "invalid", mwhere, "%s: expected an object with a type",
                             mwhere);
                    return -1;
                }
                if (!is_media_type(type))
                    continue; /* text, reactions, locations...: nothing to ingest */
                if (!phone && str_member(json_object_get(value, "metadata"), "phone_number_id",
                                         true, "metadata", rq, rs, &phone) != 0)
                    return -1;
                if (json_array_size(out) >= WA_MEDIA_MAX) {
                    gw_error(rs, rq, 400, "invalid", "entry",
                             "more than %d media messages in one delivery", WA_MEDIA_MAX);
                    return -1;
                }
                if (!(d = media_data(m, type, phone, mwhere, rq, rs)))
                    return -1;
                json_array_append_new(out, d);
            }
        }
    }
    return 0;
}

void gw_whatsapp_event(void *ctx, const struct gw_request *rq, struct gw_response *rs)
{
    struct gw *g = ctx;
    uint8_t mac[SY_SHA256_LEN];
    json_t *body = NULL, *media = NULL, *d;
    size_t i, published = 0;

    if (!g->hooks->whatsapp) {
        gw_error(rs, rq, 404, "not_found", NULL, "the WhatsApp webhook is not configured");
        return;
    }
    sy_hmac_sha256(g->hooks->wa_app_secret, g->hooks->wa_app_secret_len, rq->body, rq->body_len,
                   mac);
    if (!signature_ok(gw_header(rq, "X-Hub-Signature-256"), mac)) {
        gw_error(rs, rq, 401, "unauthenticated", "X-Hub-Signature-256",
                 "X-Hub-Signature-256 is missing or does not match the delivery");
        return;
    }
    if (!(body = body_object(rq, rs)))
        return;
    if (!(media = json_array())) {
        gw_error(rs, rq, 500, "internal", NULL, "out of memory");
        goto out;
    }
    if (whatsapp_collect(body, media, rq, rs) != 0)
        goto out;
    json_array_foreach(media, i, d)
    {
        const char *wamid = json_string_value(json_object_get(d, "wamid"));
        char id[WAMID_MAX + 16], key[WAMID_MAX + 32];
        int seen;

        /* WhatsApp redelivers a webhook it did not see answered: each media message is
         * published once, under an id the consumer can dedupe by as well. */
        snprintf(id, sizeof id, "whatsapp:%s", wamid);
        snprintf(key, sizeof key, "sy:gw:whatsapp:%s", wamid);
        seen = gw_seen_first(g, key, WA_DEDUP_TTL_S);
        if (seen == 0)
            continue;
        if (gw_publish(g, rq, rs, "ingest.whatsapp.media", id, d) != 0) {
            /* rs holds the failure (503 when the broker is away): WhatsApp sends it all again,
             * and what was confirmed before is then known as a duplicate. */
            if (seen == 1)
                gw_seen_forget(g, key);
            goto out;
        }
        published++;
    }
    gw_json(rs, 200,
            json_pack("{s:s, s:I}", "status", "accepted", "published", (json_int_t)published));
out:
    json_decref(media);
    json_decref(body);
}
