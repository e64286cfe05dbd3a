/* fake_maximo.c - a fake of IBM Maximo's JSON (OSLC) API for sy-ingest's tests: work orders of
 * one object structure and the documents attached to them (doclinks), in the shapes Maximo
 * answers with: collections as {"member": [...], "responseInfo": {"href", "pagenum",
 * "totalCount", "totalPages", "nextPage": {"href"}}}, a member's href "oslc/os/<os>/_<rest id>"
 * (base64 of SITEID/WONUM, '=' written '-'), a work order's doclinks as {"href"} to the list of
 * its documents, each {"href", "localref", "describedBy": {"identifier", "fileName", "title",
 * "description", "format": {"label"}, "attachmentSize", "urlType", "docType"}}, and a document's
 * bytes at its href. Without lean=1 names are namespaced (spi:, rdfs:member, oslc:...). Errors
 * are {"Error": {"reasonCode", "message", "statusCode"}}. State lives in memory.
 *
 *   fake-maximo [--port N] [--apikey K]
 *
 * Listens on 127.0.0.1 (port 0 or none: any), prints "port=<n>" once listening, serves until
 * SIGTERM, under /maximo/oslc/os/<object>. With --apikey, every API call needs the header
 * "apikey: K" (401 otherwise).
 *
 * Queries honour oslc.select (none: members carry their href alone; "*" or a list of names),
 * oslc.where (clauses joined by "and", each attr op "text" or a number, op one of = != > >= <
 * <=; attrs wonum, siteid, status, description, changedate), oslc.orderBy (every attribute
 * signed: "+a,-b"; an unencoded '+' arrives as a space and is refused, as by Maximo),
 * oslc.pageSize and pageno (the page nextPage links to).
 *
 * Control (no auth):
 *   POST /_fake/workorders {"workorders": [{"wonum", "siteid", "status", "description",
 *        "description_longdescription", "changedate", "doclinks": [{"fileName", "title",
 *        "description", "mime", "content" (text) | "size" (filler bytes), "urltype",
 *        "hide_size"}]}]}
 *        adds work orders; one whose siteid and wonum exist is changed: the fields given
 *        replace its own, its doclinks are added to. Every add or change gets a changedate
 *        later than any before (unless one is given). Answers the work orders with their
 *        doclinks' identifiers.
 *   POST /_fake/faults with any of (an "API call" is any call under /maximo/)
 *     {"fail_429": K, "retry_after": S}  the next K API calls answer 429, Retry-After: S
 *     {"fail_503": K, "retry_after": S}  the next K API calls answer 503 (with Retry-After
 *                                        when S is set)
 *     {"expire_apikey": true|false}      every API call answers 401 while true
 *     {"foreign_host": "http://h:p"}     absolute links (nextPage, documents) name that
 *                                        scheme, host and port, as Maximo behind a proxy
 *                                        does ("" to stop)
 *     {"delay_ms": M}                    every API answer waits M ms (0: off)
 *     {"once": [{"on": K, "status": S} | {"on": K, "delay_ms": M}, ...]}
 *                                        one-shot faults, each used up by the first API call
 *                                        of kind K after it: "list" (a collection), "next_page"
 *                                        (a collection's page 2 or later), "doclinks" (a work
 *                                        order's list of them), "download" (a doclink's
 *                                        bytes) or "any"; it answers status S (a Maximo error,
 *                                        no Retry-After), or the call's own answer M ms late
 *     {"pass_first": N}                  the fail_* switches let the next N API calls
 *                                        through first (a failure mid-listing)
 *   POST /_fake/reset empties everything. GET /_fake/state dumps the work orders, each doclink
 *   with its "downloads", and counters (among them "next_pages": collection pages 2 and later
 *   asked for, and "faulted": one-shot faults used up). */
#include <ctype.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "fake_server.h"

#define BODY_MAX   (1024 * 1024)
#define SIZE_MAX_  (64LL * 1024 * 1024) /* a filler document's size */
#define PREFIX     "/maximo/oslc/os/"
#define CLAUSE_MAX 16
#define ORDER_MAX  8

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static const char *apikey;
static int port;

/* Work orders in the order added; their doclinks inside ("id", "downloads", bytes in
 * "content" or "size"). */
