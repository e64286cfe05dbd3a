/* auth.c - API keys and HS256 JWTs for sy-gateway's REST API (see auth.h). */
#include "gateway/auth.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/pgpool.h"
#include "sy/clock.h"
#include "sy/crypto.h"
#include "sy/err.h"
#include "sy/log.h"
#include "sy/metrics.h"
#include "sy/pg.h"

#define PG_CONNS     4   /* PostgreSQL connections shared by the request threads */
#define CACHE_SLOTS  256 /* verified keys remembered */
#define CACHE_TTL_MS 30000
#define NEG_TTL_MS   10000 /* how long an id without a live key is refused unasked */
/* Lookups of ids the cache has never seen: a client sending made-up keys costs PostgreSQL at
 * most this many queries a second (after a burst), and is answered 429 beyond. */
#define LOOKUP_RATE      20
#define LOOKUP_BURST     50
#define JWT_SECRET_MIN   32 /* bytes of a JWT secret: HS256 wants a key as long as its hash */
#define JWT_SECRET_MAX   1024
#define APIKEY_NAME_MAX  200 /* as sy_api_keys' CHECK */
#define APIKEY_ID_BYTES  6
#define APIKEY_SEC_BYTES 32

static const struct {
    enum gw_role role;
    const char *name;
} roles[] = {
    {GW_ROLE_CHATBOT, "chatbot"},
    {GW_ROLE_AGENT, "agent"},
    {GW_ROLE_ADMIN, "admin"},
    {GW_ROLE_READONLY, "readonly"},
};

const char *gw_role_name(enum gw_role role)
{
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (roles[i].role == role)
            return roles[i].name;
    return NULL;
}

enum gw_role gw_role_parse(const char *name)
{
    if (!name)
        return 0;
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (strcmp(roles[i].name, name) == 0)
            return roles[i].role;
    return 0;
}

/* --- API keys ----------------------------------------------------------------------------- */

int gw_apikey_new(enum gw_role role, const char *name, char *key_out, size_t key_len, char *id_out,
                  size_t id_len, uint8_t hash_out[32])
{
    uint8_t id_raw[APIKEY_ID_BYTES], sec_raw[APIKEY_SEC_BYTES];
    char sec[GW_APIKEY_SEC_LEN + 4];
    int rc;

    if (!gw_role_name(role) || !name || !name[0] || strlen(name) > APIKEY_NAME_MAX || !key_out ||
        key_len < GW_APIKEY_LEN + 1 || !id_out || id_len < GW_APIKEY_ID_LEN + 1 || !hash_out)
        return -SY_EINVAL;
    rc = sy_random_bytes(id_raw, sizeof id_raw);
    if (rc == 0)
        rc = sy_random_bytes(sec_raw, sizeof sec_raw);
    if (rc < 0)
        goto out;
    sy_hex_encode(id_raw, sizeof id_raw, id_out);
    if (sy_base64_encode(sec_raw, sizeof sec_raw, true, sec) != GW_APIKEY_SEC_LEN) {
        rc = -SY_EINTERNAL;
        goto out;
    }
    snprintf(key_out, key_len, "sy_%s_%s", id_out, sec);
    sy_sha256(sec, GW_APIKEY_SEC_LEN, hash_out);
out:
    memset(sec_raw, 0, sizeof sec_raw);
    memset(sec, 0, sizeof sec);
    return rc;
}

int gw_apikey_parse(const char *key, char *id_out, uint8_t hash_out[32])
{
    uint8_t raw[APIKEY_SEC_BYTES + 3];
    size_t n = 0;
    const char *sec;

    if (!key || !id_out || !hash_out || strnlen(key, GW_APIKEY_LEN + 1) != GW_APIKEY_LEN ||
        strncmp(key, "sy_", 3) != 0 || key[3 + GW_APIKEY_ID_LEN] != '_')
        return -SY_EDECODE;
    for (size_t i = 3; i < 3 + GW_APIKEY_ID_LEN; i++)
        if (!((key[i] >= '0' && key[i] <= '9') || (key[i] >= 'a' && key[i] <= 'f')))
            return -SY_EDECODE;
    sec = key + 4 + GW_APIKEY_ID_LEN;
    if (sy_base64_decode(sec, GW_APIKEY_SEC_LEN, true, raw, &n) != 0 || n != APIKEY_SEC_BYTES)
        return -SY_EDECODE;
    memcpy(id_out, key + 3, GW_APIKEY_ID_LEN);
    id_out[GW_APIKEY_ID_LEN] = '\0';
    sy_sha256(sec, GW_APIKEY_SEC_LEN, hash_out);
    memset(raw, 0, sizeof raw);
    return 0;
}

