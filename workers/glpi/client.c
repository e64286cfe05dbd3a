/* client.c - GLPI's REST API v1 for sy-glpi (see client.h). */
#include "glpi/client.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sy/err.h"
#include "sy/http.h"
#include "sy/log.h"

#define TOKEN_MAX  256 /* a session token as GLPI gave it */
#define URL_MAX    4096
#define SEARCH_MAX 50 /* rows one exact search reads: more than one is already a surprise */

struct glpi_session {
    struct glpi_hook hook; /* a copy, owned */
    pthread_mutex_t mu;
    char token[TOKEN_MAX]; /* "" while no session is open */
    unsigned opens;
};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

void glpi_hook_clear(struct glpi_hook *h)
{
    if (!h)
        return;
    free(h->id);
    free(h->api_url);
    free(h->app_token);
    if (h->user_token) {
        memset(h->user_token, 0, strlen(h->user_token));
        free(h->user_token);
    }
    if (h->webhook_secret) {
        memset(h->webhook_secret, 0, strlen(h->webhook_secret));
        free(h->webhook_secret);
    }
    memset(h, 0, sizeof *h);
}

void glpi_res_clear(struct glpi_res *r)
{
    if (!r)
        return;
    json_decref(r->json);
    memset(r, 0, sizeof *r);
    r->retry_after_s = -1;
}

struct glpi_session *glpi_session_new(const struct glpi_hook *h)
{
    struct glpi_session *s = calloc(1, sizeof *s);

    if (!s)
        return NULL;
    s->hook = *h;
    s->hook.id = dup_or_null(h->id);
    s->hook.api_url = dup_or_null(h->api_url);
    s->hook.app_token = dup_or_null(h->app_token);
    s->hook.user_token = dup_or_null(h->user_token);
    s->hook.webhook_secret = dup_or_null(h->webhook_secret);
    if (!s->hook.id || !s->hook.api_url || !s->hook.user_token ||
        (h->app_token && !s->hook.app_token) || (h->webhook_secret && !s->hook.webhook_secret) ||
        pthread_mutex_init(&s->mu, NULL) != 0) {
        glpi_hook_clear(&s->hook);
        free(s);
        return NULL;
    }
    return s;
}

const struct glpi_hook *glpi_session_hook(const struct glpi_session *s)
{
    return &s->hook;
}

unsigned glpi_session_opens(const struct glpi_session *s)
{
    unsigned n;

    pthread_mutex_lock((pthread_mutex_t *)&s->mu);
    n = s->opens;
    pthread_mutex_unlock((pthread_mutex_t *)&s->mu);
    return n;
}

/* --- one exchange ------------------------------------------------------------------------- */

