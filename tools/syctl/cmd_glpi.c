/* cmd_glpi.c - `syctl glpi hook add|list|remove`: the GLPI settings of Chatwoot hooks, in
 * PostgreSQL (glpi_hooks, migration 0006), read by sy-glpi within 30 s of a change.
 *
 * Secrets (user_token, app_token, webhook secret) are never taken from the command line, where
 * any user of the machine could read them in the process list: they come from a file, an
 * environment variable or stdin. They are never printed back. */
#include "syctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "glpi/client.h"
#include "glpi/hooks.h"
#include "sy/err.h"
#include "sy/http.h"
#include "sy/pg.h"

#define SECRET_MAX 4096
#define LIST_MAX   10000

static const char help[] =
    "Usage: syctl glpi hook add HOOK --api-url URL --user-token SRC [options]\n"
    "       syctl glpi hook list [--json]\n"
    "       syctl glpi hook remove HOOK [--purge]\n"
    "\n"
    "The GLPI settings of Chatwoot hooks, which sy-glpi mirrors into GLPI.\n"
    "Run 'syctl glpi hook SUBCOMMAND --help' for details.\n";

static const char help_add[] =
    "Usage: syctl glpi hook add HOOK --api-url URL --user-token SRC [options]\n"
    "\n"
    "Adds the GLPI settings of Chatwoot hook HOOK (the id in its webhook URL,\n"
    "/webhooks/chatwoot/HOOK), or replaces them. Before storing, opens and closes a\n"
    "session at GLPI with them (--no-check skips that). sy-glpi uses the new settings\n"
    "within 30 s. Exit 3 for bad settings, 69 when GLPI cannot be reached, 1 when it\n"
    "refuses the tokens.\n"
    "\n"
    "A secret SRC is @FILE (its content, a trailing newline cut), env:NAME (an environment\n"
    "variable) or - (one line of stdin); never the secret itself.\n"
    "\n"
    "Options:\n"
    "  --api-url URL        GLPI's API endpoint, ending in /apirest.php; https:// only\n"
    "  --user-token SRC     the API token of the GLPI user the worker acts as (required)\n"
    "  --app-token SRC      the App-Token of GLPI's API client, when it has one\n"
    "  --webhook-secret SRC Chatwoot's webhook secret; without it sy-gateway refuses\n"
    "                       (401) the hook's deliveries, unless its webhooks file names it\n"
    "  --entity N           entities_id of what is created (default 0, the root entity)\n"
    "  --sync user|contact  Chatwoot contacts become GLPI Users (default; requesters of\n"
    "                       their tickets) or Contacts (GLPI cannot make those requesters:\n"
    "                       --default-user stands in, or the contact's email)\n"
    "  --ticket-type T      1 or incident (default), 2 or request\n"
    "  --category N         itilcategories_id of new tickets (default none)\n"
    "  --default-user N     the requester of tickets whose contact is not a GLPI User\n"
    "  --allow-http         accept an http:// URL to a loopback host (127.0.0.0/8, ::1,\n"
    "                       localhost): tests only\n"
    "  --no-check           store without opening a session at GLPI\n"
    "  -h, --help           this help\n";

static const char help_list[] =
    "Usage: syctl glpi hook list [--json]\n"
    "\n"
    "Every hook with GLPI settings: its URL, entity, sync type, ticket type, category,\n"
    "default user, whether tokens and secrets are set (never their values), and how many\n"
    "people, tickets and messages it has mirrored (messages waiting in brackets, then those\n"
    "whose followup GLPI refused, if any).\n"
    "\n"
    "Options:\n"
    "  --json           [{\"hook\", \"api_url\", \"entity_id\", \"sync_type\", \"ticket_type\",\n"
    "                   \"category_id\", \"default_user_id\", \"app_token\", \"webhook_secret\",\n"
    "                   \"allow_http\", \"people\", \"tickets\", \"followups\", \"waiting\",\n"
    "                   \"refused\"}]\n"
    "  -h, --help       this help\n";

static const char help_remove[] =
    "Usage: syctl glpi hook remove HOOK [--purge]\n"
    "\n"
    "Removes the GLPI settings of HOOK: sy-glpi stops mirroring its events within 30 s.\n"
    "A hook that has mirrored anything keeps its links unless --purge is given, because\n"
    "without them adding it again would make every ticket twice. Exit 4 when there is no\n"
    "such hook.\n"
    "\n"
    "Options:\n"
    "  --purge          also forget what was mirrored (the GLPI items stay in GLPI)\n"
    "  -h, --help       this help\n";

