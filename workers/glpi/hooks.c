/* hooks.c - the GLPI settings of Chatwoot hooks in PostgreSQL (see hooks.h). */
#include "glpi/hooks.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sy/err.h"
#include "sy/pg.h"

#define HOOK_ID_MAX 64
#define URL_MAX     1024

static const char sql_load[] =
    "SELECT hook_id, api_url, app_token, user_token, webhook_secret, entity_id, ticket_type,"
    " COALESCE(category_id, 0), COALESCE(default_user_id, 0), sync_type = 'contact', allow_http"
    " FROM glpi_hooks WHERE hook_id = $1";

static char *col(const struct sy_pg_res *res, int c)
{
    const char *v = sy_pg_res_get(res, 0, c);

    return v ? strdup(v) : NULL;
}

int glpi_hook_load(struct sy_pg *pg, const char *id, struct glpi_hook *h, char *err, size_t errlen)
{
    struct sy_pg_res *res = NULL;
    int rc;

    memset(h, 0, sizeof *h);
    if ((rc = sy_pg_exec(pg, sql_load, 1, &id, &res)) != 0) {
        sy_errf(err, errlen, "glpi_hooks: %s", sy_pg_error(pg));
        return rc;
    }
    if (sy_pg_res_rows(res) == 0) {
        sy_pg_res_free(res);
        sy_errf(err, errlen, "no GLPI hook '%.64s'", id);
        return -SY_ENOTFOUND;
    }
    h->id = col(res, 0);
    h->api_url = col(res, 1);
    h->app_token = col(res, 2);
    h->user_token = col(res, 3);
    h->webhook_secret = col(res, 4);
    h->entity_id = atoi(sy_pg_res_get(res, 0, 5));
    h->ticket_type = atoi(sy_pg_res_get(res, 0, 6));
    h->category_id = atoi(sy_pg_res_get(res, 0, 7));
    h->default_user_id = atoi(sy_pg_res_get(res, 0, 8));
    h->contact_sync = strcmp(sy_pg_res_get(res, 0, 9), "t") == 0;
    h->allow_http = strcmp(sy_pg_res_get(res, 0, 10), "t") == 0;
    sy_pg_res_free(res);
    if (!h->id || !h->api_url || !h->user_token) {
        glpi_hook_clear(h);
        sy_errf(err, errlen, "out of memory");
        return -SY_ENOMEM;
    }
    return 0;
}

static bool id_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > HOOK_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return false;
    return true;
}

static int bad(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -SY_EINVAL;
}

/* Whether an http:// URL's host is this machine: 127.0.0.0/8, [::1] or localhost. Anything
 * else (another host, credentials in the URL) is not. */