static json_t *workorders;
static long long next_doclink, clock_s;
static struct {
    long long requests, lists, next_pages, doclink_lists, downloads, refused_401, refused_429,
        refused_503, faulted;
} counters;

/* The kinds of API call a one-shot fault aims at. */
enum call_kind { CALL_ANY, CALL_LIST, CALL_NEXT_PAGE, CALL_DOCLINKS, CALL_DOWNLOAD };
static const char *const kind_names[] = {"any", "list", "next_page", "doclinks", "download", NULL};

static struct {
    int fail_429, fail_503, retry_after, delay_ms, pass_first;
    bool expired;
    char foreign[128];
    struct fake_once once;
} faults;

static void reset(void)
{
    json_decref(workorders);
    workorders = json_array();
    next_doclink = 1000;
    clock_s = 0;
    memset(&counters, 0, sizeof counters);
    memset(&faults, 0, sizeof faults);
    faults.retry_after = -1;
}

/* The next changedate: later than every one before, in the server's zone (+05:30). */
static void next_changedate(char *buf, size_t n)
{
    time_t t = (time_t)1796617800 + (time_t)clock_s++; /* 2026-12-07T10:00:00+05:30 */
    struct tm tm;

    t += 5 * 3600 + 1800;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%S+05:30", &tm);
}

/* --- replies --------------------------------------------------------------------------------- */

static enum MHD_Result send_bytes(struct MHD_Connection *c, int status, const void *data,
                                  size_t len, const char *type, const char *retry_after)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ok;

    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    if (retry_after)
        MHD_add_response_header(r, "Retry-After", retry_after);
    ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

/* Answers v (taken) as JSON. */
static enum MHD_Result send_json(struct MHD_Connection *c, int status, json_t *v,
                                 const char *retry_after)
{
    char *text = json_dumps(v, JSON_COMPACT);
    enum MHD_Result ok = send_bytes(c, status, text ? text : "{}", text ? strlen(text) : 2,
                                    "application/json; charset=utf-8", retry_after);

    free(text);
    json_decref(v);
    return ok;
}

/* Maximo's error object. */
static enum MHD_Result error(struct MHD_Connection *c, int status, const char *code,
                             const char *msg, const char *retry_after)
{
    char st[16];

    snprintf(st, sizeof st, "%d", status);
    return send_json(c, status,
                     json_pack("{s:{s:s, s:s, s:s}}", "Error", "reasonCode", code, "message", msg,
                               "statusCode", st),
                     retry_after);
}

/* --- names ----------------------------------------------------------------------------------- */

/* "_" + base64("SITEID/WONUM"), padding written '-', as Maximo's rest ids. */
static void rest_id(const json_t *wo, char *out, size_t n)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char in[512];
    size_t len, o = 0;

    snprintf(in, sizeof in, "%s/%s", json_string_value(json_object_get(wo, "siteid")),
             json_string_value(json_object_get(wo, "wonum")));
    len = strlen(in);
    out[o++] = '_';
    for (size_t i = 0; i < len && o + 5 < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;

        if (i + 1 < len)
            v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < len)
            v |= (unsigned char)in[i + 2];
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = i + 1 < len ? b64[v >> 6 & 63] : '-';
        out[o++] = i + 2 < len ? b64[v & 63] : '-';
    }
    out[o] = '\0';
}

static json_t *find_rest(const char *rid)
{
    json_t *wo;
    size_t i;
    char id[700];

    json_array_foreach(workorders, i, wo)
    {
        rest_id(wo, id, sizeof id);
        if (strcmp(id, rid) == 0)
            return wo;
    }
    return NULL;
}

/* Where absolute links point: this server, or the foreign host a fault names. */
static void origin(char *buf, size_t n)
{
    if (faults.foreign[0])
        snprintf(buf, n, "%s", faults.foreign);
    else
        snprintf(buf, n, "http://127.0.0.1:%d", port);
}

