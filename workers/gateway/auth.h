/* auth.h - who is calling sy-gateway's REST API, and may they: API keys kept in PostgreSQL as
 * hashes, and HS256 JSON Web Tokens, each carrying one of four roles.
 *
 * API keys read "sy_<id>_<secret>": <id> is 12 lower-case hex characters (6 random bytes), the
 * public name of the key and its row in sy_api_keys; <secret> is 32 random bytes in unpadded
 * base64url (43 characters). Only the SHA-256 of the secret's text is stored, so a key is seen
 * once, when it is made. Clients send it as "Authorization: Api-Key <key>" or "X-API-Key: <key>".
 *
 * JWTs come as "Authorization: Bearer <token>", signed with HMAC-SHA256 under the secret of
 * SY_GATEWAY_JWT_SECRET (or the file named by SY_GATEWAY_JWT_SECRET_FILE). The claims used are
 * exp (required), nbf and iat (checked when present), sub, and role (required). */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

enum gw_role {
    GW_ROLE_CHATBOT = 1u << 0,
    GW_ROLE_AGENT = 1u << 1,
    GW_ROLE_ADMIN = 1u << 2,
    GW_ROLE_READONLY = 1u << 3,
};
#define GW_ROLES_ALL (GW_ROLE_CHATBOT | GW_ROLE_AGENT | GW_ROLE_ADMIN | GW_ROLE_READONLY)

#define GW_APIKEY_ID_LEN  12 /* hex characters */
#define GW_APIKEY_SEC_LEN 43 /* base64url characters of 32 bytes */
#define GW_APIKEY_LEN     (4 + GW_APIKEY_ID_LEN + GW_APIKEY_SEC_LEN) /* "sy_" id "_" secret */
#define GW_JWT_MAX        4096                                       /* bytes of a token */
#define GW_SUB_MAX        128 /* bytes of a subject, NUL included */

/* The role's name ("chatbot", ...), or NULL for a value that is not exactly one role. */
const char *gw_role_name(enum gw_role role);
/* The role named by name, or 0 for a name that is none of the four. */
enum gw_role gw_role_parse(const char *name);

/* Makes a fresh API key for role (name is not part of the key; it is the caller's to store):
 * key_out receives the whole key (at least GW_APIKEY_LEN + 1 bytes), id_out its id (at least
 * GW_APIKEY_ID_LEN + 1), hash_out the SHA-256 to store. 0, -SY_EINVAL (not exactly one role,
 * a name empty or over 200 bytes, small buffers) or -SY_EIO (no randomness). */
int gw_apikey_new(enum gw_role role, const char *name, char *key_out, size_t key_len, char *id_out,
                  size_t id_len, uint8_t hash_out[32]);
/* Splits key into its id (id_out, GW_APIKEY_ID_LEN + 1 bytes) and the SHA-256 of its secret.
 * 0, or -SY_EDECODE when key is not in the format above. */
int gw_apikey_parse(const char *key, char *id_out, uint8_t hash_out[32]);

struct gw_jwt_claims {
    enum gw_role role;
    char sub[GW_SUB_MAX]; /* "" when the token has none */
    int64_t exp;
    int64_t iat; /* 0 when absent */
};
/* Verifies an HS256 token at time now (seconds since the epoch), allowing leeway_s of clock
 * skew on exp, nbf and iat. 0 and *out filled; -SY_ETOOBIG for a token over GW_JWT_MAX bytes;
 * -SY_EINVAL without a token or a secret; -SY_EDECODE for any other refusal (not three strict
 * base64url parts of JSON objects, an alg other than HS256, a signature that does not match,
 * a time outside the token's window, a missing or unknown role). why receives a short reason
 * for logs and the client, never the token. */
int gw_jwt_verify(const char *token, const uint8_t *secret, size_t secret_len, int64_t now,
                  int leeway_s, struct gw_jwt_claims *out, char *why, size_t why_len);

/* Who is calling, once authenticated. */
struct gw_principal {
    enum gw_role role;
    char kind[8];             /* "apikey" or "jwt" */
    char subject[GW_SUB_MAX]; /* the key's id, or the token's sub */
};

struct gw_auth;
/* pg_url: where sy_api_keys lives (NULL: API keys are refused); jwt_secret (borrowed for the
 * call, copied; 32..1024 bytes): NULL refuses JWTs; cache_ttl_ms: how long a verified key is
 * trusted without asking PostgreSQL again, so a revoke takes effect within it (0: 30 s). NULL with
 * err on failure. Connections are opened when first needed. */
struct gw_auth *gw_auth_new(const char *pg_url, const uint8_t *jwt_secret, size_t jwt_secret_len,
                            long cache_ttl_ms, char *err, size_t errlen);
/* Accepts NULL. */
void gw_auth_destroy(struct gw_auth *a);

/* Checks the credentials of one request, given its Authorization and X-API-Key header values
 * (either may be NULL; Authorization wins when both are sent), against the roles in allowed
 * (a mask of enum gw_role); tokens get 30 s of clock skew. 0 and *who
 * filled when allowed; else rs is filled with gw_error: 401 "unauthenticated" (no or invalid
 * credentials; the message names the schemes accepted), 403 "forbidden" (valid, role not
 * allowed), 429 "rate_limited" with Retry-After: 1 (API keys whose ids were not seen lately
 * arrive faster than 20 a second after a burst of 50: each such key costs a PostgreSQL
 * query, so made-up keys cannot flood it) or 503 "unavailable" with Retry-After
 * (PostgreSQL unreachable), and the status is returned. An id without a live key is refused
 * unasked for 10 s after a lookup, and a live key's stored hash is remembered, so a wrong
 * secret costs no query either. rq (may be NULL) only supplies the request id of the error body.
 * Safe from many threads at once. */
int gw_auth_verify(struct gw_auth *a, const char *authorization, const char *x_api_key,
                   unsigned allowed, const struct gw_request *rq, struct gw_response *rs,
                   struct gw_principal *who);
/* gw_auth_verify with the request's own headers. */
int gw_auth_check(struct gw_auth *a, const struct gw_request *rq, unsigned allowed,
                  struct gw_response *rs, struct gw_principal *who);

#endif