enum {
    OPT_JSON,
    OPT_API_URL,
    OPT_USER_TOKEN,
    OPT_APP_TOKEN,
    OPT_WEBHOOK_SECRET,
    OPT_ENTITY,
    OPT_SYNC,
    OPT_TICKET_TYPE,
    OPT_CATEGORY,
    OPT_DEFAULT_USER,
    OPT_ALLOW_HTTP,
    OPT_NO_CHECK,
    OPT_PURGE,
};
static const struct syctl_optspec specs[] = {
    [OPT_JSON] = {"json", false},
    [OPT_API_URL] = {"api-url", true},
    [OPT_USER_TOKEN] = {"user-token", true},
    [OPT_APP_TOKEN] = {"app-token", true},
    [OPT_WEBHOOK_SECRET] = {"webhook-secret", true},
    [OPT_ENTITY] = {"entity", true},
    [OPT_SYNC] = {"sync", true},
    [OPT_TICKET_TYPE] = {"ticket-type", true},
    [OPT_CATEGORY] = {"category", true},
    [OPT_DEFAULT_USER] = {"default-user", true},
    [OPT_ALLOW_HTTP] = {"allow-http", false},
    [OPT_NO_CHECK] = {"no-check", false},
    [OPT_PURGE] = {"purge", false},
    {NULL, false},
};

static int pg_fail(struct sy_pg *pg, int rc, const char *what)
{
    const char *msg = sy_pg_error(pg);

    if (msg && strstr(msg, "glpi_") && strstr(msg, "does not exist"))
        return syctl_fail(SYCTL_EXIT_FAIL, "%s: %s (run 'syctl migrate' first)", what, msg);
    return syctl_fail(rc == -SY_ECONN ? SYCTL_EXIT_UNAVAIL : SYCTL_EXIT_FAIL, "%s: %s", what,
                      msg ? msg : sy_strerror(rc));
}

/* A secret from @FILE, env:NAME or - (stdin), one trailing newline cut. */
static int read_secret(const char *opt, const char *src, char **out)
{
    char err[256];
    size_t len = 0;
    int rc;

    *out = NULL;
    if (strncmp(src, "env:", 4) == 0) {
        const char *v = getenv(src + 4);

        if (!v || !*v)
            return syctl_fail(SYCTL_EXIT_INPUT,
                              "glpi hook add: --%s: environment variable %.64s "
                              "is not set",
                              opt, src + 4);
        if (!(*out = strdup(v)))
            return syctl_fail(SYCTL_EXIT_FAIL, "out of memory");
        return 0;
    }
    if (src[0] != '@' && strcmp(src, "-") != 0)
        return syctl_fail(SYCTL_EXIT_USAGE,
                          "glpi hook add: --%s takes @FILE, env:NAME or -, never the secret "
                          "itself (the process list shows arguments)",
                          opt);
    if ((rc = syctl_read_input(src, SECRET_MAX, out, &len, err, sizeof err)) != 0)
        return syctl_fail(SYCTL_EXIT_INPUT, "glpi hook add: --%s: %s", opt, err);
    while (len > 0 && ((*out)[len - 1] == '\n' || (*out)[len - 1] == '\r'))
        (*out)[--len] = '\0';
    if (len == 0 || strlen(*out) != len) {
        free(*out);
        *out = NULL;
        return syctl_fail(SYCTL_EXIT_INPUT, "glpi hook add: --%s: empty, or holds a NUL byte", opt);
    }
    return 0;
}

static int int_opt(const struct syctl_args *a, int opt, const char *name, int *out)
{
    unsigned long long v;

    if (!a->set[opt])
        return 0;
    if (syctl_parse_uint(a->val[opt], 0, 2147483647ull, &v) != 0)
        return syctl_fail(SYCTL_EXIT_INPUT, "glpi hook add: --%s: expected a number from 0", name);
    *out = (int)v;
    return 0;
}

/* Opens and closes a session with the settings: the tokens, the URL and the API client. */
static int check_glpi(const struct glpi_hook *h)
{
    struct sy_http_opts o = {.insecure_http = h->allow_http, .timeout_ms = 30000};
    struct sy_http *http = sy_http_new(&o);
    struct glpi_session *s = glpi_session_new(h);
    struct glpi_res r = {.retry_after_s = -1};
    int rc = SYCTL_OK;

    if (!http || !s) {
        rc = syctl_fail(SYCTL_EXIT_FAIL, "out of memory");
    } else if (glpi_session_open(s, http, &r) != GLPI_OK) {
        rc = syctl_fail(r.status == 0 || r.status >= 500 ? SYCTL_EXIT_UNAVAIL : SYCTL_EXIT_FAIL,
                        "glpi hook add: initSession at %s: %ld %s %s (--no-check stores the "
                        "settings anyway)",
                        h->api_url, r.status, r.code, r.msg);
    }
    glpi_res_clear(&r);
    glpi_session_free(s, http);
    sy_http_destroy(http);
    return rc;
}