/* Lean names, or Maximo's namespaced ones. */
static json_t *namespaced(json_t *v)
{
    const char *k;
    json_t *x, *out;
    size_t i;

    if (json_is_array(v)) {
        out = json_array();
        json_array_foreach(v, i, x) json_array_append_new(out, namespaced(x));
        return out;
    }
    if (!json_is_object(v))
        return json_incref(v);
    out = json_object();
    json_object_foreach(v, k, x)
    {
        char name[200];

        if (strcmp(k, "member") == 0)
            snprintf(name, sizeof name, "rdfs:member");
        else if (strcmp(k, "href") == 0)
            snprintf(name, sizeof name, "rdf:about");
        else if (strcmp(k, "responseInfo") == 0 || strcmp(k, "nextPage") == 0 ||
                 strcmp(k, "previousPage") == 0 || strcmp(k, "totalCount") == 0 ||
                 strcmp(k, "pagenum") == 0 || strcmp(k, "totalPages") == 0)
            snprintf(name, sizeof name, "oslc:%s", k);
        else
            snprintf(name, sizeof name, "spi:%s", k);
        json_object_set_new(out, name, namespaced(x));
    }
    return out;
}

/* --- queries --------------------------------------------------------------------------------- */

struct clause {
    char attr[64], op[3], value[512];
};

static bool attr_ok(const char *a)
{
    return strcmp(a, "wonum") == 0 || strcmp(a, "siteid") == 0 || strcmp(a, "status") == 0 ||
           strcmp(a, "description") == 0 || strcmp(a, "changedate") == 0;
}

/* oslc.where into clauses; false when it is not one this fake reads. */
static bool parse_where(const char *w, struct clause *cl, int *n)
{
    const char *p = w;

    *n = 0;
    while (*p) {
        struct clause *c = &cl[*n];
        size_t k = 0;

        if (*n == CLAUSE_MAX)
            return false;
        while (*p == ' ')
            p++;
        while ((isalnum((unsigned char)*p) || *p == '_' || *p == '.') && k + 1 < sizeof c->attr)
            c->attr[k++] = (char)tolower((unsigned char)*p++);
        c->attr[k] = '\0';
        if (!attr_ok(c->attr))
            return false;
        k = 0;
        while (strchr("<>=!", *p) && *p && k < 2)
            c->op[k++] = *p++;
        c->op[k] = '\0';
        if (!k || (strcmp(c->op, "!") == 0))
            return false;
        k = 0;
        if (*p == '"') {
            p++;
            while (*p && *p != '"' && k + 1 < sizeof c->value)
                c->value[k++] = *p++;
            if (*p++ != '"')
                return false;
        } else {
            while (*p && *p != ' ' && k + 1 < sizeof c->value)
                c->value[k++] = *p++;
        }
        c->value[k] = '\0';
        (*n)++;
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        if (strncasecmp(p, "and ", 4) != 0)
            return false;
        p += 4;
    }
    return true;
}

static bool matches(const json_t *wo, const struct clause *cl, int n)
{
    for (int i = 0; i < n; i++) {
        const char *v = json_string_value(json_object_get(wo, cl[i].attr));
        int d;

        if (!v)
            return false;
        d = strcmp(v, cl[i].value);
        if ((strcmp(cl[i].op, "=") == 0 && d != 0) || (strcmp(cl[i].op, "!=") == 0 && d == 0) ||
            (strcmp(cl[i].op, ">") == 0 && d <= 0) || (strcmp(cl[i].op, ">=") == 0 && d < 0) ||
            (strcmp(cl[i].op, "<") == 0 && d >= 0) || (strcmp(cl[i].op, "<=") == 0 && d > 0))
            return false;
    }
    return true;
}

static struct {
    char attr[ORDER_MAX][64];
    int dir[ORDER_MAX], n;
} order;

static int by_order(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;

    for (int i = 0; i < order.n; i++) {
        const char *s = json_string_value(json_object_get(x, order.attr[i]));
        const char *t = json_string_value(json_object_get(y, order.attr[i]));
        int d = strcmp(s ? s : "", t ? t : "");

        if (d)
            return d * order.dir[i];
    }
    return 0;
}

