/* maximo.c - the IBM Maximo connector of sy-ingest (see connector.h): the documents attached
 * (doclinks) to work orders changed after a watermark, read through Maximo's JSON API
 * (<url>/oslc/os/<object>, lean JSON, an API key in the apikey header on every call).
 *
 *   maximo:
 *     plant:
 *       url: https://maximo.example.org/maximo   # https only, unless allow_http: true
 *       apikey_env: MAXIMO_APIKEY                # or apikey_file (relative to ingest.yaml)
 *       object: mxapiwodetail                    # the object structure, holding DOCLINKS
 *       page_size: 100
 *       where: siteid="BEDFORD"                  # optional, ANDed to the changedate clause
 *
 * An item is "<wonum>/<doclink id>"; the cursor is {"changedate", "wonum"} of the last work
 * order whose every doclink was handed on. A listing asks for each work order's doclinks in a
 * request of its own: it ends after EXAMINED_MAX work orders, or when in_keep() says it ran
 * long enough, with the cursor of the last work order it took whole, and a failed request
 * hands on what was taken whole before it. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ingest/connector.h"
#include "ingest/settings.h"
#include "sy/doc.h"
#include "sy/err.h"
#include "sy/http.h"
#include "sy/log.h"

#define WHERE_MAX    1000
#define URL_MAX      8192                 /* a request's URL, query included */
#define PAGE_MAX     (8u * 1024u * 1024u) /* one page of work orders, one doclinks list */
#define PAGES_MAX    1000                 /* pages one listing follows: a looping link ends */
#define MEMBERS_MAX  5000                 /* members of one page looked at */
#define EXAMINED_MAX 2000  /* work orders one listing looks at, with doclinks or without */
#define DOCLINKS_MAX 500   /* doclinks of one work order looked at */
#define ID_MAX       200   /* a wonum, a doclink id */
#define TEXT_MAX     65536 /* a description or long description kept */

/* The work order's fields a listing and a fetch read. */
#define LIST_SELECT "wonum,siteid,status,changedate,description,doclinks"
#define FETCH_SELECT                                                                               \
    "wonum,siteid,status,changedate,description,description_longdescription,doclinks"

struct maximo_conf {
    char *url;    /* the base, without a trailing '/': https://host/maximo */
    char *header; /* "apikey: <key>" */
    char *object, *where;
    long page_size;
    bool allow_http;
};

static void maximo_unconfigure(void *conf)
{
    struct maximo_conf *c = conf;

    if (!c)
        return;
    free(c->url);
    if (c->header) {
        explicit_bzero(c->header, strlen(c->header));
        free(c->header);
    }
    free(c->object);
    free(c->where);
    free(c);
}

/* --- settings ------------------------------------------------------------------------------- */

static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* The API key (apikey_env or apikey_file), kept as the header line it is sent in. */
static int apikey(const struct sy_doc *doc, const struct sy_node *m, const char *dir,
                  const char *key, char **header, char *err, size_t errlen)
{
    char *v = NULL;
    int rc = setting_secret(doc, m, dir, key, "apikey", &v, err, errlen);

    *header = NULL;
    if (rc == 0 && !(*header = malloc(strlen(v) + 9)))
        rc = -SY_ENOMEM;
    else if (rc == 0)
        sprintf(*header, "apikey: %s", v);
    setting_secret_free(v);
    return rc;
}

/* Checks the base URL and drops its trailing slashes. */
static int base_url(const struct sy_doc *doc, const struct sy_node *n, const char *key,
                    struct maximo_conf *c, char *err, size_t errlen)
{
    size_t len = strlen(c->url);
    const char *host = strstr(c->url, "://");