/* --- JWT ---------------------------------------------------------------------------------- */

/* One base64url part of a token as a JSON object, or NULL. */
static json_t *jwt_part(const char *p, size_t len)
{
    uint8_t buf[GW_JWT_MAX];
    size_t n = 0;
    json_t *j;

    if (len == 0 || sy_base64_decoded_max(len) > sizeof buf ||
        sy_base64_decode(p, len, true, buf, &n) != 0)
        return NULL;
    j = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* A NumericDate claim: 1 and *v when present as a number, 0 when absent, -1 otherwise. */
static int jwt_time(const json_t *claims, const char *name, int64_t *v)
{
    const json_t *t = json_object_get(claims, name);

    if (!t)
        return 0;
    if (json_is_integer(t)) {
        *v = (int64_t)json_integer_value(t);
        return 1;
    }
    if (json_is_real(t) && json_real_value(t) > -9e15 && json_real_value(t) < 9e15) {
        *v = (int64_t)json_real_value(t);
        return 1;
    }
    return -1;
}

#define WHY(...) (snprintf(why, why_len, __VA_ARGS__), rc = -SY_EDECODE)

int gw_jwt_verify(const char *token, const uint8_t *secret, size_t secret_len, int64_t now,
                  int leeway_s, struct gw_jwt_claims *out, char *why, size_t why_len)
{
    char why_none[1];
    const char *dot1, *dot2, *sig_txt;
    uint8_t sig[SY_SHA256_LEN + 3], mac[SY_SHA256_LEN];
    size_t len, sig_len = 0, sig_txt_len;
    json_t *hdr = NULL, *claims = NULL;
    const json_t *alg, *sub, *role;
    int64_t exp = 0, nbf = 0, iat = 0;
    int has, rc = 0;

    if (!why || why_len == 0) {
        why = why_none;
        why_len = sizeof why_none;
    }
    why[0] = '\0';
    if (!token || !out) {
        snprintf(why, why_len, "no token");
        return -SY_EINVAL;
    }
    if (!secret || secret_len == 0) {
        snprintf(why, why_len, "tokens are not accepted here");
        return -SY_EINVAL;
    }
    len = strnlen(token, GW_JWT_MAX + 1);
    if (len > GW_JWT_MAX) {
        snprintf(why, why_len, "token longer than %d bytes", GW_JWT_MAX);
        return -SY_ETOOBIG;
    }
    /* JWS text is unpadded base64url; a padded spelling would give one token two texts. */
    if (memchr(token, '=', len)) {
        WHY("token has base64 padding");
        goto out;
    }
    dot1 = memchr(token, '.', len);
    dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token))) {
        WHY("token is not three dot-separated parts");
        goto out;
    }
    hdr = jwt_part(token, (size_t)(dot1 - token));
    if (!hdr) {
        WHY("token header is not base64url JSON object");
        goto out;
    }
    alg = json_object_get(hdr, "alg");
    if (!json_is_string(alg) || strcmp(json_string_value(alg), "HS256") != 0) {
        WHY("token algorithm must be HS256");
        goto out;
    }
    if (json_object_get(hdr, "crit")) {
        WHY("token has critical header parameters");
        goto out;
    }

    sig_txt = dot2 + 1;
    sig_txt_len = len - (size_t)(sig_txt - token);
    if (sig_txt_len == 0 || sig_txt_len > 44 ||
        sy_base64_decode(sig_txt, sig_txt_len, true, sig, &sig_len) != 0 ||
        sig_len != SY_SHA256_LEN) {
        WHY("token signature is not base64url of 32 bytes");
        goto out;
    }
    sy_hmac_sha256(secret, secret_len, token, (size_t)(dot2 - token), mac);
    if (!sy_ct_equal(mac, sig, SY_SHA256_LEN)) {
        WHY("token signature does not match");
        goto out;
    }

    claims = jwt_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (!claims) {
        WHY("token claims are not base64url JSON object");
        goto out;
    }
    if (jwt_time(claims, "exp", &exp) != 1) {
        WHY("token has no numeric exp");
        goto out;
    }
    if (now - leeway_s > exp) {
        WHY("token expired");
        goto out;
    }
    has = jwt_time(claims, "nbf", &nbf);
    if (has < 0 || (has == 1 && now + leeway_s < nbf)) {
        WHY(has < 0 ? "token nbf is not a number" : "token not yet valid");
        goto out;
    }
    has = jwt_time(claims, "iat", &iat);
    if (has < 0 || (has == 1 && now + leeway_s < iat)) {
        WHY(has < 0 ? "token iat is not a number" : "token issued in the future");
        goto out;
    }
    sub = json_object_get(claims, "sub");
    if (sub && (!json_is_string(sub) || json_string_length(sub) >= GW_SUB_MAX)) {
        WHY("token sub is not a string of at most %d bytes", GW_SUB_MAX - 1);
        goto out;
    }
    role = json_object_get(claims, "role");
    if (!json_is_string(role)) {
        WHY("token has no role");
        goto out;
    }
    out->role = gw_role_parse(json_string_value(role));
    if (!out->role) {
        WHY("token role is not chatbot, agent, admin or readonly");
        goto out;
    }
    snprintf(out->sub, sizeof out->sub, "%s", sub ? json_string_value(sub) : "");
    out->exp = exp;
    out->iat = has == 1 ? iat : 0;