static bool loopback_url(const char *url)
{
    const char *host = url + strlen("http://"), *end = host + strcspn(host, "/?#");
    char name[64];
    size_t n;

    if (memchr(host, '@', (size_t)(end - host)))
        return false;
    if (*host == '[') {
        struct in6_addr a6;
        const char *close = memchr(host, ']', (size_t)(end - host));

        n = close ? (size_t)(close - host - 1) : 0;
        if (!close || n == 0 || n >= sizeof name || (close[1] != ':' && close + 1 != end))
            return false;
        memcpy(name, host + 1, n);
        name[n] = '\0';
        return inet_pton(AF_INET6, name, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
    }
    n = strcspn(host, ":/?#");
    if (n == 0 || n >= sizeof name)
        return false;
    memcpy(name, host, n);
    name[n] = '\0';
    if (strcasecmp(name, "localhost") == 0)
        return true;
    struct in_addr a4;

    return inet_pton(AF_INET, name, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

int glpi_hook_check(const struct glpi_hook *h, char *err, size_t errlen)
{
    size_t n = h->api_url ? strlen(h->api_url) : 0;
    const char *suffix = "/apirest.php";

    if (!id_ok(h->id))
        return bad(err, errlen, "hook id: expected 1 to %d of [A-Za-z0-9_-]", HOOK_ID_MAX);
    if (n == 0 || n > URL_MAX || !printable(h->api_url))
        return bad(err, errlen, "api_url: expected a URL of at most %d bytes", URL_MAX);
    if (strncmp(h->api_url, "https://", 8) != 0 &&
        !(h->allow_http && strncmp(h->api_url, "http://", 7) == 0))
        return sy_errf(err, errlen,
                       "api_url: expected https:// (http:// only where allowed explicitly, for "
                       "tests)"),
               -SY_EINVAL;
    if (strncmp(h->api_url, "http://", 7) == 0 && !loopback_url(h->api_url))
        return bad(err, errlen,
                   "api_url: http:// is allowed only to a loopback host (127.0.0.0/8, [::1], "
                   "localhost), for tests; anywhere else the tokens would cross the network in "
                   "clear");
    if (n < strlen(suffix) || strcmp(h->api_url + n - strlen(suffix), suffix) != 0)
        return sy_errf(err, errlen,
                       "api_url: expected GLPI's API endpoint, ending in /apirest.php (a "
                       "trailing slash makes GLPI answer 403)"),
               -SY_EINVAL;
    if (!h->user_token || !*h->user_token || strlen(h->user_token) > 512 ||
        !printable(h->user_token))
        return bad(err, errlen, "user_token: expected 1 to 512 printable characters");
    if (h->app_token && (!*h->app_token || strlen(h->app_token) > 512 || !printable(h->app_token)))
        return bad(err, errlen, "app_token: expected 1 to 512 printable characters");
    if (h->webhook_secret && (!*h->webhook_secret || strlen(h->webhook_secret) > 512))
        return bad(err, errlen, "webhook_secret: expected 1 to 512 bytes");
    if (h->ticket_type != 1 && h->ticket_type != 2)
        return bad(err, errlen, "ticket_type: expected 1 (incident) or 2 (request)");
    if (h->entity_id < 0 || h->category_id < 0 || h->default_user_id < 0)
        return bad(err, errlen, "entity_id, category_id, default_user_id: not negative");
    return 0;
}

static const char sql_save[] =
    "INSERT INTO glpi_hooks (hook_id, api_url, app_token, user_token, webhook_secret, entity_id,"
    "   ticket_type, category_id, default_user_id, sync_type, allow_http)"
    " VALUES ($1, $2, $3, $4, $5, $6::integer, $7::integer, NULLIF($8::integer, 0),"
    "   NULLIF($9::integer, 0), $10, $11::boolean)"
    " ON CONFLICT (hook_id) DO UPDATE SET api_url = EXCLUDED.api_url,"
    "   app_token = EXCLUDED.app_token, user_token = EXCLUDED.user_token,"
    "   webhook_secret = EXCLUDED.webhook_secret, entity_id = EXCLUDED.entity_id,"
    "   ticket_type = EXCLUDED.ticket_type, category_id = EXCLUDED.category_id,"
    "   default_user_id = EXCLUDED.default_user_id, sync_type = EXCLUDED.sync_type,"
    "   allow_http = EXCLUDED.allow_http, updated_at = now()";

int glpi_hook_save(struct sy_pg *pg, const struct glpi_hook *h, char *err, size_t errlen)
{
    char entity[16], type[16], cat[16], user[16];
    const char *p[11] = {h->id,
                         h->api_url,
                         h->app_token,
                         h->user_token,
                         h->webhook_secret,
                         entity,
                         type,
                         cat,
                         user,
                         h->contact_sync ? "contact" : "user",
                         h->allow_http ? "true" : "false"};
    int rc;

    snprintf(entity, sizeof entity, "%d", h->entity_id);
    snprintf(type, sizeof type, "%d", h->ticket_type);
    snprintf(cat, sizeof cat, "%d", h->category_id);
    snprintf(user, sizeof user, "%d", h->default_user_id);
    if ((rc = sy_pg_exec(pg, sql_save, 11, p, NULL)) != 0)
        sy_errf(err, errlen, "glpi_hooks: %s", sy_pg_error(pg));
    return rc;
}
