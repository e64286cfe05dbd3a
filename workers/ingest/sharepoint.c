/* sharepoint.c - the SharePoint connector of sy-ingest (see connector.h): a document library's
 * files through Microsoft Graph, listed by its delta feed and fetched by their download URL,
 * with an app-only (client credentials) token cached per library. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/connector.h"
#include "ingest/settings.h"
#include "sy/clock.h"
#include "sy/doc.h"
#include "sy/err.h"
#include "sy/http.h"
#include "sy/log.h"

#define VALUE_MAX    SETTING_MAX
#define TOKEN_MAX    16384              /* an access token (a JWT of a few KiB) */
#define TOKEN_ANSWER (64 * 1024)        /* the token endpoint's answer */
#define PAGE_MAX     (16 * 1024 * 1024) /* one delta page or item */
#define PAGES_MAX    500                /* pages one listing reads at most */
#define ID_MAX       256                /* a driveItem id */
#define VERSION_MAX  250                /* its cTag */
#define TITLE_MAX    400                /* a file name as kept in the metadata */
#define MIME_MAX     255
#define EXPIRES_MAX  86400 /* seconds: a token said to last longer is renewed after a day */

struct sp_conf {
    char *tenant, *client_id, *secret, *drive_id;
    char *token_url, *graph_url, *scope;
    size_t origin_len; /* graph_url's scheme://host[:port] */
    bool allow_http;
    pthread_mutex_t mu; /* guards the token */
    char *token;
    int64_t token_until_ms; /* monotonic */
};