out:
    json_decref(hdr);
    json_decref(claims);
    return rc;
}

/* --- key cache --------------------------------------------------------------------------- */

/* What PostgreSQL said about an id: a live key (its stored hash and role), or no live key
 * (role 0). An entry past until_ms is asked again, but it still marks its id as one seen
 * before, whose lookup the rate limit does not hold up. */
struct cached_key {
    char id[GW_APIKEY_ID_LEN + 1]; /* "" when the slot is free */
    uint8_t hash[SY_SHA256_LEN];
    enum gw_role role; /* 0: no such key, or revoked */
    int64_t until_ms;  /* sy_mono_ms() past which it is asked again */
};

struct gw_auth {
    struct gw_pg_pool *pool; /* where sy_api_keys lives; NULL: keys refused */
    uint8_t *jwt_secret;
    size_t jwt_secret_len;
    int64_t ttl_ms;

    pthread_mutex_t mu; /* guards the cache and the bucket */
    struct cached_key cache[CACHE_SLOTS];
    double tokens; /* lookups of unseen ids allowed now */
    int64_t refilled_ms;
    bool limiting; /* refusing since the last allowed lookup: logged once */
    struct sy_counter *refused;
};

struct gw_auth *gw_auth_new(const char *pg_url, const uint8_t *jwt_secret, size_t jwt_secret_len,
                            long cache_ttl_ms, char *err, size_t errlen)
{
    struct gw_auth *a = NULL;

    if (cache_ttl_ms < 0) {
        snprintf(err, errlen, "a negative cache lifetime");
        return NULL;
    }
    if (jwt_secret && (jwt_secret_len < JWT_SECRET_MIN || jwt_secret_len > JWT_SECRET_MAX)) {
        snprintf(err, errlen, "a JWT secret must be %d..%d bytes", JWT_SECRET_MIN, JWT_SECRET_MAX);
        return NULL;
    }
    a = calloc(1, sizeof *a);
    if (!a)
        goto nomem;
    a->ttl_ms = cache_ttl_ms > 0 ? cache_ttl_ms : CACHE_TTL_MS;
    if (pg_url && !(a->pool = gw_pg_pool_new(pg_url, PG_CONNS, "API keys")))
        goto nomem;
    if (jwt_secret) {
        a->jwt_secret = malloc(jwt_secret_len);
        if (!a->jwt_secret)
            goto nomem;
        memcpy(a->jwt_secret, jwt_secret, jwt_secret_len);
        a->jwt_secret_len = jwt_secret_len;
    }
    if (pthread_mutex_init(&a->mu, NULL) != 0)
        goto nomem;
    a->tokens = LOOKUP_BURST;
    a->refilled_ms = sy_mono_ms();
    a->refused = sy_counter_get("sy_gateway_key_lookups_refused_total",
                                "API keys answered 429 because unseen keys came too fast", NULL);
    return a;
nomem:
    snprintf(err, errlen, "out of memory");
    if (a) {
        gw_pg_pool_destroy(a->pool);
        free(a->jwt_secret);
        free(a);
    }
    return NULL;
}