static int hook_add(struct syctl *c, const struct syctl_args *a)
{
    struct glpi_hook h = {.ticket_type = 1};
    char err[512];
    struct sy_pg *pg;
    int rc;

    if (a->npos != 3)
        return syctl_fail(SYCTL_EXIT_USAGE, "glpi hook add: expected HOOK (see 'syctl glpi hook "
                                            "add --help')");
    if (!a->set[OPT_API_URL] || !a->set[OPT_USER_TOKEN])
        return syctl_fail(SYCTL_EXIT_USAGE, "glpi hook add: --api-url and --user-token are "
                                            "required");
    if (a->set[OPT_JSON] || a->set[OPT_PURGE])
        return syctl_fail(SYCTL_EXIT_USAGE, "glpi hook add: unknown option '--%s'",
                          a->set[OPT_JSON] ? "json" : "purge");
    h.allow_http = a->set[OPT_ALLOW_HTTP];
    if (a->set[OPT_SYNC]) {
        if (strcmp(a->val[OPT_SYNC], "contact") == 0)
            h.contact_sync = true;
        else if (strcmp(a->val[OPT_SYNC], "user") != 0)
            return syctl_fail(SYCTL_EXIT_INPUT, "glpi hook add: --sync: expected user or contact");
    }
    if (a->set[OPT_TICKET_TYPE]) {
        const char *t = a->val[OPT_TICKET_TYPE];

        if (strcmp(t, "1") == 0 || strcmp(t, "incident") == 0)
            h.ticket_type = 1;
        else if (strcmp(t, "2") == 0 || strcmp(t, "request") == 0)
            h.ticket_type = 2;
        else
            return syctl_fail(SYCTL_EXIT_INPUT,
                              "glpi hook add: --ticket-type: expected 1, incident, 2 or request");
    }
    if ((rc = int_opt(a, OPT_ENTITY, "entity", &h.entity_id)) != 0 ||
        (rc = int_opt(a, OPT_CATEGORY, "category", &h.category_id)) != 0 ||
        (rc = int_opt(a, OPT_DEFAULT_USER, "default-user", &h.default_user_id)) != 0)
        return rc;
    if (!(h.id = strdup(a->pos[2])) || !(h.api_url = strdup(a->val[OPT_API_URL]))) {
        glpi_hook_clear(&h);
        return syctl_fail(SYCTL_EXIT_FAIL, "out of memory");
    }
    if ((rc = read_secret("user-token", a->val[OPT_USER_TOKEN], &h.user_token)) != 0 ||
        (a->set[OPT_APP_TOKEN] &&
         (rc = read_secret("app-token", a->val[OPT_APP_TOKEN], &h.app_token)) != 0) ||
        (a->set[OPT_WEBHOOK_SECRET] &&
         (rc = read_secret("webhook-secret", a->val[OPT_WEBHOOK_SECRET], &h.webhook_secret)) != 0))
        goto out;
    if (glpi_hook_check(&h, err, sizeof err) != 0) {
        rc = syctl_fail(SYCTL_EXIT_INPUT, "glpi hook add: %s", err);
        goto out;
    }
    if (!a->set[OPT_NO_CHECK] && (rc = check_glpi(&h)) != 0)
        goto out;
    if ((rc = syctl_load_conf(c, SYCTL_NEED_PG)) != 0 || (rc = syctl_pg(c, &pg)) != 0)
        goto out;
    if ((rc = glpi_hook_save(pg, &h, err, sizeof err)) != 0) {
        rc = pg_fail(pg, rc, "glpi hook add");
        goto out;
    }
    printf("hook %s: mirrored into %s (entity %d, %s)\n", h.id, h.api_url, h.entity_id,
           h.contact_sync ? "contacts as GLPI Contacts" : "contacts as GLPI Users");
    if (!h.webhook_secret)
        fprintf(stderr,
                "glpi hook add: warning: hook %s has no webhook secret, so sy-gateway will not "
                "take Chatwoot's deliveries for it (401) unless its webhooks file configures "
                "the hook; add it again with --webhook-secret SRC (Chatwoot 4.11.2 and later "
                "sign deliveries)\n",
                h.id);
    rc = SYCTL_OK;
out:
    glpi_hook_clear(&h);
    return rc;
}