    while (len > 0 && c->url[len - 1] == '/')
        c->url[--len] = '\0';
    if (strncmp(c->url, "https://", 8) != 0 &&
        !(c->allow_http && strncmp(c->url, "http://", 7) == 0)) {
        sy_errf(err, errlen, "%s:%d: %s.url: expected https://host/maximo%s", sy_doc_name(doc),
                sy_node_line(n), key, c->allow_http ? " or http://" : " (or allow_http: true)");
        return -SY_ECONFIG;
    }
    /* No user:password@ either: the API key is the credential, and the URL is shown. */
    if (!host || !host[3] || host[3] == '/' || strpbrk(c->url, "?#@ \"") || has_control(c->url)) {
        sy_errf(err, errlen,
                "%s:%d: %s.url: expected a base URL without credentials, query or "
                "fragment",
                sy_doc_name(doc), sy_node_line(n), key);
        return -SY_ECONFIG;
    }
    return 0;
}

static int maximo_configure(const struct sy_doc *doc, const struct sy_node *m, const char *key,
                            const char *dir, void **conf, char *err, size_t errlen)
{
    static const char *const keys[] = {"url",   "apikey_env", "apikey_file", "object",
                                       "where", "page_size",  "allow_http",  NULL};
    struct maximo_conf *c = calloc(1, sizeof *c);
    const struct sy_node *n;
    long long page_size = 100;
    char why[256];
    int rc;

    *conf = NULL;
    if (!c)
        return -SY_ENOMEM;
    if ((rc = sy_node_check_keys(doc, m, keys, err, errlen)) != 0)
        goto fail;
    if ((n = sy_node_get(m, "allow_http")) && sy_node_bool(n, &c->allow_http, why, sizeof why)) {
        sy_errf(err, errlen, "%s: %s.%s", sy_doc_name(doc), key, why);
        rc = -SY_ECONFIG;
        goto fail;
    }
    if ((rc = setting_text(doc, m, key, "url", true, &c->url, err, errlen)) != 0 ||
        (rc = base_url(doc, sy_node_get(m, "url"), key, c, err, errlen)) != 0 ||
        (rc = apikey(doc, m, dir, key, &c->header, err, errlen)) != 0)
        goto fail;
    if ((n = sy_node_get(m, "object"))) {
        if ((rc = setting_text(doc, m, key, "object", true, &c->object, err, errlen)) != 0)
            goto fail;
        /* It becomes a path segment. */
        if (!*c->object || strlen(c->object) > 64 ||
            strspn(c->object, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") !=
                strlen(c->object)) {
            sy_errf(err, errlen, "%s:%d: %s.object: an object structure name, e.g. mxapiwodetail",
                    sy_doc_name(doc), sy_node_line(n), key);
            rc = -SY_ECONFIG;
            goto fail;
        }
    } else if (!(c->object = strdup("mxapiwodetail"))) {
        rc = -SY_ENOMEM;
        goto fail;
    }
    if ((n = sy_node_get(m, "where"))) {
        if ((rc = setting_text(doc, m, key, "where", true, &c->where, err, errlen)) != 0)
            goto fail;
        if (!*c->where || strlen(c->where) > WHERE_MAX || has_control(c->where)) {
            sy_errf(err, errlen, "%s:%d: %s.where: an oslc.where clause of 1 to %d characters",
                    sy_doc_name(doc), sy_node_line(n), key, WHERE_MAX);
            rc = -SY_ECONFIG;
            goto fail;
        }
    }
    if ((n = sy_node_get(m, "page_size")) &&
        sy_node_int(n, 1, 1000, &page_size, why, sizeof why) != 0) {
        sy_errf(err, errlen, "%s: %s.%s", sy_doc_name(doc), key, why);
        rc = -SY_ECONFIG;
        goto fail;
    }
    c->page_size = (long)page_size;
    *conf = c;
    return 0;
fail:
    maximo_unconfigure(c);
    return rc;
}

/* --- HTTP ----------------------------------------------------------------------------------- */

static struct sy_http *http_new(const struct maximo_conf *c, const struct in_env *env,
                                size_t body_max)
{
    struct sy_http_opts o = {.connect_timeout_ms = env->connect_timeout_ms,
                             .timeout_ms = env->timeout_ms,
                             .body_max = body_max,
                             .insecure_http = c->allow_http};

    return sy_http_new(&o);
}

/* The length of a URL's scheme://host[:port], 0 when it has none. */
static size_t origin_len(const char *url)
{
    const char *p = strstr(url, "://");

    return p ? (size_t)(p + 3 - url) + strcspn(p + 3, "/?#") : 0;
}

/* A link Maximo gave, as a URL under the configured base: a relative one is resolved against
 * it, and an absolute one keeps its path and query but gets the base's scheme, host and port.
 * Behind a proxy Maximo writes links to its own internal address, which this side cannot
 * reach; and the API key goes to the configured host alone. */
static int resolve(const struct maximo_conf *c, const char *href, char *out, size_t n, char *err,
                   size_t errlen)
{
    size_t origin = origin_len(c->url), k;
    int w;

    if (!*href || has_control(href) || strchr(href, ' ')) {
        sy_errf(err, errlen, "Maximo gave a link that is not a URL");
        return -SY_EPROTO;
    }
    if ((k = origin_len(href)) > 0)
        w = snprintf(out, n, "%.*s%s", (int)origin, c->url, href + k);
    else if (href[0] == '/')
        w = snprintf(out, n, "%.*s%s", (int)origin, c->url, href);
    else
        w = snprintf(out, n, "%s/%s", c->url, href);
    if (w < 0 || (size_t)w >= n) {
        sy_errf(err, errlen, "Maximo gave a link longer than %zu bytes", n - 1);
        return -SY_EPROTO;
    }
    return 0;
}

/* What an exchange's outcome means for the connector (rc from sy_http_*, r its answer): 0 for
 * a 2xx; -SY_ECONFIG for a refused API key or request (an operator's matter), -SY_ENOTFOUND,
 * or a retriable code with *retry_after_ms from Retry-After. */
static int outcome(int rc, const struct sy_http_resp *r, const char *url, long long *retry_after_ms,
                   char *err, size_t errlen)
{
    int shown = (int)strcspn(url, "?#"), delay = -1;
    int v = sy_http_verdict(rc, r, &delay);

    if (rc == -SY_EINVAL)
        return -SY_ECONFIG; /* a URL the client refuses (not https) */
    if (rc != 0)
        return rc; /* err says why: connection, timeout, too big, memory */
    if (r->status >= 200 && r->status < 300)
        return 0;
    if (r->status == 401 || r->status == 403) {
        sy_errf(err, errlen, "%.*s: HTTP %ld: apikey refused", shown, url, r->status);
        return -SY_ECONFIG;
    }
    if (r->status == 404 || r->status == 410) {
        sy_errf(err, errlen, "%.*s: HTTP %ld: not found", shown, url, r->status);
        return -SY_ENOTFOUND;
    }
    if (v == 1) {
        if (delay >= 0)
            *retry_after_ms = delay * 1000LL;
        sy_errf(err, errlen, "%.*s: HTTP %ld%s", shown, url, r->status,
                r->status == 429 ? ": too many requests" : "");
        return r->status == 429 ? -SY_EBUSY : -SY_EIO;
    }
    /* A redirect is where a login page would be, a 400 a where clause Maximo refuses. */
    sy_errf(err, errlen, "%.*s: HTTP %ld: Maximo refused the request", shown, url, r->status);
    return -SY_ECONFIG;
}

/* GET url for a JSON object: 0 with *out set, or an error as outcome() maps it. */
static int get_json(const struct maximo_conf *c, struct sy_http *h, const char *url, json_t **out,
                    long long *retry_after_ms, char *err, size_t errlen)
{
    const char *headers[] = {c->header, NULL};
    struct sy_http_resp r;
    int rc = sy_http_json(h, "GET", url, headers, NULL, &r, out, err, errlen);

    if (rc == -SY_ETOOBIG)
        rc = -SY_EPROTO; /* a page that large is not one Maximo pages itself */
    rc = outcome(rc, &r, url, retry_after_ms, err, errlen);
    if (rc == 0 && !json_is_object(*out)) {
        sy_errf(err, errlen, "%.*s: HTTP %ld: not a JSON object", (int)strcspn(url, "?#"), url,
                r.status);
        rc = -SY_EPROTO;
    }
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
    }
    sy_http_resp_free(&r);
    return rc;
}