void gw_auth_destroy(struct gw_auth *a)
{
    if (!a)
        return;
    gw_pg_pool_destroy(a->pool);
    if (a->jwt_secret)
        memset(a->jwt_secret, 0, a->jwt_secret_len);
    free(a->jwt_secret);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

/* --- key lookup --------------------------------------------------------------------------- */

enum cache_verdict {
    CACHE_UNSEEN = 0, /* never asked, or long ago: ask, within the rate limit */
    CACHE_STALE,      /* a live key once, its entry expired: ask */
    CACHE_PASS,       /* a live key with this secret */
    CACHE_REFUSE,     /* no live key with this secret */
};

static enum cache_verdict cache_get(struct gw_auth *a, const char *id, const uint8_t hash[32],
                                    enum gw_role *role)
{
    enum cache_verdict v = CACHE_UNSEEN;
    int64_t now = sy_mono_ms();

    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        struct cached_key *c = &a->cache[i];

        if (!c->id[0] || strcmp(c->id, id) != 0)
            continue;
        if (c->until_ms <= now)
            v = c->role ? CACHE_STALE : CACHE_UNSEEN;
        else if (c->role && sy_ct_equal(c->hash, hash, SY_SHA256_LEN))
            v = CACHE_PASS;
        else
            v = CACHE_REFUSE;
        *role = c->role;
        break;
    }
    pthread_mutex_unlock(&a->mu);
    return v;
}

/* Records what PostgreSQL said about id: a live key's stored hash and role, or role 0. */
static void cache_put(struct gw_auth *a, const char *id, const uint8_t hash[32], enum gw_role role)
{
    int64_t now = sy_mono_ms();
    struct cached_key *slot = &a->cache[0];

    pthread_mutex_lock(&a->mu);
    /* The same id, else a free or expired slot, else the one closest to expiring. */
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        struct cached_key *c = &a->cache[i];

        if (strcmp(c->id, id) == 0) {
            slot = c;
            break;
        }
        if (!c->id[0] || c->until_ms <= now || c->until_ms < slot->until_ms)
            slot = c;
    }
    memcpy(slot->id, id, sizeof slot->id);
    memcpy(slot->hash, hash, SY_SHA256_LEN);
    slot->role = role;
    slot->until_ms = now + (role ? a->ttl_ms : NEG_TTL_MS);
    pthread_mutex_unlock(&a->mu);
}

/* Takes one lookup from the bucket; false when it is empty. */
static bool lookup_allowed(struct gw_auth *a)
{
    int64_t now = sy_mono_ms();
    bool ok, first_refusal = false;

    pthread_mutex_lock(&a->mu);
    a->tokens += (double)(now - a->refilled_ms) * LOOKUP_RATE / 1000.0;
    if (a->tokens > LOOKUP_BURST)
        a->tokens = LOOKUP_BURST;
    a->refilled_ms = now;
    ok = a->tokens >= 1.0;
    if (ok) {
        a->tokens -= 1.0;
        a->limiting = false;
    } else if (!a->limiting) {
        a->limiting = first_refusal = true;
    }
    pthread_mutex_unlock(&a->mu);
    if (!ok)
        sy_counter_add(a->refused, 1);
    if (first_refusal)
        sy_log_warn("gateway.auth",
                    "unknown API keys arrive faster than %d a second: refusing them with 429",
                    LOOKUP_RATE);
    return ok;
}

/* 0 and *role for a live key whose secret hashes to hash; -SY_ENOTFOUND for an unknown,
 * revoked or mismatched key; -SY_EBUSY when unseen keys come too fast; -SY_ECONN / -SY_EDB
 * when PostgreSQL could not answer. */
static int key_lookup(struct gw_auth *a, const char *id, const uint8_t hash[32], enum gw_role *role)
{
    const char *params[1] = {id};
    struct sy_pg_res *res = NULL;
    struct sy_pg *pg;
    uint8_t stored[SY_SHA256_LEN];
    const char *hex, *revoked;
    int rc;

    switch (cache_get(a, id, hash, role)) {
    case CACHE_PASS:
        return 0;
    case CACHE_REFUSE:
        return -SY_ENOTFOUND;
    case CACHE_UNSEEN:
        if (!a->pool)
            return -SY_ENOTFOUND;
        if (!lookup_allowed(a))
            return -SY_EBUSY;
        break;
    case CACHE_STALE:
        break;
    }
    pg = gw_pg_take(a->pool);
    if (!pg)
        return -SY_ECONN;
    rc = sy_pg_exec(pg,
                    "SELECT role, encode(key_hash, 'hex'), revoked_at IS NOT NULL"
                    " FROM sy_api_keys WHERE id = $1",
                    1, params, &res);
    if (rc < 0) {
        sy_log_write(SY_LOG_WARN, "gateway.auth", -1, sy_pg_error(pg), "API key lookup failed");
        goto out;
    }
    rc = -SY_ENOTFOUND;
    if (sy_pg_res_rows(res) == 1) {
        hex = sy_pg_res_get(res, 0, 1);
        revoked = sy_pg_res_get(res, 0, 2);
        *role = gw_role_parse(sy_pg_res_get(res, 0, 0));
        if (!hex || !revoked || sy_hex_decode(hex, strlen(hex), stored, sizeof stored) != 0 ||
            strcmp(revoked, "f") != 0)
            *role = 0;
    } else {
        *role = 0;
    }
    /* The stored hash, not the one sent: a wrong secret for a live id then costs no query
     * until the entry expires, and neither does a made-up or revoked id. */
    cache_put(a, id, *role ? stored : hash, *role);
    if (!*role || !sy_ct_equal(stored, hash, SY_SHA256_LEN))
        goto out;
    rc = 0;
    /* Once per cache lifetime, so it says "used within the last TTL", not every request. */
    if (sy_pg_exec(pg, "UPDATE sy_api_keys SET last_used_at = now() WHERE id = $1", 1, params,
                   NULL) < 0)
        sy_log_write(SY_LOG_WARN, "gateway.auth", -1, sy_pg_error(pg),
                     "could not record an API key's last use");
out:
    sy_pg_res_free(res);
    gw_pg_put(a->pool, pg, rc);
    return rc;
}

