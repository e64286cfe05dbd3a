/* fake_graph.c - a fake of Microsoft Graph's drive API and of the Microsoft identity platform's
 * token endpoint, for sy-ingest's SharePoint tests: one document library whose files change
 * through a control API, listed by driveItem delta the way SharePoint pages it, fetched as
 * items with a pre-authenticated download URL. State lives in memory.
 *
 *   fake-graph [--port N] [--tenant T] [--client-id ID] [--client-secret S] [--drive D]
 *              [--page-size N] [--token-ttl S]
 *
 * Listens on 127.0.0.1 (port 0 or none: any), prints "port=<n>" once listening, serves until
 * SIGTERM. Defaults: tenant "contoso", client "fake-client" with secret "fake-secret", drive
 * "b!fake-drive", 200 items a page, tokens that last 3599 s.
 *
 *   POST /<tenant>/oauth2/v2.0/token   grant_type=client_credentials&client_id=&client_secret=
 *                                      &scope=<resource>/.default (a form): {"token_type":
 *                                      "Bearer","expires_in","ext_expires_in","access_token"};
 *                                      a wrong client or secret 401 invalid_client, another
 *                                      tenant 400 invalid_request, as AADSTS errors
 *   GET /v1.0/drives/<D>/root/delta[?token=T]   a page of items, with @odata.nextLink while
 *                                      more follow, @odata.deltaLink on the last; the first
 *                                      listing gives every file and folder, a delta link what
 *                                      changed since (deletions with the deleted facet)
 *   GET /v1.0/drives/<D>/items/<id>    the item, with @microsoft.graph.downloadUrl
 *   GET /v1.0/drives/<D>/items/<id>/content   302 to that download URL
 *   GET /download/<n>?tempauth=<t>     the bytes (no Authorization needed; one sent is counted)
 * Every /v1.0/ call needs "Authorization: Bearer <a token it issued, unexpired>", else 401
 * InvalidAuthenticationToken. Files have a cTag that changes with their content (folders have
 * none, as on SharePoint) and an eTag; ids are "01FAKE" and eight digits, in creation order.
 *
 * Control (no auth):
 *   POST /_fake/files {"name", "content", "mime"?, "folder"?}  adds a file (or a folder), or
 *        gives the file of that name new content (a new cTag): {"id", "cTag"}
 *   POST /_fake/delete {"name"}                 deletes it
 *   POST /_fake/faults with any of (a "call" is a /v1.0/ request or a download)
 *     {"fail_429": K, "retry_after": S}   the next K calls answer 429, Retry-After: S
 *     {"fail_503": K}                     the next K calls answer 503, Retry-After: S
 *     {"expire_tokens": true}             every token issued so far is expired from now on
 *     {"expire_delta": true}              every delta and next link issued so far answers
 *                                         410 Gone (resyncRequired) from now on
 *     {"delay_ms": M}                     every call's answer waits M ms (0: off)
 *     {"refuse_tokens": true|false}       the token endpoint refuses the client (401
 *                                         invalid_client, its secret expired) while true
 *     {"once": [{"on": K, "status": S} | {"on": K, "delay_ms": M}, ...]}
 *                                         one-shot faults, each used up by the first request
 *                                         of kind K after it: "token", "delta" (any delta
 *                                         page), "next_page" (a page a nextLink names),
 *                                         "item", "content", "download" or "any" (a call or
 *                                         a token request); it answers status S (a Graph
 *                                         error; for 502 and 504 a gateway's HTML page), or
 *                                         the request's own answer M ms late
 *     {"page_size": N}                    items a delta page holds from now on
 *   POST /_fake/reset                     no files, faults or counters
 *   GET /_fake/state                      files (with their downloads) and counters
 *                                         ("requests": every request but the control ones;
 *                                         "next_pages": delta pages a nextLink named;
 *                                         "faulted": one-shot faults used up) */