static void sp_unconfigure(void *conf)
{
    struct sp_conf *c = conf;

    if (!c)
        return;
    free(c->tenant);
    free(c->client_id);
    free(c->drive_id);
    free(c->token_url);
    free(c->graph_url);
    free(c->scope);
    setting_secret_free(c->secret);
    setting_secret_free(c->token);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* --- settings ------------------------------------------------------------------------------ */

/* The length of url's scheme://host[:port], 0 when it is not an http(s) URL with a host (or
 * not https:// unless allow_http). */
static size_t origin_of(const char *url, bool allow_http)
{
    size_t skip = strncmp(url, "https://", 8) == 0                ? 8
                  : allow_http && strncmp(url, "http://", 7) == 0 ? 7
                                                                  : 0;
    size_t host = skip ? strcspn(url + skip, "/?#") : 0;

    return host ? skip + host : 0;
}

static int url_setting(const struct sy_doc *doc, const struct sy_node *m, const char *key,
                       const char *field, const char *def, bool allow_http, char **out, char *err,
                       size_t errlen)
{
    const struct sy_node *n = sy_node_get(m, field);
    int rc;

    if (!n)
        *out = strdup(def);
    else if ((rc = setting_text(doc, m, key, field, true, out, err, errlen)) != 0)
        return rc;
    if (!*out)
        return -SY_ENOMEM;
    /* No slash at the end: paths are added to it. */
    for (size_t k = strlen(*out); k > 0 && (*out)[k - 1] == '/'; k--)
        (*out)[k - 1] = '\0';
    if (!origin_of(*out, allow_http)) {
        sy_errf(err, errlen, "%s:%d: %s.%s: expected an https:%s URL with a host", sy_doc_name(doc),
                sy_node_line(n ? n : m), key, field, allow_http ? " or http:" : "");
        return -SY_ECONFIG;
    }
    return 0;
}

static int sp_configure(const struct sy_doc *doc, const struct sy_node *m, const char *key,
                        const char *dir, void **conf, char *err, size_t errlen)
{
    static const char *const keys[] = {
        "tenant",   "client_id", "client_secret_env", "client_secret_file",
        "drive_id", "token_url", "graph_url",         "allow_http",
        NULL};
    struct sp_conf *c = calloc(1, sizeof *c);
    char def[VALUE_MAX + 100], why[256];
    int rc;

    *conf = NULL;
    if (!c)
        return -SY_ENOMEM;
    pthread_mutex_init(&c->mu, NULL);
    if ((rc = sy_node_check_keys(doc, m, keys, err, errlen)) != 0 ||
        (rc = setting_text(doc, m, key, "tenant", true, &c->tenant, err, errlen)) != 0 ||
        (rc = setting_text(doc, m, key, "client_id", true, &c->client_id, err, errlen)) != 0 ||
        (rc = setting_text(doc, m, key, "drive_id", true, &c->drive_id, err, errlen)) != 0 ||
        (rc = setting_secret(doc, m, dir, key, "client_secret", &c->secret, err, errlen)) != 0)
        goto fail;
    if (sy_node_get(m, "allow_http") &&
        sy_node_bool(sy_node_get(m, "allow_http"), &c->allow_http, why, sizeof why) != 0) {
        sy_errf(err, errlen, "%s: %s.%s", sy_doc_name(doc), key, why);
        rc = -SY_ECONFIG;
        goto fail;
    }
    /* Names that go into a URL's path: no character that would end the segment. */
    if (!*c->tenant || strcspn(c->tenant, "/?#% ") != strlen(c->tenant) || !*c->drive_id ||
        strlen(c->drive_id) > ID_MAX || strcspn(c->drive_id, "/?#") != strlen(c->drive_id)) {
        sy_errf(err, errlen, "%s:%d: %s: tenant and drive_id: expected a name or id, not a path",
                sy_doc_name(doc), sy_node_line(m), key);
        rc = -SY_ECONFIG;
        goto fail;
    }
    snprintf(def, sizeof def, "https://login.microsoftonline.com/%s/oauth2/v2.0/token", c->tenant);
    if ((rc = url_setting(doc, m, key, "token_url", def, c->allow_http, &c->token_url, err,
                          errlen)) != 0 ||
        (rc = url_setting(doc, m, key, "graph_url", "https://graph.microsoft.com/v1.0",
                          c->allow_http, &c->graph_url, err, errlen)) != 0)
        goto fail;
    c->origin_len = origin_of(c->graph_url, c->allow_http);
    /* App-only tokens are asked for the resource's ".default" scope: what an administrator
     * granted the app on Graph (Files.Read.All or Sites.Read.All). */
    snprintf(def, sizeof def, "%.*s/.default", (int)c->origin_len, c->graph_url);
    if (!(c->scope = strdup(def))) {
        rc = -SY_ENOMEM;
        goto fail;
    }
    *conf = c;
    return 0;
fail:
    sp_unconfigure(c);
    return rc;
}

/* Text for a message: s, or "" when the answer left it out. */
static const char *or_empty(const char *s)
{
    return s ? s : "";
}

/* --- the token ------------------------------------------------------------------------------ */

static struct sy_http *http_of(const struct sp_conf *c, const struct in_env *env, size_t body_max)
{
    struct sy_http_opts o = {.connect_timeout_ms = env->connect_timeout_ms,
                             .timeout_ms = env->timeout_ms,
                             .body_max = body_max,
                             .insecure_http = c->allow_http};

    return sy_http_new(&o);
}

/* Appends name=value (percent-encoded) to a form body of cap bytes. */
static int form_add(char *form, size_t cap, const char *name, const char *value)
{
    char *v = sy_http_escape(value);
    size_t used = strlen(form);
    int n;

    if (!v)
        return -SY_ENOMEM;
    n = snprintf(form + used, cap - used, "%s%s=%s", used ? "&" : "", name, v);
    explicit_bzero(v, strlen(v));
    free(v);
    return n < 0 || (size_t)n >= cap - used ? -SY_ETOOBIG : 0;
}

/* Asks the token endpoint for a new token into c->token; called with c->mu held. A client the
 * endpoint refuses is -SY_ECONFIG: only an operator can mend its id, secret or consent. */
static int token_request(struct sp_conf *c, struct sy_http *h, long long *retry_after_ms, char *err,
                         size_t errlen)
{
    static const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded",
                                          "Accept: application/json", NULL};
    char form[3 * (VALUE_MAX + SECRET_MAX) + 256] = "";
    struct sy_http_resp r = {0};
    json_t *j = NULL, *exp;
    const char *tok;
    long long expires = 0;
    int rc, delay;

    if ((rc = form_add(form, sizeof form, "grant_type", "client_credentials")) != 0 ||
        (rc = form_add(form, sizeof form, "client_id", c->client_id)) != 0 ||
        (rc = form_add(form, sizeof form, "client_secret", c->secret)) != 0 ||
        (rc = form_add(form, sizeof form, "scope", c->scope)) != 0) {
        explicit_bzero(form, sizeof form);
        sy_errf(err, errlen, "token request: %s", sy_strerror(rc));
        return rc;
    }
    rc = sy_http_do(h, "POST", c->token_url, headers, form, strlen(form), &r, err, errlen);
    explicit_bzero(form, sizeof form);
    if (rc == 0 && r.len > 0 && r.len <= TOKEN_ANSWER)
        j = json_loadb(r.body, r.len, 0, NULL);
    switch (sy_http_verdict(rc, &r, &delay)) {
    case 1:
        *retry_after_ms = delay >= 0 ? delay * 1000LL : -1;
        if (rc == 0)
            sy_errf(err, errlen, "token endpoint: HTTP %ld", r.status);
        rc = rc ? rc : -SY_EBUSY;
        goto out;
    case 2:
        if (rc == 0)
            sy_errf(err, errlen, "token endpoint refused the client %s: HTTP %ld %.60s: %.240s",
                    c->client_id, r.status,
                    or_empty(json_string_value(json_object_get(j, "error"))),
                    or_empty(json_string_value(json_object_get(j, "error_description"))));
        rc = -SY_ECONFIG;
        goto out;
    }
    tok = json_string_value(json_object_get(j, "access_token"));
    exp = json_object_get(j, "expires_in");
    /* A number, though older endpoints wrote it as a string. */
    expires = json_is_integer(exp)  ? json_integer_value(exp)
              : json_is_string(exp) ? atoll(json_string_value(exp))
                                    : 0;
    if (r.status != 200 || !tok || !*tok || strlen(tok) >= TOKEN_MAX ||
        strcspn(tok, "\r\n") != strlen(tok) || expires <= 0) {
        sy_errf(err, errlen,
                "token endpoint: HTTP %ld without a usable access_token and expires_in", r.status);
        rc = -SY_EPROTO;
        goto out;
    }
    if (expires > EXPIRES_MAX)
        expires = EXPIRES_MAX;
    if (c->token) {
        explicit_bzero(c->token, strlen(c->token));
        free(c->token);
    }
    if (!(c->token = strdup(tok))) {
        rc = -SY_ENOMEM;
        goto out;
    }
    /* Renewed once four fifths of its life are gone, so no request leaves with a token about
     * to lapse on its way. */
    c->token_until_ms = sy_mono_ms() + expires * 800;
out:
    if (j && json_object_get(j, "access_token"))
        json_object_del(j, "access_token");
    json_decref(j);
    if (r.body)
        explicit_bzero(r.body, r.len);
    sy_http_resp_free(&r);
    return rc;
}