/* "+a,-b": every attribute signed. */
static bool parse_order(const char *o)
{
    order.n = 0;
    while (o && *o) {
        size_t k = strcspn(o, ",");

        if (order.n == ORDER_MAX || k < 2 || k >= sizeof order.attr[0] ||
            (o[0] != '+' && o[0] != '-'))
            return false;
        snprintf(order.attr[order.n], sizeof order.attr[0], "%.*s", (int)k - 1, o + 1);
        if (!attr_ok(order.attr[order.n]))
            return false;
        order.dir[order.n++] = o[0] == '+' ? 1 : -1;
        o += k + (o[k] == ',');
    }
    return true;
}

/* The query string again, percent-encoded, without pageno. */
struct query {
    char text[4096];
    size_t len;
};

static enum MHD_Result requery(void *ud, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    struct query *q = ud;

    (void)kind;
    if (strcmp(key, "pageno") == 0 || q->len + strlen(key) + 8 >= sizeof q->text)
        return MHD_YES;
    q->len += (size_t)snprintf(q->text + q->len, sizeof q->text - q->len,
                               "%s%s=", q->len ? "&" : "", key);
    for (const char *p = value ? value : ""; *p && q->len + 4 < sizeof q->text; p++) {
        unsigned char ch = (unsigned char)*p;

        if (isalnum(ch) || strchr("-._~,*{}", ch))
            q->text[q->len++] = (char)ch;
        else
            q->len += (size_t)snprintf(q->text + q->len, 4, "%%%02X", ch);
    }
    q->text[q->len] = '\0';
    return MHD_YES;
}

static bool selected(const char *select, const char *field)
{
    size_t n = strlen(field);

    if (!select)
        return false;
    if (strcmp(select, "*") == 0)
        return true;
    for (const char *p = select; (p = strstr(p, field)); p += n)
        if ((p == select || p[-1] == ',') && (p[n] == '\0' || p[n] == ',' || p[n] == '{'))
            return true;
    return false;
}

/* A work order as the collection shows it. */
static json_t *member_of(const json_t *wo, const char *object, const char *select)
{
    static const char *const fields[] = {
        "wonum",      "siteid", "status", "description", "description_longdescription",
        "changedate", NULL};
    char rid[700], href[1000];
    json_t *m;

    rest_id(wo, rid, sizeof rid);
    snprintf(href, sizeof href, "oslc/os/%s/%s", object, rid);
    m = json_pack("{s:s}", "href", href);
    for (int i = 0; fields[i]; i++)
        if (selected(select, fields[i]) && json_object_get(wo, fields[i]))
            json_object_set(m, fields[i], json_object_get(wo, fields[i]));
    if (selected(select, "doclinks")) {
        snprintf(href, sizeof href, "oslc/os/%s/%s/doclinks", object, rid);
        json_object_set_new(m, "doclinks", json_pack("{s:s}", "href", href));
    }
    return m;
}

static enum MHD_Result collection(struct MHD_Connection *c, const char *object, bool lean)
{
    const char *where = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "oslc.where");
    const char *ob = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "oslc.orderBy");
    const char *ps = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "oslc.pageSize");
    const char *pn = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "pageno");
    const char *select = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "oslc.select");
    struct clause cl[CLAUSE_MAX];
    struct query q = {.len = 0};
    char org[160], href[5000];
    json_t **all, *wo, *out, *members, *info;
    size_t i, n = 0, size, page, pages, from;
    int ncl = 0;

    counters.lists++;
    if (where && !parse_where(where, cl, &ncl))
        return error(c, 400, "BMXAA0000E", "oslc.where: not a clause this server reads", NULL);
    if (!parse_order(ob))
        return error(c, 400, "BMXAA0000E",
                     "oslc.orderBy: every attribute must be prefixed with + or -", NULL);
    all = calloc(json_array_size(workorders) + 1, sizeof *all);
    json_array_foreach(workorders, i, wo) if (matches(wo, cl, ncl)) all[n++] = wo;
    if (order.n)
        qsort(all, n, sizeof *all, by_order);
    size = ps ? (size_t)atol(ps) : 0;
    if (!size)
        size = n ? n : 1;
    page = pn ? (size_t)atol(pn) : 1;
    if (page < 1)
        page = 1;
    pages = n ? (n + size - 1) / size : 1;
    from = (page - 1) * size;
    members = json_array();
    for (i = from; i < n && i < from + size; i++)
        json_array_append_new(members, member_of(all[i], object, select));
    free(all);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, requery, &q);
    origin(org, sizeof org);
    snprintf(href, sizeof href, "%s" PREFIX "%s?%s&pageno=%zu", org, object, q.text, page);
    info = json_pack("{s:s, s:I, s:I, s:I}", "href", href, "pagenum", (json_int_t)page,
                     "totalCount", (json_int_t)n, "totalPages", (json_int_t)pages);
    if (page < pages) {
        snprintf(href, sizeof href, "%s" PREFIX "%s?%s&pageno=%zu", org, object, q.text, page + 1);
        json_object_set_new(info, "nextPage", json_pack("{s:s}", "href", href));
    }
    if (page > 1) {
        snprintf(href, sizeof href, "%s" PREFIX "%s?%s&pageno=%zu", org, object, q.text, page - 1);
        json_object_set_new(info, "previousPage", json_pack("{s:s}", "href", href));
    }
    snprintf(href, sizeof href, "oslc/os/%s", object);
    out = json_pack("{s:o, s:s, s:o}", "member", members, "href", href, "responseInfo", info);
    if (!lean) {
        json_t *ns = namespaced(out);

        json_decref(out);
        out = ns;
    }
    return send_json(c, 200, out, NULL);
}