#include <ctype.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fake_server.h"

#define BODY_MAX   (8 * 1024 * 1024)
#define FILES_MAX  10000
#define TOKENS_MAX 256

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static const char *tenant = "contoso", *client_id = "fake-client", *client_secret = "fake-secret",
                  *drive = "b!fake-drive";
static int token_ttl = 3599, port;

struct file {
    char *name, *mime;
    unsigned char *data;
    size_t len;
    bool folder, deleted;
    int version;
    long long seq; /* the change that made it what it is */
    char modified[32], tempauth[24];
    long long downloads;
};
static struct file files[FILES_MAX + 1]; /* files[1..nfiles]: the index is in the id */
static int nfiles;
static long long seq;
static int epoch; /* delta links of an older epoch are Gone */
static struct {
    char value[48];
    time_t until;
    int gen;
} tokens[TOKENS_MAX];
static int ntokens, token_gen;
static unsigned rnd;
static int page_size = 200, page_size_default = 200;
static struct {
    long long requests, token_requests, tokens_issued, token_refused, calls, delta_calls,
        item_calls, content_calls, downloads, downloads_with_auth, unauthorized, throttled,
        unavailable, gone, faulted, next_pages;
} counters;

/* The kinds of request a one-shot fault aims at. */
enum call_kind {
    CALL_ANY,
    CALL_TOKEN,
    CALL_DELTA,
    CALL_NEXT_PAGE,
    CALL_ITEM,
    CALL_CONTENT,
    CALL_DOWNLOAD,
    CALL_OTHER
};
static const char *const kind_names[] = {"any",  "token",   "delta",    "next_page",
                                         "item", "content", "download", NULL};

static struct {
    int fail_429, fail_503, retry_after, delay_ms;
    bool refuse_tokens;
    struct fake_once once;
} faults;

static void reset(void)
{
    for (int i = 1; i <= nfiles; i++) {
        free(files[i].name);
        free(files[i].mime);
        free(files[i].data);
    }
    memset(files, 0, sizeof files);
    nfiles = 0;
    seq = 0;
    epoch++;
    token_gen++;
    page_size = page_size_default;
    memset(&counters, 0, sizeof counters);
    memset(&faults, 0, sizeof faults);
}

/* --- replies --------------------------------------------------------------------------------- */

static enum MHD_Result send_bytes(struct MHD_Connection *c, int status, const void *data,
                                  size_t len, const char *type, const char *hname,
                                  const char *hvalue)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ok;

    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    if (hname)
        MHD_add_response_header(r, hname, hvalue);
    ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

/* Answers v (taken) as JSON, with one extra header when hname is set. */
static enum MHD_Result send_json_hdr(struct MHD_Connection *c, int status, json_t *v,
                                     const char *hname, const char *hvalue)
{
    char *text = json_dumps(v, JSON_COMPACT);
    enum MHD_Result ok =
        send_bytes(c, status, text ? text : "{}", text ? strlen(text) : 2,
                   "application/json; odata.metadata=minimal; charset=utf-8", hname, hvalue);

    free(text);
    json_decref(v);
    return ok;
}

static enum MHD_Result send_json(struct MHD_Connection *c, int status, json_t *v)
{
    return send_json_hdr(c, status, v, NULL, NULL);
}

/* Graph's error body: {"error": {"code", "message", "innerError"}}. */
static enum MHD_Result graph_error(struct MHD_Connection *c, int status, const char *code,
                                   const char *msg, const char *hname, const char *hvalue)
{
    char when[32];
    time_t t = time(NULL);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    return send_json_hdr(c, status,
                         json_pack("{s:{s:s, s:s, s:{s:s, s:s}}}", "error", "code", code, "message",
                                   msg, "innerError", "date", when, "request-id",
                                   "00000000-0000-0000-0000-000000000000"),
                         hname, hvalue);
}