/* The "Authorization: Bearer ..." header into hdr: the cached token, or a new one. stale, when
 * not NULL, is a token Graph refused: replaced unless another thread replaced it already. The
 * mutex is held while a token is asked for, so threads wait for one answer instead of each
 * asking. Access tokens are not registered with the log's redaction (its list is bounded and a
 * token lives an hour): they are never put in a message. */
static int token_header(struct sp_conf *c, struct sy_http *h, const char *stale, char *hdr,
                        size_t n, long long *retry_after_ms, char *err, size_t errlen)
{
    int rc = 0;

    pthread_mutex_lock(&c->mu);
    if (!c->token || sy_mono_ms() >= c->token_until_ms || (stale && strcmp(stale, c->token) == 0))
        rc = token_request(c, h, retry_after_ms, err, errlen);
    if (rc == 0)
        snprintf(hdr, n, "Authorization: Bearer %s", c->token);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* --- Graph ---------------------------------------------------------------------------------- */

/* GET url on Graph with the token, refreshed once when Graph says it expired. 0 with *r (and
 * its JSON in *j, possibly NULL) for an answer the caller reads (2xx, 3xx, 4xx but 401 and
 * 403); otherwise an error: throttling and 5xx retriable with *retry_after_ms, a token refused
 * twice or a permission missing -SY_ECONFIG. */
static int graph_get(struct sp_conf *c, struct sy_http *h, const char *url, struct sy_http_resp *r,
                     json_t **j, long long *retry_after_ms, char *err, size_t errlen)
{
    static const char prefix[] = "Authorization: Bearer ";
    char hdr[TOKEN_MAX + sizeof prefix];
    const char *headers[2] = {hdr, NULL};
    int rc = 0, delay;

    *j = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = token_header(c, h, attempt ? hdr + sizeof prefix - 1 : NULL, hdr, sizeof hdr,
                          retry_after_ms, err, errlen);
        if (rc != 0)
            break;
        json_decref(*j);
        sy_http_resp_free(r);
        rc = sy_http_json(h, "GET", url, headers, NULL, r, j, err, errlen);
        if (rc != 0 || r->status != 401)
            break;
    }
    explicit_bzero(hdr, sizeof hdr);
    if (rc != 0)
        return rc;
    const char *code = json_string_value(json_object_get(json_object_get(*j, "error"), "code"));
    if (r->status == 401 || r->status == 403) {
        sy_errf(err, errlen,
                "Graph refused the app (HTTP %ld %.80s): check its permission (Files.Read.All or "
                "Sites.Read.All, admin-consented) and the drive",
                r->status, code ? code : "");
        rc = -SY_ECONFIG;
    } else if (sy_http_verdict(0, r, &delay) == 1) {
        *retry_after_ms = delay >= 0 ? delay * 1000LL : -1;
        sy_errf(err, errlen, "Graph: HTTP %ld %.80s%s", r->status, code ? code : "",
                r->status == 429 || r->status == 503 ? " (throttled)" : "");
        rc = r->status == 429 || r->status == 503 ? -SY_EBUSY : -SY_EPROTO;
    }
    if (rc != 0) {
        json_decref(*j);
        *j = NULL;
        sy_http_resp_free(r);
    }
    return rc;
}