/* --- the check ---------------------------------------------------------------------------- */

#define SCHEMES "send Authorization: Bearer <token>, Authorization: Api-Key <key> or X-API-Key"

/* The credentials after a case-insensitive scheme and its spaces, or NULL. */
static const char *after_scheme(const char *h, const char *scheme)
{
    size_t n = strlen(scheme);

    if (strncasecmp(h, scheme, n) != 0 || h[n] != ' ')
        return NULL;
    h += n;
    while (*h == ' ')
        h++;
    return h;
}

int gw_auth_verify(struct gw_auth *a, const char *authorization, const char *x_api_key,
                   unsigned allowed, const struct gw_request *rq, struct gw_response *rs,
                   struct gw_principal *who)
{
    struct gw_principal p = {0};
    const char *key = NULL, *token = NULL;
    char why[128] = "", id[GW_APIKEY_ID_LEN + 1];
    uint8_t hash[SY_SHA256_LEN];
    int rc;

    if (authorization && authorization[0]) {
        token = after_scheme(authorization, "Bearer");
        if (!token)
            key = after_scheme(authorization, "Api-Key");
        if (!token && !key) {
            gw_error(rs, rq, 401, "unauthenticated", NULL,
                     "unknown Authorization scheme: " SCHEMES);
            return 401;
        }
    } else if (x_api_key && x_api_key[0]) {
        key = x_api_key;
    } else {
        gw_error(rs, rq, 401, "unauthenticated", NULL, "credentials required: " SCHEMES);
        return 401;
    }

    if (token) {
        struct gw_jwt_claims c;

        rc = gw_jwt_verify(token, a->jwt_secret, a->jwt_secret_len, sy_wall_ms() / 1000, 30, &c,
                           why, sizeof why);
        if (rc < 0) {
            gw_error(rs, rq, 401, "unauthenticated", NULL, "invalid token (%s): " SCHEMES, why);
            return 401;
        }
        p.role = c.role;
        snprintf(p.kind, sizeof p.kind, "jwt");
        snprintf(p.subject, sizeof p.subject, "%s", c.sub);
    } else {
        if (gw_apikey_parse(key, id, hash) != 0) {
            gw_error(rs, rq, 401, "unauthenticated", NULL, "malformed API key: " SCHEMES);
            return 401;
        }
        rc = key_lookup(a, id, hash, &p.role);
        if (rc == -SY_ENOTFOUND) {
            gw_error(rs, rq, 401, "unauthenticated", NULL, "unknown or revoked API key: " SCHEMES);
            return 401;
        }
        if (rc == -SY_EBUSY) {
            gw_error(rs, rq, 429, "rate_limited", NULL,
                     "too many unknown API keys at once; try again shortly");
            rs->retry_after_s = 1;
            return 429;
        }
        if (rc < 0) {
            gw_error(rs, rq, 503, "unavailable", NULL, "API keys cannot be checked right now");
            rs->retry_after_s = 5;
            return 503;
        }
        snprintf(p.kind, sizeof p.kind, "apikey");
        snprintf(p.subject, sizeof p.subject, "%s", id);
    }
    if (!(p.role & allowed)) {
        gw_error(rs, rq, 403, "forbidden", NULL, "role %s may not do this", gw_role_name(p.role));
        return 403;
    }
    if (who)
        *who = p;
    return 0;
}

int gw_auth_check(struct gw_auth *a, const struct gw_request *rq, unsigned allowed,
                  struct gw_response *rs, struct gw_principal *who)
{
    return gw_auth_verify(a, gw_header(rq, "Authorization"), gw_header(rq, "X-API-Key"), allowed,
                          rq, rs, who);
}