static json_t *described(const json_t *d)
{
    json_t *v = json_pack("{s:s, s:s?, s:s?, s:s?, s:{s:s}, s:s, s:s}", "identifier",
                          json_string_value(json_object_get(d, "id")), "fileName",
                          json_string_value(json_object_get(d, "fileName")), "title",
                          json_string_value(json_object_get(d, "title")), "description",
                          json_string_value(json_object_get(d, "description")), "format", "label",
                          json_string_value(json_object_get(d, "mime")), "docType", "Attachments",
                          "urlType", json_string_value(json_object_get(d, "urltype")));

    if (!json_is_true(json_object_get(d, "hide_size")))
        json_object_set(v, "attachmentSize", json_object_get(d, "size"));
    return v;
}

static enum MHD_Result doclinks(struct MHD_Connection *c, const char *object, const char *rid,
                                const char *rest, bool lean)
{
    json_t *wo = find_rest(rid), *d, *members, *out;
    char org[160], href[1200];
    size_t i;

    if (!wo)
        return error(c, 404, "BMXAA8727E", "the resource was not found", NULL);
    origin(org, sizeof org);
    if (!*rest) {
        counters.doclink_lists++;
        members = json_array();
        json_array_foreach(json_object_get(wo, "doclinks"), i, d)
        {
            const char *id = json_string_value(json_object_get(d, "id"));
            char local[1200];

            snprintf(href, sizeof href, "%s/maximo/oslc/os/%s/%s/doclinks/%s", org, object, rid,
                     id);
            snprintf(local, sizeof local, "oslc/os/%s/%s/doclinks/0-%s", object, rid, id);
            json_array_append_new(members, json_pack("{s:s, s:s, s:o}", "href", href, "localref",
                                                     local, "describedBy", described(d)));
        }
        snprintf(href, sizeof href, "oslc/os/%s/%s/doclinks", object, rid);
        out = json_pack("{s:s, s:o, s:{s:s, s:I}}", "href", href, "member", members, "responseInfo",
                        "href", href, "totalCount", (json_int_t)json_array_size(members));
        if (!lean) {
            json_t *ns = namespaced(out);

            json_decref(out);
            out = ns;
        }
        return send_json(c, 200, out, NULL);
    }
    json_array_foreach(json_object_get(wo, "doclinks"), i, d)
    {
        const char *id = json_string_value(json_object_get(d, "id"));
        const char *text = json_string_value(json_object_get(d, "content"));
        enum MHD_Result ok;

        if (strcmp(id, rest) != 0)
            continue;
        counters.downloads++;
        json_object_set_new(d, "downloads",
                            json_integer(json_integer_value(json_object_get(d, "downloads")) + 1));
        if (text)
            return send_bytes(c, 200, text, strlen(text),
                              json_string_value(json_object_get(d, "mime")), NULL);
        size_t n = (size_t)json_integer_value(json_object_get(d, "size"));
        char *fill = malloc(n + 1);

        for (size_t k = 0; k < n; k++)
            fill[k] = (char)('a' + k % 26);
        ok = send_bytes(c, 200, fill, n, json_string_value(json_object_get(d, "mime")), NULL);
        free(fill);
        return ok;
    }
    return error(c, 404, "BMXAA8727E", "the doclink was not found", NULL);
}