/* --- work orders and doclinks --------------------------------------------------------------- */

/* A wonum or doclink id that may name an item and go into a where clause. */
static bool id_ok(const char *s, bool doclink)
{
    size_t n = s ? strlen(s) : 0;

    if (!n || n > ID_MAX || has_control(s) || strpbrk(s, "\"\\"))
        return false;
    return !doclink || !strchr(s, '/');
}

/* The text of a string or integer member into buf ("" when neither). */
static const char *text_of(const json_t *v, char *buf, size_t n)
{
    if (json_is_string(v))
        snprintf(buf, n, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, n, "%lld", (long long)json_integer_value(v));
    else
        buf[0] = '\0';
    return buf;
}

/* A doclink's id: describedBy.identifier, else the last segment of its href. */
static const char *doclink_id(const json_t *dl, char *buf, size_t n)
{
    const char *href = json_string_value(json_object_get(dl, "href")), *slash;

    if (*text_of(json_object_get(json_object_get(dl, "describedBy"), "identifier"), buf, n))
        return buf;
    if (href && (slash = strrchr(href, '/')))
        snprintf(buf, n, "%s", slash + 1);
    return buf;
}

/* A doclink of type URL is a web address, not a file Maximo holds. */
static bool is_web_link(const json_t *dl)
{
    const char *a = json_string_value(json_object_get(dl, "urltype"));
    const char *b =
        json_string_value(json_object_get(json_object_get(dl, "describedBy"), "urlType"));

    return (a && strcasecmp(a, "URL") == 0) || (b && strcasecmp(b, "URL") == 0);
}