/* --- listing -------------------------------------------------------------------------------- */

/* A link Graph handed out: followed with the token, so only on Graph's own host. */
static bool on_graph(const struct sp_conf *c, const char *link)
{
    return link && strncmp(link, c->graph_url, c->origin_len) == 0 && link[c->origin_len] == '/' &&
           strlen(link) < 8192;
}

static char *root_delta(const struct sp_conf *c)
{
    char *drive = sy_http_escape(c->drive_id), *url = NULL;
    size_t n;

    if (drive && (url = malloc(n = strlen(c->graph_url) + strlen(drive) + 32)))
        snprintf(url, n, "%s/drives/%s/root/delta", c->graph_url, drive);
    free(drive);
    return url;
}

/* The version an item is known by: its cTag (its content's), or, where a delta record leaves
 * it out (OneDrive for Business does on creates and changes), the content hash, else the
 * eTag. A changed file is then a new item, an unchanged one listed again the same item. */
static const char *version_of(const json_t *it)
{
    const char *v = json_string_value(json_object_get(it, "cTag"));

    if (!v)
        v = json_string_value(json_object_get(
            json_object_get(json_object_get(it, "file"), "hashes"), "quickXorHash"));
    if (!v)
        v = json_string_value(json_object_get(it, "eTag"));
    return v;
}

static bool id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;

    if (!n || n > ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)id[i] <= ' ' || strchr("@/?#%\"\\", id[i]))
            return false;
    return true;
}

struct listing {
    struct in_listed *items;
    size_t n, cap;
};

/* The page's files (not folders, not deletions) appended to l. */
static int take_page(const struct sp_conf *c, const json_t *value, struct listing *l)
{
    const json_t *it;
    size_t i;

    json_array_foreach(value, i, it)
    {
        const char *id = json_string_value(json_object_get(it, "id")), *v = version_of(it);
        const json_t *size = json_object_get(it, "size");
        char item[ID_MAX + VERSION_MAX + 2];

        if (!json_is_object(json_object_get(it, "file")) || json_object_get(it, "deleted") ||
            json_object_get(it, "folder"))
            continue;
        if (!id_ok(id) || !v || strlen(v) > VERSION_MAX) {
            sy_log_warn("ingest.sharepoint",
                        "drive %s: a file without a usable id or cTag left out", c->drive_id);
            continue;
        }
        if (l->n == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 64;
            struct in_listed *p = realloc(l->items, cap * sizeof *p);

            if (!p)
                return -SY_ENOMEM;
            l->items = p;
            l->cap = cap;
        }
        snprintf(item, sizeof item, "%s@%s", id, v);
        l->items[l->n] = (struct in_listed){
            .item = strdup(item),
            .size = json_is_integer(size) && json_integer_value(size) >= 0
                        ? (int64_t)json_integer_value(size)
                        : -1,
        };
        if (!l->items[l->n++].item)
            return -SY_ENOMEM;
    }
    return 0;
}

static size_t files_in(const json_t *value)
{
    const json_t *it;
    size_t i, n = 0;

    json_array_foreach(value, i, it) n += json_is_object(json_object_get(it, "file")) &&
                                          !json_object_get(it, "deleted") &&
                                          !json_object_get(it, "folder");
    return n;
}