/* --- one-shot faults ------------------------------------------------------------------------ */

/* What an API call (its path under PREFIX) is. */
static enum call_kind kind_of(struct MHD_Connection *c, const char *path)
{
    const char *pn = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "pageno");
    const char *rest = path + strcspn(path, "/");

    if (!*rest)
        return pn && atol(pn) >= 2 ? CALL_NEXT_PAGE : CALL_LIST;
    rest = strchr(rest + 1, '/');
    if (rest && strcmp(rest, "/doclinks") == 0)
        return CALL_DOCLINKS;
    if (rest && strncmp(rest, "/doclinks/", 10) == 0)
        return CALL_DOWNLOAD;
    return CALL_ANY;
}

static enum MHD_Result api(struct MHD_Connection *c, const char *method, const char *path,
                           int *delay_ms)
{
    const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "apikey");
    const char *lean = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "lean");
    char object[128], rid[700], ra[24];
    const char *rest;
    size_t k;
    int status;

    counters.requests++;
    snprintf(ra, sizeof ra, "%d", faults.retry_after);
    if (faults.pass_first > 0 && (faults.fail_429 > 0 || faults.fail_503 > 0))
        faults.pass_first--;
    else if (faults.fail_429 > 0) {
        faults.fail_429--;
        counters.refused_429++;
        return error(c, 429, "BMXAA0429E", "too many requests", faults.retry_after >= 0 ? ra : "1");
    } else if (faults.fail_503 > 0) {
        faults.fail_503--;
        counters.refused_503++;
        return error(c, 503, "BMXAA0503E", "the server is not available",
                     faults.retry_after >= 0 ? ra : NULL);
    }
    k = (size_t)kind_of(c, path);
    if (k == CALL_NEXT_PAGE)
        counters.next_pages++;
    if ((status = fake_once_take(&faults.once, (int)k, k == CALL_NEXT_PAGE ? CALL_LIST : -1,
                                 delay_ms)) >= 0)
        counters.faulted++;
    if (status > 0) {
        /* What a proxy in front answers for a gateway error is a page of its own. */
        if (status == 502 || status == 504) {
            static const char page[] = "<html><body><h1>Bad gateway</h1></body></html>";

            return send_bytes(c, status, page, sizeof page - 1, "text/html", NULL);
        }
        return error(c, status, "BMXAA0500E", "an internal error occurred", NULL);
    }
    if (faults.expired || (apikey && (!key || strcmp(key, apikey) != 0))) {
        counters.refused_401++;
        return error(c, 401, "BMXAA7901E",
                     "You cannot log in at this time: the API key is not "
                     "valid or has expired",
                     NULL);
    }
    if (strcmp(method, "GET") != 0)
        return error(c, 405, "BMXAA0405E", "this fake answers GET only", NULL);
    k = strcspn(path, "/");
    if (!k || k >= sizeof object)
        return error(c, 404, "BMXAA8727E", "no such object structure", NULL);
    snprintf(object, sizeof object, "%.*s", (int)k, path);
    if (!path[k])
        return collection(c, object, lean && strcmp(lean, "1") == 0);
    rest = path + k + 1;
    k = strcspn(rest, "/");
    if (k >= sizeof rid)
        return error(c, 404, "BMXAA8727E", "the resource was not found", NULL);
    snprintf(rid, sizeof rid, "%.*s", (int)k, rest);
    rest += k;
    if (strncmp(rest, "/doclinks", 9) == 0 && (rest[9] == '\0' || rest[9] == '/'))
        return doclinks(c, object, rid, rest[9] ? rest + 10 : "", lean && strcmp(lean, "1") == 0);
    return error(c, 404, "BMXAA8727E", "this fake serves collections and doclinks only", NULL);
}

/* --- control --------------------------------------------------------------------------------- */