static int64_t doclink_size(const json_t *dl)
{
    const json_t *v = json_object_get(json_object_get(dl, "describedBy"), "attachmentSize");

    return json_is_integer(v) && json_integer_value(v) >= 0 ? (int64_t)json_integer_value(v) : -1;
}

/* The doclinks of work order wo (a new reference to an array): listed in it, or behind the link
 * it gives, as Maximo does unless asked to expand them. */
static int doclinks_of(const struct maximo_conf *c, struct sy_http *h, const json_t *wo,
                       json_t **out, long long *retry_after_ms, char *err, size_t errlen)
{
    const json_t *dl = json_object_get(wo, "doclinks");
    const char *href = json_string_value(json_object_get(dl, "href"));
    char url[URL_MAX];
    json_t *page = NULL, *m;
    int rc;

    *out = NULL;
    if (json_is_array(dl))
        return (*out = json_incref((json_t *)dl)) ? 0 : -SY_ENOMEM;
    if (json_is_array(m = json_object_get(dl, "member")))
        return (*out = json_incref(m)) ? 0 : -SY_ENOMEM;
    if (!href)
        return (*out = json_array()) ? 0 : -SY_ENOMEM; /* none */
    if ((rc = resolve(c, href, url, sizeof url - 8, err, errlen)) != 0)
        return rc;
    strcat(url, strchr(url, '?') ? "&lean=1" : "?lean=1");
    if ((rc = get_json(c, h, url, &page, retry_after_ms, err, errlen)) != 0)
        return rc;
    m = json_object_get(page, "member");
    *out = json_is_array(m) ? json_incref(m) : json_array();
    json_decref(page);
    return *out ? 0 : -SY_ENOMEM;
}