static const char sql_list[] =
    "SELECT h.hook_id, h.api_url, h.entity_id::text, h.sync_type, h.ticket_type::text,"
    " COALESCE(h.category_id::text, ''), COALESCE(h.default_user_id::text, ''),"
    " h.app_token IS NOT NULL, h.webhook_secret IS NOT NULL, h.allow_http,"
    " (SELECT count(*) FROM glpi_people p WHERE p.hook_id = h.hook_id AND p.glpi_id IS NOT NULL),"
    " (SELECT count(*) FROM glpi_tickets t WHERE t.hook_id = h.hook_id"
    "   AND t.ticket_id IS NOT NULL),"
    " (SELECT count(*) FROM glpi_messages m WHERE m.hook_id = h.hook_id"
    "   AND m.followup_id IS NOT NULL),"
    " (SELECT count(*) FROM glpi_messages m WHERE m.hook_id = h.hook_id"
    "   AND m.followup_id IS NULL AND m.refused_at IS NULL),"
    " (SELECT count(*) FROM glpi_messages m WHERE m.hook_id = h.hook_id"
    "   AND m.followup_id IS NULL AND m.refused_at IS NOT NULL)"
    " FROM glpi_hooks h ORDER BY h.hook_id";

static json_t *num_or_null(const char *s)
{
    return s && *s ? json_integer(atoll(s)) : json_null();
}

static int hook_list(struct syctl *c, const struct syctl_args *a)
{
    struct sy_pg_res *res = NULL;
    struct sy_pg *pg;
    int rc, rows;

    if (a->npos != 2)
        return syctl_fail(SYCTL_EXIT_USAGE, "glpi hook list: too many arguments");
    if ((rc = syctl_load_conf(c, SYCTL_NEED_PG)) != 0 || (rc = syctl_pg(c, &pg)) != 0)
        return rc;
    if ((rc = sy_pg_exec(pg, sql_list, 0, NULL, &res)) != 0) {
        sy_pg_res_free(res);
        return pg_fail(pg, rc, "glpi hook list");
    }
    rows = sy_pg_res_rows(res);
    if (a->set[OPT_JSON]) {
        json_t *arr = json_array();

        for (int i = 0; arr && i < rows && i < LIST_MAX; i++) {
#define G(col) sy_pg_res_get(res, i, col)
            json_t *o = json_pack(
                "{s:s, s:s, s:o, s:s, s:o, s:o, s:o, s:b, s:b, s:b, s:o, s:o, s:o, s:o, s:o}",
                "hook", G(0), "api_url", G(1), "entity_id", num_or_null(G(2)), "sync_type", G(3),
                "ticket_type", num_or_null(G(4)), "category_id", num_or_null(G(5)),
                "default_user_id", num_or_null(G(6)), "app_token", strcmp(G(7), "t") == 0,
                "webhook_secret", strcmp(G(8), "t") == 0, "allow_http", strcmp(G(9), "t") == 0,
                "people", num_or_null(G(10)), "tickets", num_or_null(G(11)), "followups",
                num_or_null(G(12)), "waiting", num_or_null(G(13)), "refused", num_or_null(G(14)));
#undef G
            if (!o || json_array_append_new(arr, o) != 0) {
                json_decref(arr);
                arr = NULL;
            }
        }
        sy_pg_res_free(res);
        return syctl_print_json(arr, "glpi hook list");
    }
    printf("%-16s  %-7s  %-6s  %-4s  %-8s  %-7s  %-7s  %-17s  %s\n", "HOOK", "SYNC", "ENTITY",
           "TYPE", "CATEGORY", "DEFUSER", "SECRETS", "PEOPLE/TICKETS/FU", "API URL");
    for (int i = 0; i < rows && i < LIST_MAX; i++) {
        char counts[64], secrets[16];

        snprintf(counts, sizeof counts, "%s/%s/%s [%s]%s%s%s", sy_pg_res_get(res, i, 10),
                 sy_pg_res_get(res, i, 11), sy_pg_res_get(res, i, 12), sy_pg_res_get(res, i, 13),
                 strcmp(sy_pg_res_get(res, i, 14), "0") != 0 ? " " : "",
                 strcmp(sy_pg_res_get(res, i, 14), "0") != 0 ? sy_pg_res_get(res, i, 14) : "",
                 strcmp(sy_pg_res_get(res, i, 14), "0") != 0 ? " refused" : "");
        snprintf(secrets, sizeof secrets, "%s%s",
                 strcmp(sy_pg_res_get(res, i, 7), "t") == 0 ? "app," : "",
                 strcmp(sy_pg_res_get(res, i, 8), "t") == 0 ? "hook" : "");
        printf("%-16s  %-7s  %-6s  %-4s  %-8s  %-7s  %-7s  %-17s  %s\n", sy_pg_res_get(res, i, 0),
               sy_pg_res_get(res, i, 3), sy_pg_res_get(res, i, 2), sy_pg_res_get(res, i, 4),
               *sy_pg_res_get(res, i, 5) ? sy_pg_res_get(res, i, 5) : "-",
               *sy_pg_res_get(res, i, 6) ? sy_pg_res_get(res, i, 6) : "-", *secrets ? secrets : "-",
               counts, sy_pg_res_get(res, i, 1));
    }
    sy_pg_res_free(res);
    return SYCTL_OK;
}