static json_t *find_wo(const char *siteid, const char *wonum)
{
    json_t *wo;
    size_t i;

    json_array_foreach(workorders, i, wo)
    {
        if (strcmp(json_string_value(json_object_get(wo, "siteid")), siteid) == 0 &&
            strcmp(json_string_value(json_object_get(wo, "wonum")), wonum) == 0)
            return wo;
    }
    return NULL;
}

/* Adds or changes one work order from in; NULL with why set when in is not one. */
static json_t *put_workorder(json_t *in, const char **why)
{
    const char *wonum = json_string_value(json_object_get(in, "wonum"));
    const char *siteid = json_string_value(json_object_get(in, "siteid"));
    const char *k;
    json_t *wo, *v, *d, *links;
    char date[40];
    size_t i;

    if (!wonum || !*wonum) {
        *why = "a work order needs a wonum";
        return NULL;
    }
    if (!siteid)
        siteid = "BEDFORD";
    if (!(wo = find_wo(siteid, wonum))) {
        wo = json_pack("{s:s, s:s, s:s, s:[]}", "wonum", wonum, "siteid", siteid, "status", "APPR",
                       "doclinks");
        json_array_append_new(workorders, wo);
    }
    json_object_foreach(in, k, v)
    {
        if (strcmp(k, "doclinks") != 0 && json_is_string(v))
            json_object_set(wo, k, v);
    }
    if (!json_object_get(in, "changedate")) {
        next_changedate(date, sizeof date);
        json_object_set_new(wo, "changedate", json_string(date));
    }
    links = json_object_get(wo, "doclinks");
    json_array_foreach(json_object_get(in, "doclinks"), i, d)
    {
        const json_t *content = json_object_get(d, "content");
        json_int_t size = content ? (json_int_t)strlen(json_string_value(content))
                                  : json_integer_value(json_object_get(d, "size"));
        char id[24];

        if (size < 0 || size > SIZE_MAX_) {
            *why = "a doclink's size is out of range";
            return NULL;
        }
        snprintf(id, sizeof id, "%lld", next_doclink++);
        json_t *dl = json_pack("{s:s, s:s, s:I, s:i, s:s}", "id", id, "mime",
                               json_string_value(json_object_get(d, "mime"))
                                   ? json_string_value(json_object_get(d, "mime"))
                                   : "application/octet-stream",
                               "size", size, "downloads", 0, "urltype",
                               json_string_value(json_object_get(d, "urltype"))
                                   ? json_string_value(json_object_get(d, "urltype"))
                                   : "FILE");
        static const char *const texts[] = {"fileName", "title", "description", "content", NULL};

        for (int t = 0; texts[t]; t++)
            if (json_is_string(json_object_get(d, texts[t])))
                json_object_set(dl, texts[t], json_object_get(d, texts[t]));
        if (json_is_true(json_object_get(d, "hide_size")))
            json_object_set_new(dl, "hide_size", json_true());
        json_array_append_new(links, dl);
    }
    return wo;
}

static json_t *state_view(void)
{
    json_t *out = json_deep_copy(workorders), *wo, *d;
    size_t i, j;

    json_array_foreach(out, i, wo) json_array_foreach(json_object_get(wo, "doclinks"), j, d)
        json_object_del(d, "content");
    return out;
}

/* Appends the one-shot faults of list (none when NULL), then answers. */
static enum MHD_Result add_once(struct MHD_Connection *c, const json_t *list)
{
    char why[256];

    if (fake_once_add(&faults.once, list, kind_names, why, sizeof why) != 0)
        return error(c, 400, "FAKE", why, NULL);
    return send_json(c, 200, json_pack("{s:b}", "ok", 1), NULL);
}

static enum MHD_Result control(struct MHD_Connection *c, const char *method, const char *path,
                               struct req *rq)
{
    json_t *in = rq->len ? json_loadb(rq->body, rq->len, 0, NULL) : NULL, *v;
    enum MHD_Result ok;