static bool resync_asked(const struct sy_http_resp *r, const json_t *j)
{
    const char *code = json_string_value(json_object_get(json_object_get(j, "error"), "code"));

    return r->status == 410 || (r->status >= 400 && code && strncmp(code, "resync", 6) == 0);
}

/* Items "<driveItem id>@<cTag>". The cursor holds the delta link of the last full listing, or
 * the next link of one cut short by limit; a page is taken whole or not at all, since a next
 * link names a page, not an item in it. The last item of each page but the final one carries
 * the page's next link, a place to go on from. */
static int sp_list(void *conf, const struct in_env *env, const json_t *cursor, long limit,
                   struct in_listed **items, size_t *n, json_t **next, long long *retry_after_ms,
                   char *err, size_t errlen)
{
    struct sp_conf *c = conf;
    const char *saved = json_string_value(json_object_get(cursor, "delta_link"));
    struct sy_http *h = http_of(c, env, PAGE_MAX);
    struct listing l = {0};
    struct sy_http_resp r = {0};
    json_t *j = NULL;
    char *url = NULL;
    bool resynced = false;
    int rc = 0, keep;

    *items = NULL;
    *n = 0;
    *next = NULL;
    *retry_after_ms = -1;
    if (!saved)
        saved = json_string_value(json_object_get(cursor, "next_link"));
    if (limit < 1)
        limit = 1;
    if (saved && !on_graph(c, saved)) {
        sy_log_warn("ingest.sharepoint", "drive %s: the saved link is not on %.*s: listing anew",
                    c->drive_id, (int)c->origin_len, c->graph_url);
        saved = NULL;
    }
    if (!h || !(url = saved ? strdup(saved) : root_delta(c))) {
        rc = -SY_ENOMEM;
        goto out;
    }
    for (int page = 0;; page++) {
        if ((rc = graph_get(c, h, url, &r, &j, retry_after_ms, err, errlen)) != 0)
            goto out;
        if (resync_asked(&r, j)) {
            /* The delta state expired: only a listing from the start mends it. What was
             * stored before is known again by its id and cTag, or by its bytes. */
            if (resynced) {
                sy_errf(err, errlen, "Graph asked for a resync of drive %s twice in a row",
                        c->drive_id);
                rc = -SY_EPROTO;
                goto out;
            }
            sy_log_warn("ingest.resync",
                        "drive %s: the delta link expired (HTTP %ld): listing "
                        "the whole drive again",
                        c->drive_id, r.status);
            resynced = true;
            in_listed_free(l.items, l.n);
            l = (struct listing){0};
            free(url);
            if (!(url = root_delta(c))) {
                rc = -SY_ENOMEM;
                goto out;
            }
            page = -1;
            json_decref(j);
            j = NULL;
            sy_http_resp_free(&r);
            continue;
        }
        const json_t *value = json_object_get(j, "value");
        const char *nl = json_string_value(json_object_get(j, "@odata.nextLink"));
        const char *dl = json_string_value(json_object_get(j, "@odata.deltaLink"));

        if (r.status == 404 || r.status == 400) {
            sy_errf(
                err, errlen, "drive %s: HTTP %ld %.80s: %.200s", c->drive_id, r.status,
                or_empty(json_string_value(json_object_get(json_object_get(j, "error"), "code"))),
                or_empty(
                    json_string_value(json_object_get(json_object_get(j, "error"), "message"))));
            rc = -SY_ECONFIG;
            goto out;
        }
        if (r.status != 200 || !json_is_array(value) || (!nl == !dl) || (nl && !on_graph(c, nl)) ||
            (dl && !on_graph(c, dl))) {
            sy_errf(err, errlen,
                    "drive %s: HTTP %ld: not a delta page (value, and a next or delta link on "
                    "%.*s)",
                    c->drive_id, r.status, (int)c->origin_len, c->graph_url);
            rc = -SY_EPROTO;
            goto out;
        }
        if (l.n > 0 && l.n + files_in(value) > (size_t)limit) {
            *next = json_pack("{s:s}", "next_link", url); /* this page, next time */
            break;
        }
        if ((rc = take_page(c, value, &l)) != 0)
            goto out;
        if (dl) {
            *next = json_pack("{s:s}", "delta_link", dl);
            break;
        }
        if (l.n >= (size_t)limit || page + 1 >= PAGES_MAX) {
            *next = json_pack("{s:s}", "next_link", nl);
            break;
        }
        /* A first enumeration of a large library: the poll's lock renewed between pages, and
         * the listing handed on with the next page's link once it ran long enough. */
        if ((keep = in_keep(env, err, errlen)) != 0) {
            if (keep < 0) {
                rc = -SY_ESTALE;
                goto out;
            }
            *next = json_pack("{s:s}", "next_link", nl);
            break;
        }
        if (l.n > 0 && !l.items[l.n - 1].cursor &&
            !(l.items[l.n - 1].cursor = json_pack("{s:s}", "next_link", nl))) {
            rc = -SY_ENOMEM;
            goto out;
        }
        free(url);
        if (!(url = strdup(nl))) {
            rc = -SY_ENOMEM;
            goto out;
        }
        json_decref(j);
        j = NULL;
        sy_http_resp_free(&r);
    }
    if (!*next) {
        rc = -SY_ENOMEM;
        goto out;
    }
    *items = l.items;
    *n = l.n;
    l.items = NULL;
    l.n = 0;
out:
    in_listed_free(l.items, l.n);
    json_decref(j);
    sy_http_resp_free(&r);
    sy_http_destroy(h);
    free(url);
    return rc;
}