static const char sql_remove[] =
    "WITH n AS (SELECT (SELECT count(*) FROM glpi_people WHERE hook_id = $1)"
    "   + (SELECT count(*) FROM glpi_tickets WHERE hook_id = $1) AS links)"
    " DELETE FROM glpi_hooks h USING n WHERE h.hook_id = $1 AND (n.links = 0 OR $2::boolean)"
    " RETURNING n.links";

static int hook_remove(struct syctl *c, const struct syctl_args *a)
{
    struct sy_pg_res *res = NULL;
    const char *params[2];
    struct sy_pg *pg;
    int rc;

    if (a->npos != 3)
        return syctl_fail(SYCTL_EXIT_USAGE, "glpi hook remove: expected HOOK");
    params[0] = a->pos[2];
    params[1] = a->set[OPT_PURGE] ? "true" : "false";
    if ((rc = syctl_load_conf(c, SYCTL_NEED_PG)) != 0 || (rc = syctl_pg(c, &pg)) != 0)
        return rc;
    if ((rc = sy_pg_exec(pg, sql_remove, 2, params, &res)) != 0) {
        sy_pg_res_free(res);
        return pg_fail(pg, rc, "glpi hook remove");
    }
    if (sy_pg_res_rows(res) == 1) {
        printf("hook %s: removed with %s link(s)\n", params[0], sy_pg_res_get(res, 0, 0));
        sy_pg_res_free(res);
        return SYCTL_OK;
    }
    sy_pg_res_free(res);
    rc = sy_pg_exec(pg, "SELECT 1 FROM glpi_hooks WHERE hook_id = $1", 1, params, &res);
    if (rc == 0 && sy_pg_res_rows(res) == 1) {
        sy_pg_res_free(res);
        return syctl_fail(SYCTL_EXIT_FAIL,
                          "glpi hook remove: hook %.64s has mirrored people or tickets; --purge "
                          "forgets them too (adding it again would then create them twice)",
                          params[0]);
    }
    sy_pg_res_free(res);
    return syctl_fail(SYCTL_EXIT_NOTFOUND, "glpi hook remove: no hook '%.64s'", params[0]);
}

int syctl_cmd_glpi(struct syctl *c, int argc, char **argv)
{
    int (*run)(struct syctl *, const struct syctl_args *) = NULL;
    const char *text = help, *sub;
    struct syctl_args a;
    char err[512];

    if (syctl_args_parse(argc - 1, argv + 1, specs, &a, err, sizeof(err)) < 0)
        return syctl_fail(SYCTL_EXIT_USAGE, "%s, in 'syctl glpi' (see its --help)", err);
    sub = a.npos >= 2 && strcmp(a.pos[0], "hook") == 0 ? a.pos[1] : "";
    if (strcmp(sub, "add") == 0) {
        run = hook_add;
        text = help_add;
    } else if (strcmp(sub, "list") == 0) {
        run = hook_list;
        text = help_list;
    } else if (strcmp(sub, "remove") == 0) {
        run = hook_remove;
        text = help_remove;
    }
    if (a.help) {
        syctl_help(text, SYCTL_NEED_PG);
        return SYCTL_OK;
    }
    if (!run)
        return syctl_fail(SYCTL_EXIT_USAGE,
                          "expected hook add, hook list or hook remove after 'syctl glpi' (see "
                          "its --help)");
    if (run != hook_add) {
        for (int i = OPT_API_URL; i <= OPT_NO_CHECK; i++)
            if (a.set[i])
                return syctl_fail(SYCTL_EXIT_USAGE, "glpi hook %s: unknown option '--%s'", sub,
                                  specs[i].name);
        if (run == hook_remove && a.set[OPT_JSON])
            return syctl_fail(SYCTL_EXIT_USAGE, "glpi hook remove: unknown option '--json'");
        if (run == hook_list && a.set[OPT_PURGE])
            return syctl_fail(SYCTL_EXIT_USAGE, "glpi hook list: unknown option '--purge'");
    }
    return run(c, &a);
}