/* GET <url>/oslc/os/<object> with the select and where given (where may be NULL). */
static int query_url(const struct maximo_conf *c, const char *select, const char *where, char *out,
                     size_t n, char *err, size_t errlen)
{
    char *w = where ? sy_http_escape(where) : NULL;
    int k;

    if (where && !w)
        return -SY_ENOMEM;
    /* orderBy's '+' must be sent encoded, or Maximo reads a space. */
    k = snprintf(out, n,
                 "%s/oslc/os/%s?lean=1&oslc.select=%s&oslc.orderBy=%%2Bchangedate,%%2Bwonum"
                 "&oslc.pageSize=%ld%s%s",
                 c->url, c->object, select, c->page_size, w ? "&oslc.where=" : "", w ? w : "");
    free(w);
    if (k < 0 || (size_t)k >= n) {
        sy_errf(err, errlen, "the query is longer than %zu bytes", n - 1);
        return -SY_ECONFIG;
    }
    return 0;
}

static json_t *cursor_of(const char *changedate, const char *wonum)
{
    return json_pack("{s:s, s:s}", "changedate", changedate, "wonum", wonum);
}

/* --- listing -------------------------------------------------------------------------------- */

struct listing {
    struct in_listed *items;
    size_t n, cap;
    json_t *last; /* the cursor after the last work order taken whole */
};

static int add_item(struct listing *l, const char *wonum, const char *id, int64_t size,
                    json_t *cursor)
{
    char item[2 * ID_MAX + 2];

    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct in_listed *p = realloc(l->items, cap * sizeof *p);

        if (!p) {
            json_decref(cursor);
            return -SY_ENOMEM;
        }
        l->items = p;
        l->cap = cap;
    }
    snprintf(item, sizeof item, "%s/%s", wonum, id);
    l->items[l->n] = (struct in_listed){.item = strdup(item), .size = size, .cursor = cursor};
    l->n++;
    return l->items[l->n - 1].item ? 0 : -SY_ENOMEM;
}

/* Takes work order wo whole: one item per doclink that is a file. Every item but the last
 * carries the cursor of the work order before it, so a poll cut short between them lists this
 * one again; the last carries this one's. */
static int take(const struct maximo_conf *c, struct sy_http *h, struct listing *l, const json_t *wo,
                const char *wonum, const char *changedate, long long *retry_after_ms, char *err,
                size_t errlen)
{
    json_t *links = NULL, *dl, *mine = cursor_of(changedate, wonum);
    size_t i, last = (size_t)-1;
    char id[ID_MAX + 40];
    int rc;

    if (!mine)
        return -SY_ENOMEM;
    if ((rc = doclinks_of(c, h, wo, &links, retry_after_ms, err, errlen)) != 0) {
        json_decref(mine);
        return rc;
    }
    json_array_foreach(links, i, dl)
    {
        if (i == DOCLINKS_MAX)
            break;
        if (!is_web_link(dl) && id_ok(doclink_id(dl, id, sizeof id), true))
            last = i;
    }
    json_array_foreach(links, i, dl)
    {
        json_t *cur;

        if (i == DOCLINKS_MAX || i > last)
            break;
        if (is_web_link(dl))
            continue;
        if (!id_ok(doclink_id(dl, id, sizeof id), true)) {
            sy_log_warn("ingest.maximo",
                        "%s: work order %s: a doclink without a usable id, "
                        "skipped",
                        c->url, wonum);
            continue;
        }
        cur = i == last ? json_incref(mine) : l->last ? json_deep_copy(l->last) : NULL;
        if ((rc = add_item(l, wonum, id, doclink_size(dl), cur)) != 0)
            break;
    }
    json_decref(links);
    if (rc == 0) {
        json_decref(l->last);
        l->last = json_incref(mine);
    }
    json_decref(mine);
    return rc;
}