/* An AADSTS error of the token endpoint. */
static enum MHD_Result aad_error(struct MHD_Connection *c, int status, const char *error,
                                 const char *description)
{
    counters.token_refused++;
    return send_json(c, status,
                     json_pack("{s:s, s:s, s:[i], s:s}", "error", error, "error_description",
                               description, "error_codes", 7000215, "trace_id",
                               "00000000-0000-0000-0000-000000000000"));
}

/* --- items ----------------------------------------------------------------------------------- */

static void now_iso(char *buf, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *item_json(int i, bool with_download)
{
    const struct file *f = &files[i];
    char id[24], etag[64], ctag[64], url[512], hash[32];
    json_t *it;

    snprintf(id, sizeof id, "01FAKE%08d", i);
    snprintf(etag, sizeof etag, "\"{%08X-0000-4000-8000-00000000FA4E},%d\"", i, f->version);
    snprintf(ctag, sizeof ctag, "\"c:{%08X-0000-4000-8000-00000000FA4E},%d\"", i, f->version);
    it = json_pack("{s:s, s:{s:s, s:s, s:s}}", "id", id, "parentReference", "driveType",
                   "documentLibrary", "driveId", drive, "id", "01FAKEROOT");
    if (f->deleted) {
        /* As OneDrive for Business writes a deletion: no name, no cTag. */
        json_object_set_new(it, "deleted", json_pack("{s:s}", "state", "deleted"));
        json_object_set_new(it, "file", json_object());
        return it;
    }
    snprintf(url, sizeof url, "https://contoso.sharepoint.com/sites/Ops/Shared%%20Documents/%s",
             f->name);
    json_object_set_new(it, "name", json_string(f->name));
    json_object_set_new(it, "eTag", json_string(etag));
    json_object_set_new(it, "webUrl", json_string(url));
    json_object_set_new(it, "lastModifiedDateTime", json_string(f->modified));
    json_object_set_new(it, "createdDateTime", json_string(f->modified));
    if (f->folder) {
        json_object_set_new(it, "folder", json_pack("{s:i}", "childCount", 0));
        json_object_set_new(it, "size", json_integer(0));
        return it;
    }
    snprintf(hash, sizeof hash, "%08XAAAAAAAAAAAAAAAA%04X=", i, f->version);
    json_object_set_new(it, "cTag", json_string(ctag));
    json_object_set_new(it, "size", json_integer((json_int_t)f->len));
    json_object_set_new(
        it, "file",
        json_pack("{s:s, s:{s:s}}", "mimeType", f->mime, "hashes", "quickXorHash", hash));
    if (with_download) {
        snprintf(url, sizeof url, "http://127.0.0.1:%d/download/%d?tempauth=%s", port, i,
                 f->tempauth);
        json_object_set_new(it, "@microsoft.graph.downloadUrl", json_string(url));
    }
    return it;
}

static int index_of(const char *id)
{
    int i;
    char end;

    if (strncmp(id, "01FAKE", 6) != 0 || sscanf(id + 6, "%8d%c", &i, &end) != 1 || i < 1 ||
        i > nfiles)
        return 0;
    return i;
}

/* --- tokens ---------------------------------------------------------------------------------- */

static void form_decode(char *s)
{
    char *o = s;

    for (; *s; s++) {
        if (*s == '+') {
            *o++ = ' ';
        } else if (*s == '%' && isxdigit((unsigned char)s[1]) && isxdigit((unsigned char)s[2])) {
            char hex[3] = {s[1], s[2], 0};

            *o++ = (char)strtol(hex, NULL, 16);
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
}

/* The value of name in a form body (decoded, malloc'd), or NULL. */
static char *form_get(const struct req *rq, const char *name)
{
    char *copy = strndup(rq->body ? rq->body : "", rq->len), *save = NULL, *out = NULL;

    for (char *p = strtok_r(copy, "&", &save); p && !out; p = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(p, '=');

        if (!eq)
            continue;
        *eq = '\0';
        form_decode(p);
        if (strcmp(p, name) == 0) {
            form_decode(eq + 1);
            out = strdup(eq + 1);
        }
    }
    free(copy);
    return out;
}

static enum MHD_Result token(struct MHD_Connection *c, const char *method, const char *path,
                             const struct req *rq)
{
    char want[256], *grant, *id, *secret, *scope, value[48];
    enum MHD_Result ok;

    counters.token_requests++;
    snprintf(want, sizeof want, "%s/oauth2/v2.0/token", tenant);
    if (strcmp(path, want) != 0)
        return aad_error(c, 400, "invalid_request",
                         "AADSTS90002: Tenant not found. Check to make sure you have the correct "
                         "tenant ID.");
    if (strcmp(method, "POST") != 0)
        return aad_error(c, 405, "invalid_request", "AADSTS900561: POST expected.");
    grant = form_get(rq, "grant_type");
    id = form_get(rq, "client_id");
    secret = form_get(rq, "client_secret");
    scope = form_get(rq, "scope");
    if (!grant || strcmp(grant, "client_credentials") != 0)
        ok = aad_error(c, 400, "unsupported_grant_type", "AADSTS70003: grant_type not supported.");
    else if (!scope || strlen(scope) < 9 || strcmp(scope + strlen(scope) - 9, "/.default") != 0)
        ok = aad_error(c, 400, "invalid_scope",
                       "AADSTS1002012: The provided value for scope is not valid: client "
                       "credential flows must have a scope value with /.default suffixed.");
    else if (!id || strcmp(id, client_id) != 0)
        ok = aad_error(c, 400, "unauthorized_client",
                       "AADSTS700016: Application not found in the directory.");
    else if (!secret || strcmp(secret, client_secret) != 0)
        ok = aad_error(c, 401, "invalid_client", "AADSTS7000215: Invalid client secret provided.");
    else if (faults.refuse_tokens)
        ok = aad_error(c, 401, "invalid_client",
                       "AADSTS7000222: The provided client secret keys for app are expired.");
    else {
        int k = ntokens++ % TOKENS_MAX;

        snprintf(value, sizeof value, "eyJfake.%08x%08x.%08x", rand_r(&rnd), rand_r(&rnd),
                 rand_r(&rnd));
        snprintf(tokens[k].value, sizeof tokens[k].value, "%s", value);
        tokens[k].until = time(NULL) + token_ttl;
        tokens[k].gen = token_gen;
        counters.tokens_issued++;
        ok = send_json(c, 200,
                       json_pack("{s:s, s:i, s:i, s:s}", "token_type", "Bearer", "expires_in",
                                 token_ttl, "ext_expires_in", token_ttl, "access_token", value));
    }
    free(grant);
    free(id);
    free(secret);
    free(scope);
    return ok;
}

static bool authorized(struct MHD_Connection *c)
{
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    time_t now = time(NULL);

    if (!auth || strncmp(auth, "Bearer ", 7) != 0)
        return false;
    for (int k = 0; k < TOKENS_MAX && k < ntokens; k++)
        if (strcmp(tokens[k].value, auth + 7) == 0)
            return tokens[k].gen == token_gen && tokens[k].until > now;
    return false;
}

/* --- the drive ------------------------------------------------------------------------------- */

/* A delta token: the epoch it belongs to, the changes after `from` up to `to` (0: up to the
 * latest when it is used), and the last index already given on this listing's pages. */
struct dtoken {
    int epoch;
    long long from, to;
    int after;
};

static bool dtoken_parse(const char *s, struct dtoken *t)
{
    char end;

    return sscanf(s, "e%d.f%lld.t%lld.a%d%c", &t->epoch, &t->from, &t->to, &t->after, &end) == 4;
}

static enum MHD_Result delta(struct MHD_Connection *c)
{
    const char *tok = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token");
    struct dtoken t = {.epoch = epoch, .from = 0, .to = 0, .after = 0};
    json_t *value = json_array(), *page;
    char link[512];
    int last = 0, taken = 0;
    bool more = false;

    counters.delta_calls++;
    if (tok && !dtoken_parse(tok, &t))
        return graph_error(c, 400, "invalidRequest", "Invalid delta token.", NULL, NULL);
    if (t.epoch != epoch) {
        char loc[256];

        json_decref(value);
        counters.gone++;
        snprintf(loc, sizeof loc, "http://127.0.0.1:%d/v1.0/drives/%s/root/delta", port, drive);
        return graph_error(c, 410, "resyncRequired",
                           "Resync required. Replace any local items with the server's version "
                           "(including deletes) if you're sure that the service was up to date "
                           "with your local changes when you last sync'd.",
                           "Location", loc);
    }
    if (t.to == 0)
        t.to = seq;
    for (int i = t.after + 1; i <= nfiles; i++) {
        const struct file *f = &files[i];

        if (f->seq <= t.from || f->seq > t.to || (t.from == 0 && f->deleted))
            continue;
        if (taken == page_size) {
            more = true;
            break;
        }
        json_array_append_new(value, item_json(i, false));
        taken++;
        last = i;
    }
    if (more)
        snprintf(link, sizeof link,
                 "http://127.0.0.1:%d/v1.0/drives/%s/root/delta?token=e%d.f%lld.t%lld.a%d", port,
                 drive, epoch, t.from, t.to, last);
    else
        snprintf(link, sizeof link,
                 "http://127.0.0.1:%d/v1.0/drives/%s/root/delta?token=e%d.f%lld.t0.a0", port, drive,
                 epoch, t.to);
    page = json_pack("{s:s, s:o, s:s}", "@odata.context",
                     "https://graph.microsoft.com/v1.0/$metadata#Collection(driveItem)", "value",
                     value, more ? "@odata.nextLink" : "@odata.deltaLink", link);
    return send_json(c, 200, page);
}

static enum MHD_Result api(struct MHD_Connection *c, const char *method, const char *path)
{
    char want[256];
    size_t k;
    int i;

    counters.calls++;
    if (!authorized(c)) {
        counters.unauthorized++;
        return graph_error(c, 401, "InvalidAuthenticationToken",
                           "Access token has expired or is not yet valid.", NULL, NULL);
    }
    if (strcmp(method, "GET") != 0)
        return graph_error(c, 405, "invalidRequest", "Only GET here.", NULL, NULL);
    snprintf(want, sizeof want, "drives/%s/", drive);
    k = strlen(want);
    if (strncmp(path, want, k) != 0)
        return graph_error(c, 404, "itemNotFound", "The drive does not exist.", NULL, NULL);
    path += k;
    if (strcmp(path, "root/delta") == 0)
        return delta(c);
    if (strncmp(path, "items/", 6) != 0)
        return graph_error(c, 400, "invalidRequest", "Invalid request.", NULL, NULL);
    path += 6;
    char id[32];
    const char *slash = strchr(path, '/');

    snprintf(id, sizeof id, "%.*s", slash ? (int)(slash - path) : (int)strlen(path), path);
    if (!(i = index_of(id)) || files[i].deleted)
        return graph_error(c, 404, "itemNotFound", "The resource could not be found.", NULL, NULL);
    if (!slash) {
        counters.item_calls++;
        return send_json(c, 200, item_json(i, true));
    }
    if (strcmp(slash, "/content") == 0 && !files[i].folder) {
        char loc[256];

        counters.content_calls++;
        snprintf(loc, sizeof loc, "http://127.0.0.1:%d/download/%d?tempauth=%s", port, i,
                 files[i].tempauth);
        return send_bytes(c, 302, "", 0, "text/plain", "Location", loc);
    }
    return graph_error(c, 400, "invalidRequest", "Invalid request.", NULL, NULL);
}

static enum MHD_Result download(struct MHD_Connection *c, const char *path)
{
    const char *ta = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "tempauth");
    int i = atoi(path);

    counters.calls++;
    if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"))
        counters.downloads_with_auth++;
    if (i < 1 || i > nfiles || files[i].deleted || files[i].folder)
        return graph_error(c, 404, "itemNotFound", "The file does not exist.", NULL, NULL);
    if (!ta || strcmp(ta, files[i].tempauth) != 0)
        return graph_error(c, 401, "unauthenticated", "The tempauth has expired.", NULL, NULL);
    counters.downloads++;
    files[i].downloads++;
    return send_bytes(c, 200, files[i].data, files[i].len, files[i].mime, NULL, NULL);
}

/* --- control --------------------------------------------------------------------------------- */

static int by_name(const char *name)
{
    for (int i = 1; i <= nfiles; i++)
        if (!files[i].deleted && strcmp(files[i].name, name) == 0)
            return i;
    return 0;
}

static void changed(int i)
{
    files[i].seq = ++seq;
    files[i].version++;
    now_iso(files[i].modified, sizeof files[i].modified);
    snprintf(files[i].tempauth, sizeof files[i].tempauth, "%08x%08x", rand_r(&rnd), rand_r(&rnd));
}

/* Appends the one-shot faults of list (none when NULL), then answers. */
static enum MHD_Result add_once(struct MHD_Connection *c, const json_t *list)
{
    char why[256];

    if (fake_once_add(&faults.once, list, kind_names, why, sizeof why) != 0)
        return send_json(c, 400, json_pack("{s:s}", "error", why));
    return send_json(c, 200, json_pack("{s:b}", "ok", 1));
}

static enum MHD_Result control(struct MHD_Connection *c, const char *method, const char *path,
                               struct req *rq)
{
    json_t *in = rq->len ? json_loadb(rq->body, rq->len, 0, NULL) : NULL, *v;
    enum MHD_Result ok;

    if (strcmp(path, "state") == 0 && strcmp(method, "GET") == 0) {
        json_t *list = json_array();

        for (int i = 1; i <= nfiles; i++) {
            json_t *it = item_json(i, false);

            json_object_set_new(it, "downloads", json_integer(files[i].downloads));
            json_array_append_new(list, it);
        }
        ok = send_json(
            c, 200,
            json_pack("{s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
                      "s:I, s:I, s:I}}",
                      "files", list, "counters", "faulted", counters.faulted, "next_pages",
                      counters.next_pages, "requests", counters.requests, "token_requests",
                      counters.token_requests, "tokens_issued", counters.tokens_issued,
                      "token_refused", counters.token_refused, "calls", counters.calls,
                      "delta_calls", counters.delta_calls, "item_calls", counters.item_calls,
                      "content_calls", counters.content_calls, "downloads", counters.downloads,
                      "downloads_with_auth", counters.downloads_with_auth, "unauthorized",
                      counters.unauthorized, "throttled", counters.throttled, "unavailable",
                      counters.unavailable, "gone", counters.gone));
    } else if (strcmp(path, "reset") == 0 && strcmp(method, "POST") == 0) {
        reset();
        ok = send_json(c, 200, json_pack("{s:b}", "ok", 1));
    } else if (strcmp(path, "files") == 0 && strcmp(method, "POST") == 0) {
        const char *name = json_string_value(json_object_get(in, "name"));
        const char *content = json_string_value(json_object_get(in, "content"));
        const char *mime = json_string_value(json_object_get(in, "mime"));
        bool folder = json_is_true(json_object_get(in, "folder"));
        int i = name ? by_name(name) : 0;

        if (!name || !*name || (!folder && !content) || (i && files[i].folder != folder))
            ok = send_json(c, 400, json_pack("{s:s}", "error", "files: name and content"));
        else if (!i && nfiles == FILES_MAX)
            ok = send_json(c, 507, json_pack("{s:s}", "error", "files: full"));
        else {
            char id[24];
            json_t *it;

            if (!i) {
                i = ++nfiles;
                files[i].name = strdup(name);
                files[i].folder = folder;
            }
            free(files[i].mime);
            free(files[i].data);
            files[i].mime = strdup(mime ? mime : "application/octet-stream");
            files[i].len = content ? json_string_length(json_object_get(in, "content")) : 0;
            files[i].data = malloc(files[i].len + 1);
            memcpy(files[i].data, content ? content : "", files[i].len);
            changed(i);
            snprintf(id, sizeof id, "01FAKE%08d", i);
            it = item_json(i, false);
            ok = send_json(c, 200,
                           json_pack("{s:s, s:O?}", "id", id, "cTag", json_object_get(it, "cTag")));
            json_decref(it);
        }
    } else if (strcmp(path, "delete") == 0 && strcmp(method, "POST") == 0) {
        const char *name = json_string_value(json_object_get(in, "name"));
        int i = name ? by_name(name) : 0;

        if (!i) {
            ok = send_json(c, 404, json_pack("{s:s}", "error", "delete: no such name"));
        } else {
            files[i].deleted = true;
            changed(i);
            ok = send_json(c, 200, json_pack("{s:b}", "ok", 1));
        }
    } else if (strcmp(path, "faults") == 0 && strcmp(method, "POST") == 0 && json_is_object(in)) {
        if ((v = json_object_get(in, "fail_429")))
            faults.fail_429 = (int)json_integer_value(v);
        if ((v = json_object_get(in, "fail_503")))
            faults.fail_503 = (int)json_integer_value(v);
        if ((v = json_object_get(in, "retry_after")))
            faults.retry_after = (int)json_integer_value(v);
        if ((v = json_object_get(in, "delay_ms")))
            faults.delay_ms = (int)json_integer_value(v);
        if ((v = json_object_get(in, "page_size")) && json_integer_value(v) > 0)
            page_size = (int)json_integer_value(v);
        if (json_is_true(json_object_get(in, "expire_tokens")))
            token_gen++;
        if (json_is_true(json_object_get(in, "expire_delta")))
            epoch++;
        if ((v = json_object_get(in, "refuse_tokens")))
            faults.refuse_tokens = json_is_true(v);
        ok = add_once(c, json_object_get(in, "once"));
    } else {
        ok = send_json(c, 404, json_pack("{s:s}", "error", "no such control"));
    }
    json_decref(in);
    return ok;
}

/* The fault due for a call, if any. */
static bool faulted(struct MHD_Connection *c, enum MHD_Result *ok)
{
    char ra[16];

    snprintf(ra, sizeof ra, "%d", faults.retry_after > 0 ? faults.retry_after : 1);
    if (faults.fail_429 > 0) {
        faults.fail_429--;
        counters.throttled++;
        *ok = graph_error(c, 429, "activityLimitReached", "The request has been throttled",
                          "Retry-After", ra);
        return true;
    }
    if (faults.fail_503 > 0) {
        faults.fail_503--;
        counters.unavailable++;
        *ok = graph_error(c, 503, "serviceNotAvailable", "The service is not available.",
                          "Retry-After", ra);
        return true;
    }
    return false;
}

/* What a request (not a control one) is. */
static enum call_kind kind_of(struct MHD_Connection *c, const char *url)
{
    const char *tok = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token");
    const char *slash;
    struct dtoken t;
    size_t n = strlen(url);

    if (strncmp(url, "/download/", 10) == 0)
        return CALL_DOWNLOAD;
    if (strncmp(url, "/v1.0/", 6) != 0)
        return CALL_TOKEN;
    if (n >= 11 && strcmp(url + n - 11, "/root/delta") == 0)
        return tok && dtoken_parse(tok, &t) && t.after > 0 ? CALL_NEXT_PAGE : CALL_DELTA;
    if (!(slash = strstr(url, "/items/")))
        return CALL_OTHER;
    slash = strchr(slash + 7, '/');
    return !slash ? CALL_ITEM : strcmp(slash, "/content") == 0 ? CALL_CONTENT : CALL_OTHER;
}

/* The first one-shot fault aimed at a request of kind k, used up, if any: true when it
 * answered (*ok set), false when it only delays the answer (into *delay_ms) or none is due. */
static bool faulted_once(struct MHD_Connection *c, enum call_kind k, int *delay_ms,
                         enum MHD_Result *ok)
{
    int status =
        fake_once_take(&faults.once, (int)k, k == CALL_NEXT_PAGE ? CALL_DELTA : -1, delay_ms);

    if (status >= 0)
        counters.faulted++;
    if (status <= 0)
        return false;
    if (status == 502 || status == 504) {
        static const char page[] = "<html><body><h1>502 Bad Gateway</h1></body></html>";

        *ok = send_bytes(c, status, page, sizeof page - 1, "text/html", NULL, NULL);
    } else {
        *ok = graph_error(c, status, "generalException", "An internal error occurred.", NULL, NULL);
    }
    return true;
}

static enum MHD_Result route(struct MHD_Connection *c, const char *url, const char *method,
                             struct req *rq, int *delay_ms)
{
    enum MHD_Result ok;
    enum call_kind kind = CALL_OTHER;
    bool call = strncmp(url, "/v1.0/", 6) == 0 || strncmp(url, "/download/", 10) == 0;

    pthread_mutex_lock(&mu);
    if (call)
        *delay_ms = faults.delay_ms;
    if (strncmp(url, "/_fake/", 7) != 0) {
        counters.requests++;
        kind = kind_of(c, url);
        counters.next_pages += kind == CALL_NEXT_PAGE;
    }
    if (strncmp(url, "/_fake/", 7) == 0)
        ok = control(c, method, url + 7, rq);
    else if (faulted_once(c, kind, delay_ms, &ok))
        ;
    else if (call && faulted(c, &ok))
        ;
    else if (strncmp(url, "/v1.0/", 6) == 0)
        ok = api(c, method, url + 6);
    else if (strncmp(url, "/download/", 10) == 0)
        ok = download(c, url + 10);
    else
        ok = token(c, method, url + 1, rq);
    pthread_mutex_unlock(&mu);
    return ok;
}

static enum MHD_Result too_big(struct MHD_Connection *c)
{
    return send_json(c, 413, json_pack("{s:s}", "error", "request body too large"));
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) {
            fprintf(stderr, "fake-graph: %s: a value is missing\n", argv[i]);
            return 2;
        }
        if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--tenant") == 0)
            tenant = argv[++i];
        else if (strcmp(argv[i], "--client-id") == 0)
            client_id = argv[++i];
        else if (strcmp(argv[i], "--client-secret") == 0)
            client_secret = argv[++i];
        else if (strcmp(argv[i], "--drive") == 0)
            drive = argv[++i];
        else if (strcmp(argv[i], "--page-size") == 0)
            page_size_default = atoi(argv[++i]);
        else if (strcmp(argv[i], "--token-ttl") == 0)
            token_ttl = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: fake-graph [--port N] [--tenant T] [--client-id ID] "
                            "[--client-secret S] [--drive D] [--page-size N] [--token-ttl S]\n");
            return 2;
        }
    }
    if (page_size_default < 1)
        page_size_default = 1;
    /* Two fakes started together should not hand out the same tokens. */
    rnd = (unsigned)time(NULL) ^ (unsigned)getpid() << 16;
    reset();
    if (fake_serve("fake-graph", &port, BODY_MAX, route, too_big) != 0)
        return 1;
    reset();
    return 0;
}