static void set_msg(struct glpi_res *r, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_msg(struct glpi_res *r, const char *code, const char *fmt, ...)
{
    va_list ap;

    snprintf(r->code, sizeof r->code, "%s", code);
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
}

/* GLPI's error body: ["CODE", "message"] (the message an array for bulk writes). */
static void parse_error(struct glpi_res *r)
{
    const char *code = json_string_value(json_array_get(r->json, 0));
    json_t *m = json_array_get(r->json, 1);
    const char *msg = json_string_value(m);
    char *dumped = NULL;

    if (!code) {
        snprintf(r->code, sizeof r->code, "HTTP_%ld", r->status);
        snprintf(r->msg, sizeof r->msg, "GLPI answered %ld", r->status);
        return;
    }
    snprintf(r->code, sizeof r->code, "%s", code);
    if (!msg && m)
        msg = dumped = json_dumps(m, JSON_COMPACT);
    snprintf(r->msg, sizeof r->msg, "%s", msg ? msg : "");
    free(dumped);
    /* GLPI appends where its documentation explains the code: not ours to repeat. */
    char *doc = strstr(r->msg, "; view documentation in your browser");
    if (doc)
        *doc = '\0';
}

static bool is_json_type(const char *ct)
{
    return ct && strncasecmp(ct, "application/json", 16) == 0;
}

/* One request with the given session token ("" for initSession/none). */
static enum glpi_rc exchange(struct glpi_session *s, struct sy_http *http, const char *method,
                             const char *path, const json_t *body, const char *token, bool login,
                             struct glpi_res *r)
{
    char url[URL_MAX], app[TOKEN_MAX + 16], auth[600], sess[TOKEN_MAX + 32], err[256];
    const char *headers[6];
    struct sy_http_resp resp = {0};
    size_t nh = 0;
    int rc, delay = -1, v;

    glpi_res_clear(r);
    if ((size_t)snprintf(url, sizeof url, "%s/%s", s->hook.api_url, path) >= sizeof url) {
        set_msg(r, "URL_TOO_LONG", "the request's URL is too long");
        return GLPI_REJECT;
    }
    headers[nh++] = "X-GLPI-Sanitized-Content: false";
    if (s->hook.app_token) {
        snprintf(app, sizeof app, "App-Token: %s", s->hook.app_token);
        headers[nh++] = app;
    }
    if (login) {
        snprintf(auth, sizeof auth, "Authorization: user_token %s", s->hook.user_token);
        headers[nh++] = auth;
    } else {
        snprintf(sess, sizeof sess, "Session-Token: %s", token);
        headers[nh++] = sess;
    }
    headers[nh] = NULL;
    rc = sy_http_json(http, method, url, headers, body, &resp, &r->json, err, sizeof err);
    memset(auth, 0, sizeof auth);
    r->status = resp.status;
    r->retry_after_s = rc == 0 ? resp.retry_after_s : -1;
    v = sy_http_verdict(rc, &resp, &delay);
    if (rc != 0) {
        set_msg(r, rc == -SY_ETIMEOUT ? "TIMEOUT" : "TRANSPORT", "%s", err);
        sy_http_resp_free(&resp);
        return v == 2 ? GLPI_REJECT : GLPI_RETRY;
    }
    if (v == 0 && (!r->json || !is_json_type(resp.content_type))) {
        /* Not GLPI's JSON: a lost create (glpi#16177) or a page that is not the API. */
        if (resp.len == 0)
            set_msg(r, "EMPTY_REPLY", "GLPI answered %ld with an empty body", resp.status);
        else
            set_msg(r, "NOT_JSON", "GLPI answered %ld with something that is not its JSON API",
                    resp.status);
        json_decref(r->json);
        r->json = NULL;
        sy_http_resp_free(&resp);
        return GLPI_RETRY;
    }
    sy_http_resp_free(&resp);
    if (v == 0)
        return GLPI_OK;
    parse_error(r);
    if (v == 1) {
        if (delay >= 0)
            r->retry_after_s = delay;
        return GLPI_RETRY;
    }
    /* Refusals that are not about the request's data: the session, the hook's tokens, rights
     * and GLPI's own configuration. Trying later (after an operator fixed them) can help. */
    if (r->status == 401 || r->status == 403 ||
        strcmp(r->code, "ERROR_SESSION_TOKEN_MISSING") == 0 ||
        strncmp(r->code, "ERROR_WRONG_APP_TOKEN", 21) == 0 ||
        strcmp(r->code, "ERROR_APP_TOKEN_PARAMETERS_MISSING") == 0 ||
        strcmp(r->code, "ERROR_NOT_ALLOWED_IP") == 0 ||
        strcmp(r->code, "ERROR_LOGIN_PARAMETERS_MISSING") == 0 ||
        strcmp(r->code, "ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM") == 0 ||
        strcmp(r->code, "ERROR_ITEMTYPE_NOT_FOUND_NOR_COMMONDBTM") == 0)
        return GLPI_RETRY;
    return GLPI_REJECT;
}

static enum glpi_rc open_locked(struct glpi_session *s, struct sy_http *http, struct glpi_res *r)
{
    enum glpi_rc rc = exchange(s, http, "GET", "initSession", NULL, "", true, r);
    const char *t;
    size_t n;

    if (rc != GLPI_OK)
        return rc;
    t = json_string_value(json_object_get(r->json, "session_token"));
    n = t ? strlen(t) : 0;
    /* Sent back exactly as given (GLPI 11 refuses altered ids), so only trimmed. */
    while (n > 0 && isspace((unsigned char)t[n - 1]))
        n--;
    if (!t || n == 0 || n >= sizeof s->token) {
        set_msg(r, "NO_SESSION_TOKEN", "initSession answered without a usable session_token");
        return GLPI_RETRY;
    }
    memcpy(s->token, t, n);
    s->token[n] = '\0';
    s->opens++;
    return GLPI_OK;
}

enum glpi_rc glpi_session_open(struct glpi_session *s, struct sy_http *http, struct glpi_res *r)
{
    enum glpi_rc rc;

    pthread_mutex_lock(&s->mu);
    rc = open_locked(s, http, r);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* The current token, opening a session when there is none. */
static enum glpi_rc current(struct glpi_session *s, struct sy_http *http, char *token,
                            struct glpi_res *r)
{
    enum glpi_rc rc = GLPI_OK;

    pthread_mutex_lock(&s->mu);
    if (!s->token[0])
        rc = open_locked(s, http, r);
    if (rc == GLPI_OK)
        memcpy(token, s->token, sizeof s->token);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Forgets `token` when it is still the current one: of several threads that met the expiry
 * at once, only the first opens a new session, the others use it. */
static void forget(struct glpi_session *s, const char *token)
{
    pthread_mutex_lock(&s->mu);
    if (strcmp(s->token, token) == 0)
        s->token[0] = '\0';
    pthread_mutex_unlock(&s->mu);
}

enum glpi_rc glpi_call(struct glpi_session *s, struct sy_http *http, const char *method,
                       const char *path, const json_t *body, struct glpi_res *r)
{
    char token[TOKEN_MAX];
    enum glpi_rc rc;

    for (int round = 0;; round++) {
        if ((rc = current(s, http, token, r)) != GLPI_OK)
            return rc;
        rc = exchange(s, http, method, path, body, token, false, r);
        if (rc == GLPI_OK || r->status != 401 ||
            strcmp(r->code, "ERROR_SESSION_TOKEN_INVALID") != 0)
            return rc;
        forget(s, token);
        /* Once: a session that is refused as soon as it is made is not going to work now,
         * and looping on initSession is how servers fill up with session files. */
        if (round == 1)
            return GLPI_RETRY;
    }
}

void glpi_session_free(struct glpi_session *s, struct sy_http *http)
{
    if (!s)
        return;
    if (http && s->token[0]) {
        struct glpi_res r = {.retry_after_s = -1};

        if (exchange(s, http, "GET", "killSession", NULL, s->token, false, &r) != GLPI_OK)
            sy_log_warn("glpi.session", "hook %s: killSession failed: %s %s", s->hook.id, r.code,
                        r.msg);
        glpi_res_clear(&r);
    }
    memset(s->token, 0, sizeof s->token);
    pthread_mutex_destroy(&s->mu);
    glpi_hook_clear(&s->hook);
    free(s);
}

/* --- items ---------------------------------------------------------------------------------- */

enum glpi_rc glpi_create(struct glpi_session *s, struct sy_http *http, const char *itemtype,
                         const json_t *input, long long *id, struct glpi_res *r)
{
    json_t *body = json_pack("{s:O}", "input", input);
    char path[64];
    enum glpi_rc rc;
    json_t *v;

    if (!body) {
        glpi_res_clear(r);
        set_msg(r, "NOMEM", "out of memory");
        return GLPI_RETRY;
    }
    snprintf(path, sizeof path, "%s/", itemtype);
    rc = glpi_call(s, http, "POST", path, body, r);
    json_decref(body);
    if (rc != GLPI_OK)
        return rc;
    v = json_object_get(r->json, "id");
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        *id = (long long)json_integer_value(v);
        return GLPI_OK;
    }
    if (json_is_false(v)) {
        const char *m = json_string_value(json_object_get(r->json, "message"));

        set_msg(r, "ERROR_GLPI_ADD", "%s", m && *m ? m : "GLPI did not add the item");
        return GLPI_REJECT;
    }
    /* A success without an id: the item may exist; the caller looks before creating again. */
    set_msg(r, "NO_ID", "GLPI answered a create without the new item's id");
    return GLPI_RETRY;
}

enum glpi_rc glpi_update(struct glpi_session *s, struct sy_http *http, const char *itemtype,
                         long long id, const json_t *input, struct glpi_res *r)
{
    json_t *body = json_pack("{s:O}", "input", input);
    char path[96];
    enum glpi_rc rc;

    if (!body) {
        glpi_res_clear(r);
        set_msg(r, "NOMEM", "out of memory");
        return GLPI_RETRY;
    }
    snprintf(path, sizeof path, "%s/%lld", itemtype, id);
    rc = glpi_call(s, http, "PUT", path, body, r);
    json_decref(body);
    return rc;
}

/* --- search --------------------------------------------------------------------------------- */

static bool value_matches(const json_t *v, const char *want, bool suffix)
{
    size_t i, wl = strlen(want);
    json_t *e;

    if (json_is_array(v)) {
        json_array_foreach(v, i, e) if (value_matches(e, want, suffix)) return true;
        return false;
    }
    if (!json_is_string(v))
        return false;
    const char *s = json_string_value(v);
    size_t sl = strlen(s);

    if (suffix)
        return sl >= wl && strcasecmp(s + sl - wl, want) == 0;
    return sl == wl && strcasecmp(s, want) == 0;
}

enum glpi_rc glpi_search_eq(struct glpi_session *s, struct sy_http *http, const char *itemtype,
                            int field, const char *value, bool suffix, long long **ids, size_t *n,
                            struct glpi_res *r)
{
    char anchored[600], path[URL_MAX], key[8];
    char *esc;
    json_t *data, *row;
    enum glpi_rc rc;
    size_t i;

    *ids = NULL;
    *n = 0;
    if (strlen(value) > 500) {
        glpi_res_clear(r);
        set_msg(r, "VALUE_TOO_LONG", "a search value over 500 bytes");
        return GLPI_REJECT;
    }
    /* ^…$ makes GLPI's LIKE exact at both ends; a suffix search anchors the end only. */
    snprintf(anchored, sizeof anchored, "%s%s$", suffix ? "" : "^", value);
    if (!(esc = sy_http_escape(anchored))) {
        glpi_res_clear(r);
        set_msg(r, "NOMEM", "out of memory");
        return GLPI_RETRY;
    }
    /* Brackets percent-encoded: PHP decodes them, and no proxy on the way mangles them. */
    snprintf(path, sizeof path,
             "search/%s?criteria%%5B0%%5D%%5Bfield%%5D=%d"
             "&criteria%%5B0%%5D%%5Bsearchtype%%5D=contains"
             "&criteria%%5B0%%5D%%5Bvalue%%5D=%s&forcedisplay%%5B0%%5D=2&range=0-%d",
             itemtype, field, esc, SEARCH_MAX - 1);
    free(esc);
    if ((rc = glpi_call(s, http, "GET", path, NULL, r)) != GLPI_OK)
        return rc;
    /* Without hits GLPI leaves "data" out altogether. */
    data = json_object_get(r->json, "data");
    if (!json_is_array(data) || json_array_size(data) == 0)
        return GLPI_OK;
    if (!(*ids = calloc(json_array_size(data), sizeof **ids))) {
        set_msg(r, "NOMEM", "out of memory");
        return GLPI_RETRY;
    }
    snprintf(key, sizeof key, "%d", field);
    json_array_foreach(data, i, row)
    {
        json_t *id = json_object_get(row, "2");
        long long v = json_is_integer(id)  ? (long long)json_integer_value(id)
                      : json_is_string(id) ? atoll(json_string_value(id))
                                           : 0;

        if (v > 0 && value_matches(json_object_get(row, key), value, suffix))
            (*ids)[(*n)++] = v;
    }
    return GLPI_OK;
}

/* --- text ----------------------------------------------------------------------------------- */

char *glpi_html_escape(const char *s)
{
    size_t n = 0;
    char *out, *p;

    for (const char *c = s; *c; c++)
        n += *c == '&'                 ? 5
             : *c == '<' || *c == '>'  ? 4
             : *c == '"' || *c == '\'' ? 5
             : *c == '\n'              ? 4
                                       : 1;
    if (!(out = malloc(n + 1)))
        return NULL;
    p = out;
    for (const char *c = s; *c; c++) {
        const char *rep = *c == '&'    ? "&amp;"
                          : *c == '<'  ? "&lt;"
                          : *c == '>'  ? "&gt;"
                          : *c == '"'  ? "&#34;"
                          : *c == '\'' ? "&#39;"
                          : *c == '\n' ? "<br>"
                                       : NULL;

        if (rep) {
            size_t l = strlen(rep);

            memcpy(p, rep, l);
            p += l;
        } else if (*c != '\r') {
            *p++ = *c;
        }
    }
    *p = '\0';
    return out;
}