/* --- fetching ------------------------------------------------------------------------------- */

/* An ISO 8601 time PostgreSQL will take, or NULL. */
static const char *iso_time(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n < 19 || n > 40 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':')
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789-:T.Z+", s[i]))
            return NULL;
    return s;
}

static int too_big(struct in_fetched *out, const char *name, long long size)
{
    return in_fetched_add(out, name, "application/octet-stream", NULL, (size_t)size);
}

/* Downloads url (pre-authenticated: no Authorization goes with it) into *data. */
static int download(const struct sp_conf *c, const struct in_env *env, const char *url,
                    long long max_bytes, unsigned char **data, size_t *len,
                    long long *retry_after_ms, char *err, size_t errlen)
{
    struct sy_http *h = http_of(c, env, (size_t)max_bytes);
    struct sy_http_resp r = {0};
    int rc, delay;

    if (!h)
        return -SY_ENOMEM;
    rc = sy_http_do(h, "GET", url, NULL, NULL, 0, &r, err, errlen);
    sy_http_destroy(h);
    if (rc == -SY_ETOOBIG)
        return rc;
    switch (sy_http_verdict(rc, &r, &delay)) {
    case 1:
        *retry_after_ms = delay >= 0 ? delay * 1000LL : -1;
        if (rc == 0)
            sy_errf(err, errlen, "download: HTTP %ld", r.status);
        rc = rc ? rc : r.status == 429 || r.status == 503 ? -SY_EBUSY : -SY_EPROTO;
        break;
    case 2:
        if (rc == 0)
            sy_errf(err, errlen, "download: HTTP %ld", r.status);
        /* Gone between the item's look-up and now; a URL refused (it lapsed) is asked for
         * again by the retry. */
        rc = rc ? rc : r.status == 404 || r.status == 410 ? -SY_ENOTFOUND : -SY_EPROTO;
        break;
    default:
        if (r.status != 200) {
            sy_errf(err, errlen, "download: HTTP %ld, expected 200", r.status);
            rc = -SY_EPROTO;
            break;
        }
        *data = (unsigned char *)r.body; /* taken over */
        *len = r.len;
        r.body = NULL;
    }
    sy_http_resp_free(&r);
    return rc;
}

/* The item's metadata from Graph, then its bytes from the download URL it names (a URL that
 * lapses within minutes, so asked for just before use). A file over max_bytes is neither
 * looked up nor downloaded when the listing gave its size. */