static int maximo_list(void *conf, const struct in_env *env, const json_t *cursor, long limit,
                       struct in_listed **items, size_t *n, json_t **next,
                       long long *retry_after_ms, char *err, size_t errlen)
{
    struct maximo_conf *c = conf;
    const char *after = json_string_value(json_object_get(cursor, "changedate"));
    const char *after_wonum = json_string_value(json_object_get(cursor, "wonum"));
    struct sy_http *h = http_new(c, env, PAGE_MAX);
    struct listing l = {0};
    char where[WHERE_MAX + 2 * ID_MAX + 40], url[URL_MAX];
    json_t *page = NULL;
    bool full = false, more;
    int rc = 0, w = 0, keep;
    long examined = 0;

    *items = NULL;
    *n = 0;
    *next = NULL;
    *retry_after_ms = -1;
    if (!h)
        return -SY_ENOMEM;
    if (after && !id_ok(after, false))
        after = NULL; /* not a date this connector saved: listed from the start */
    /* From the watermark's date on, since several work orders may share it; those of them
     * handed on before are skipped below by their wonum. */
    if (after)
        w = snprintf(where, sizeof where, "changedate>=\"%s\"%s%s", after, c->where ? " and " : "",
                     c->where ? c->where : "");
    else if (c->where)
        w = snprintf(where, sizeof where, "%s", c->where);
    if (w < 0 || (size_t)w >= sizeof where)
        rc = -SY_ECONFIG;
    if (rc == 0)
        rc = query_url(c, LIST_SELECT, after || c->where ? where : NULL, url, sizeof url, err,
                       errlen);
    for (int pages = 0; rc == 0 && !full && pages < PAGES_MAX; pages++) {
        const json_t *members, *wo;
        const char *href;
        size_t i;

        if (pages > 0 && (keep = in_keep(env, err, errlen)) != 0) {
            if (keep < 0)
                rc = -SY_ESTALE;
            break; /* enough for this poll: the next goes on from l.last */
        }
        if ((rc = get_json(c, h, url, &page, retry_after_ms, err, errlen)) != 0)
            break;
        members = json_object_get(page, "member");
        json_array_foreach(members, i, wo)
        {
            const char *wonum = json_string_value(json_object_get(wo, "wonum"));
            const char *changedate = json_string_value(json_object_get(wo, "changedate"));

            if (i == MEMBERS_MAX)
                break;
            if (!id_ok(wonum, false) || !id_ok(changedate, false)) {
                sy_log_warn("ingest.maximo",
                            "%s: a work order without a usable wonum or "
                            "changedate, skipped",
                            c->url);
                continue;
            }
            if (after && after_wonum && strcmp(changedate, after) == 0 &&
                strcmp(wonum, after_wonum) <= 0)
                continue; /* handed on by an earlier poll */
            /* Whole work orders only: their doclinks share the cursor. */
            if ((long)l.n >= limit || examined >= EXAMINED_MAX) {
                full = true;
                break;
            }
            if (examined++ > 0 && (keep = in_keep(env, err, errlen)) != 0) {
                if (keep < 0)
                    rc = -SY_ESTALE;
                full = true;
                break;
            }
            if ((rc = take(c, h, &l, wo, wonum, changedate, retry_after_ms, err, errlen)) != 0)
                break;
        }
        href = json_string_value(json_object_get(
            json_object_get(json_object_get(page, "responseInfo"), "nextPage"), "href"));
        more = href != NULL;
        if (rc == 0 && !full && more)
            rc = resolve(c, href, url, sizeof url, err, errlen);
        json_decref(page);
        page = NULL;
        if (!more)
            break;
    }
    sy_http_destroy(h);
    if (rc == 0 && !(*next = l.last ? json_incref(l.last) : json_deep_copy(cursor)))
        rc = -SY_ENOMEM;
    if (rc != 0 && rc != -SY_ENOMEM && rc != -SY_ESTALE && l.last) {
        /* What was taken whole before the failure is handed on, its cursor saved. */
        *next = json_incref(l.last);
        json_decref(l.last);
        *items = l.items;
        *n = l.n;
        return rc;
    }
    json_decref(l.last);
    if (rc != 0) {
        if (rc == -SY_ENOMEM)
            sy_errf(err, errlen, "out of memory");
        in_listed_free(l.items, l.n);
        json_decref(*next);
        *next = NULL;
        return rc;
    }
    *items = l.items;
    *n = l.n;
    return 0;
}