    if (strcmp(path, "state") == 0 && strcmp(method, "GET") == 0) {
        ok = send_json(
            c, 200,
            json_pack(
                "{s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}}", "workorders",
                state_view(), "counters", "faulted", (json_int_t)counters.faulted, "next_pages",
                (json_int_t)counters.next_pages, "requests", (json_int_t)counters.requests, "lists",
                (json_int_t)counters.lists, "doclink_lists", (json_int_t)counters.doclink_lists,
                "downloads", (json_int_t)counters.downloads, "refused_401",
                (json_int_t)counters.refused_401, "refused_429", (json_int_t)counters.refused_429,
                "refused_503", (json_int_t)counters.refused_503),
            NULL);
    } else if (strcmp(path, "reset") == 0 && strcmp(method, "POST") == 0) {
        reset();
        ok = send_json(c, 200, json_pack("{s:b}", "ok", 1), NULL);
    } else if (strcmp(path, "workorders") == 0 && strcmp(method, "POST") == 0) {
        json_t *list = json_object_get(in, "workorders"), *it, *done = json_array();
        const char *why = NULL;
        size_t i;

        if (!json_is_array(list))
            why = "expected {\"workorders\": [...]}";
        json_array_foreach(list, i, it)
        {
            json_t *wo = why ? NULL : put_workorder(it, &why);

            if (wo)
                json_array_append(done, wo);
        }
        if (why) {
            json_decref(done);
            ok = error(c, 400, "FAKE", why, NULL);
        } else {
            json_t *view = json_deep_copy(done);

            json_decref(done);
            size_t j;

            json_array_foreach(view, i, it) json_array_foreach(json_object_get(it, "doclinks"), j,
                                                               v) json_object_del(v, "content");
            ok = send_json(c, 200, json_pack("{s:o}", "workorders", view), NULL);
        }
    } else if (strcmp(path, "faults") == 0 && strcmp(method, "POST") == 0) {
        if (!json_is_object(in)) {
            ok = error(c, 400, "FAKE", "faults: expected a JSON object", NULL);
        } else {
            if ((v = json_object_get(in, "fail_429")))
                faults.fail_429 = (int)json_integer_value(v);
            if ((v = json_object_get(in, "fail_503")))
                faults.fail_503 = (int)json_integer_value(v);
            if ((v = json_object_get(in, "retry_after")))
                faults.retry_after = (int)json_integer_value(v);
            if ((v = json_object_get(in, "expire_apikey")))
                faults.expired = json_is_true(v);
            if ((v = json_object_get(in, "foreign_host")))
                snprintf(faults.foreign, sizeof faults.foreign, "%s",
                         json_string_value(v) ? json_string_value(v) : "");
            if ((v = json_object_get(in, "delay_ms")))
                faults.delay_ms = (int)json_integer_value(v);
            if ((v = json_object_get(in, "pass_first")))
                faults.pass_first = (int)json_integer_value(v);
            ok = add_once(c, json_object_get(in, "once"));
        }
    } else {
        ok = error(c, 404, "FAKE", "no such control", NULL);
    }
    json_decref(in);
    return ok;
}

/* --- the server ------------------------------------------------------------------------------ */

static enum MHD_Result route(struct MHD_Connection *c, const char *url, const char *method,
                             struct req *rq, int *delay_ms)
{
    enum MHD_Result ok;
    bool is_api = strncmp(url, PREFIX, strlen(PREFIX)) == 0;

    pthread_mutex_lock(&mu);
    if (is_api)
        *delay_ms = faults.delay_ms;
    if (strncmp(url, "/_fake/", 7) == 0)
        ok = control(c, method, url + 7, rq);
    else if (is_api)
        ok = api(c, method, url + strlen(PREFIX), delay_ms);
    else
        ok = error(c, 404, "BMXAA8727E", "not the API: expected " PREFIX "<object>", NULL);
    pthread_mutex_unlock(&mu);
    return ok;
}

static enum MHD_Result too_big(struct MHD_Connection *c)
{
    return error(c, 413, "FAKE", "request body too large", NULL);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--apikey") == 0 && i + 1 < argc)
            apikey = argv[++i];
        else {
            fprintf(stderr, "usage: fake-maximo [--port N] [--apikey K]\n");
            return 2;
        }
    }
    reset();
    if (fake_serve("fake-maximo", &port, BODY_MAX, route, too_big) != 0)
        return 1;
    json_decref(workorders);
    return 0;
}