static int sp_fetch(void *conf, const struct in_env *env, const char *item, const json_t *hints,
                    long long max_bytes, struct in_fetched *out, long long *retry_after_ms,
                    char *err, size_t errlen)
{
    struct sp_conf *c = conf;
    const json_t *hsize = json_object_get(hints, "size");
    const char *at = strchr(item, '@');
    char id[ID_MAX + 1], *eid = NULL, *drive = NULL, *url = NULL, *mime = NULL;
    struct sy_http *h = NULL;
    struct sy_http_resp r = {0};
    unsigned char *data = NULL;
    size_t len = 0, n;
    json_t *j = NULL;
    int rc = 0;

    *retry_after_ms = -1;
    if (!at || at == item || (size_t)(at - item) > ID_MAX) {
        sy_errf(err, errlen, "item: expected <driveItem id>@<cTag>, got '%.80s'", item);
        return -SY_EINVAL;
    }
    snprintf(id, sizeof id, "%.*s", (int)(at - item), item);
    if (!id_ok(id)) {
        sy_errf(err, errlen, "item: '%.80s' is not a driveItem id", id);
        return -SY_EINVAL;
    }
    if (json_is_integer(hsize) && json_integer_value(hsize) > max_bytes)
        return too_big(out, NULL, json_integer_value(hsize));

    if (!(h = http_of(c, env, PAGE_MAX)) || !(eid = sy_http_escape(id)) ||
        !(drive = sy_http_escape(c->drive_id)) ||
        !(url = malloc(n = strlen(c->graph_url) + strlen(drive) + strlen(eid) + 32))) {
        rc = -SY_ENOMEM;
        goto out;
    }
    snprintf(url, n, "%s/drives/%s/items/%s", c->graph_url, drive, eid);
    if ((rc = graph_get(c, h, url, &r, &j, retry_after_ms, err, errlen)) != 0)
        goto out;
    if (r.status == 404 || r.status == 410 || (r.status == 200 && json_object_get(j, "deleted"))) {
        sy_errf(err, errlen, "drive %s: item %s is gone", c->drive_id, id);
        rc = -SY_ENOTFOUND;
        goto out;
    }
    if (r.status != 200 || !json_is_object(j)) {
        sy_errf(err, errlen, "drive %s: item %s: HTTP %ld, expected 200 with the item", c->drive_id,
                id, r.status);
        rc = r.status >= 400 && r.status < 500 ? -SY_ECONFIG : -SY_EPROTO;
        goto out;
    }
    const json_t *file = json_object_get(j, "file"), *size = json_object_get(j, "size");
    const char *name = json_string_value(json_object_get(j, "name"));
    const char *type = json_string_value(json_object_get(file, "mimeType"));
    const char *when = iso_time(json_string_value(json_object_get(j, "lastModifiedDateTime")));
    const char *dl = json_string_value(json_object_get(j, "@microsoft.graph.downloadUrl"));
    char shown[TITLE_MAX + 1];

    if (!json_is_object(file)) {
        out->rejected = true;
        snprintf(out->reason, sizeof out->reason, "not a file");
        goto out;
    }
    snprintf(shown, sizeof shown, "%s", name ? name : id);
    out->meta = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s?}", "drive_id", c->drive_id, "item_id",
                          id, "name", shown, "webUrl",
                          json_string_value(json_object_get(j, "webUrl")), "lastModifiedDateTime",
                          when, "cTag", json_string_value(json_object_get(j, "cTag")));
    out->title = strdup(shown);
    out->source_time = when ? strdup(when) : NULL;
    /* The type as Graph guessed it from the name, lower-cased for limits.types. */
    mime = strdup(type && *type && strlen(type) <= MIME_MAX && strchr(type, '/')
                      ? type
                      : "application/octet-stream");
    if (!out->meta || !out->title || (when && !out->source_time) || !mime) {
        rc = -SY_ENOMEM;
        goto out;
    }
    for (char *p = mime; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    mime[strcspn(mime, "; ")] = '\0';
    if (json_is_integer(size) && json_integer_value(size) > max_bytes) {
        rc = too_big(out, shown, json_integer_value(size));
        goto out;
    }
    if (!dl || !origin_of(dl, c->allow_http)) {
        sy_errf(err, errlen, "drive %s: item %s: no usable download URL", c->drive_id, id);
        rc = -SY_EPROTO;
        goto out;
    }
    rc = download(c, env, dl, max_bytes, &data, &len, retry_after_ms, err, errlen);
    if (rc == -SY_ETOOBIG) {
        out->rejected = true;
        snprintf(out->reason, sizeof out->reason,
                 "the download is larger than the limit of %lld bytes", max_bytes);
        rc = 0;
    } else if (rc == 0 && (rc = in_fetched_add(out, shown, mime, data, len)) != 0) {
        free(data);
    }
out:
    json_decref(j);
    sy_http_resp_free(&r);
    sy_http_destroy(h);
    free(eid);
    free(drive);
    free(url);
    free(mime);
    return rc;
}

const struct connector connector_sharepoint = {
    .kind = "sharepoint",
    .configure = sp_configure,
    .unconfigure = sp_unconfigure,
    .list = sp_list,
    .fetch = sp_fetch,
};