/* --- fetching ------------------------------------------------------------------------------- */

/* A copy of s cut to TEXT_MAX bytes, on a UTF-8 character's start; NULL for NULL. */
static char *text_copy(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (!s)
        return NULL;
    if (n > TEXT_MAX) {
        n = TEXT_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    return strndup(s, n);
}

/* The type of an answer's Content-Type, lower-case and without parameters. */
static void mime_of(const char *ct, char *out, size_t n)
{
    size_t k = ct ? strcspn(ct, "; \t") : 0, j = 0;

    for (size_t i = 0; i < k && j + 1 < n; i++)
        out[j++] = (char)tolower((unsigned char)ct[i]);
    out[j] = '\0';
    if (!j || !strchr(out, '/') || has_control(out))
        snprintf(out, n, "application/octet-stream");
}

/* An ISO 8601 time PostgreSQL will read, or NULL. */
static char *time_copy(const char *s)
{
    if (!s || strlen(s) < 19 || strlen(s) > 40 || !isdigit((unsigned char)s[0]) || s[4] != '-' ||
        s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        strspn(s, "0123456789-+:T.Z") != strlen(s))
        return NULL;
    return strdup(s);
}

/* The work order wonum and its doclink id: *wo and *dl new references, -SY_ENOTFOUND when
 * either is gone. A wonum is unique within a site only: the doclink tells them apart. */
static int find_doclink(const struct maximo_conf *c, struct sy_http *h, const char *wonum,
                        const char *id, json_t **wo, json_t **dl, long long *retry_after_ms,
                        char *err, size_t errlen)
{
    char where[ID_MAX + 16], url[URL_MAX], got[ID_MAX + 40];
    json_t *page = NULL, *m, *links;
    size_t i, j;
    int rc;

    *wo = *dl = NULL;
    snprintf(where, sizeof where, "wonum=\"%s\"", wonum);
    if ((rc = query_url(c, FETCH_SELECT, where, url, sizeof url, err, errlen)) != 0 ||
        (rc = get_json(c, h, url, &page, retry_after_ms, err, errlen)) != 0)
        return rc;
    json_array_foreach(json_object_get(page, "member"), i, m)
    {
        if (i == MEMBERS_MAX || *dl)
            break;
        if ((rc = doclinks_of(c, h, m, &links, retry_after_ms, err, errlen)) != 0)
            break;
        for (j = 0; j < json_array_size(links) && j < DOCLINKS_MAX; j++) {
            json_t *one = json_array_get(links, j);

            if (strcmp(doclink_id(one, got, sizeof got), id) == 0) {
                *dl = json_incref(one);
                *wo = json_incref(m);
                break;
            }
        }
        json_decref(links);
    }
    json_decref(page);
    if (rc == 0 && !*dl) {
        sy_errf(err, errlen, "work order %s has no doclink %s", wonum, id);
        rc = -SY_ENOTFOUND;
    }
    return rc;
}

static int maximo_fetch(void *conf, const struct in_env *env, const char *item, const json_t *hints,
                        long long max_bytes, struct in_fetched *out, long long *retry_after_ms,
                        char *err, size_t errlen)
{
    struct maximo_conf *c = conf;
    const char *slash = strrchr(item, '/'), *href, *fname;
    const json_t *about;
    const json_t *hsize = json_object_get(hints, "size");
    struct sy_http *h = NULL, *dh = NULL;
    struct sy_http_resp r = {0};
    json_t *wo = NULL, *dl = NULL;
    char wonum[ID_MAX + 1], id[ID_MAX + 1], url[URL_MAX], mime[128];
    const char *headers[] = {c->header, "Accept: */*", NULL};
    int64_t size;
    int rc;

    *retry_after_ms = -1;
    if (!slash || slash == item || (size_t)(slash - item) > ID_MAX || strlen(slash + 1) > ID_MAX) {
        sy_errf(err, errlen, "item: expected <wonum>/<doclink id>, got '%.80s'", item);
        return -SY_EINVAL;
    }
    snprintf(wonum, sizeof wonum, "%.*s", (int)(slash - item), item);
    snprintf(id, sizeof id, "%s", slash + 1);
    if (!id_ok(wonum, false) || !id_ok(id, true)) {
        sy_errf(err, errlen, "item: expected <wonum>/<doclink id>, got '%.80s'", item);
        return -SY_EINVAL;
    }
    if (!(h = http_new(c, env, PAGE_MAX))) {
        rc = -SY_ENOMEM;
        goto out;
    }
    if ((rc = find_doclink(c, h, wonum, id, &wo, &dl, retry_after_ms, err, errlen)) != 0)
        goto out;
    about = json_object_get(dl, "describedBy");
    out->title = text_copy(json_string_value(json_object_get(wo, "description")));
    out->body = text_copy(json_string_value(json_object_get(wo, "description_longdescription")));
    out->source_time = time_copy(json_string_value(json_object_get(wo, "changedate")));
    out->meta =
        json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s}", "wonum", wonum, "siteid",
                  json_string_value(json_object_get(wo, "siteid")), "status",
                  json_string_value(json_object_get(wo, "status")), "changedate",
                  json_string_value(json_object_get(wo, "changedate")), "doclink_title",
                  json_string_value(json_object_get(about, "title")), "doclink_description",
                  json_string_value(json_object_get(about, "description")), "maximo", c->url);
    if (!out->meta) {
        rc = -SY_ENOMEM;
        goto out;
    }
    fname = json_string_value(json_object_get(about, "fileName"));
    if (!fname || !*fname || has_control(fname))
        fname = NULL;
    /* Too large by what the listing or Maximo says: not downloaded at all. */
    size = json_is_integer(hsize) ? (int64_t)json_integer_value(hsize) : doclink_size(dl);
    if (size > max_bytes) {
        rc = in_fetched_add(out, fname, "application/octet-stream", NULL, (size_t)size);
        goto out;
    }
    if (!(href = json_string_value(json_object_get(dl, "href")))) {
        sy_errf(err, errlen, "work order %s: doclink %s has no href", wonum, id);
        rc = -SY_ENOTFOUND;
        goto out;
    }
    if ((rc = resolve(c, href, url, sizeof url, err, errlen)) != 0)
        goto out;
    if (!(dh = http_new(c, env, (size_t)max_bytes))) {
        rc = -SY_ENOMEM;
        goto out;
    }
    rc = sy_http_do(dh, "GET", url, headers, NULL, 0, &r, err, errlen);
    if (rc == -SY_ETOOBIG) {
        /* The answer said, or showed, it is larger: it is refused at the limit. */
        rc = in_fetched_add(out, fname, "application/octet-stream", NULL, (size_t)max_bytes + 1);
        goto out;
    }
    if ((rc = outcome(rc, &r, url, retry_after_ms, err, errlen)) != 0)
        goto out;
    mime_of(r.content_type, mime, sizeof mime);
    if ((rc = in_fetched_add(out, fname, mime, (unsigned char *)r.body, r.len)) == 0)
        r.body = NULL; /* taken over */
out:
    if (rc == -SY_ENOMEM)
        sy_errf(err, errlen, "out of memory");
    sy_http_resp_free(&r);
    sy_http_destroy(dh);
    sy_http_destroy(h);
    json_decref(wo);
    json_decref(dl);
    return rc;
}

const struct connector connector_maximo = {
    .kind = "maximo",
    .configure = maximo_configure,
    .unconfigure = maximo_unconfigure,
    .list = maximo_list,
    .fetch = maximo_fetch,
};
