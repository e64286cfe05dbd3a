/* cmd_apikey.c - `syctl apikey create|list|revoke`: the API keys of sy-gateway's REST API in
 * PostgreSQL (table sy_api_keys, migration 0003).
 *
 * Keys are made by the gateway's own gw_apikey_new, so their format is the one the gateway
 * parses. Only the hash of a key's secret is stored: create prints the key once and nothing
 * can show it again; list never prints hashes. */
#include "syctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/auth.h"
#include "sy/crypto.h"
#include "sy/err.h"
#include "sy/pg.h"

#define NAME_MAX_BYTES 200   /* as the table's CHECK */
#define LIST_MAX       10000 /* rows one list prints */
#define CREATE_TRIES   3     /* fresh ids tried when one is taken */

static const char help[] = "Usage: syctl apikey create ROLE NAME [--json]\n"
                           "       syctl apikey list [--json]\n"
                           "       syctl apikey revoke ID\n"
                           "\n"
                           "The API keys of sy-gateway's REST API, kept in PostgreSQL as hashes.\n"
                           "Run 'syctl apikey SUBCOMMAND --help' for details.\n";

static const char help_create[] =
    "Usage: syctl apikey create ROLE NAME [--json]\n"
    "\n"
    "Makes an API key for ROLE (chatbot, agent, admin or readonly), named NAME (1 to 200\n"
    "bytes, no control characters; for people, not unique), and prints its id and the key.\n"
    "The key reads sy_<id>_<secret>: a 12-hex-digit id and 32 random bytes in base64url.\n"
    "Only the SHA-256 of the secret is stored: the key is shown now and never again.\n"
    "Clients send it as 'Authorization: Api-Key <key>' or 'X-API-Key: <key>'.\n"
    "Exit 3 for an unknown role or a bad name.\n"
    "\n"
    "Options:\n"
    "  --json           {\"id\", \"name\", \"role\", \"key\"}\n"
    "  -h, --help       this help\n";

static const char help_list[] =
    "Usage: syctl apikey list [--json]\n"
    "\n"
    "Every API key, oldest first: id, role, when it was created, when the gateway last\n"
    "accepted it (updated at most once per cache lifetime of the gateway, 30 s), when it was\n"
    "revoked, and its name. Times are RFC 3339 UTC, '-' for never. Hashes are never shown.\n"
    "\n"
    "Options:\n"
    "  --json           [{\"id\", \"name\", \"role\", \"created\", \"last_used\", \"revoked\"}],\n"
    "                   times null for never\n"
    "  -h, --help       this help\n";

static const char help_revoke[] =
    "Usage: syctl apikey revoke ID\n"
    "\n"
    "Revokes the key with id ID: the gateway refuses it once its cache of verified keys has\n"
    "forgotten it (within 30 s). Revoking a revoked key changes nothing and succeeds. Exit 4\n"
    "when there is no key with that id.\n"
    "\n"
    "Options:\n"
    "  -h, --help       this help\n";

enum { OPT_JSON };
static const struct syctl_optspec specs[] = {
    [OPT_JSON] = {"json", false},
    {NULL, false},
};

#define TIME_SQL(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* A failed query: exit 69 when PostgreSQL went away, else 1, with a hint when the table is
 * missing. */
static int pg_fail(struct sy_pg *pg, int rc, const char *what)
{
    const char *msg = sy_pg_error(pg);

    if (msg && strstr(msg, "sy_api_keys") && strstr(msg, "does not exist"))
        return syctl_fail(SYCTL_EXIT_FAIL, "%s: %s (run 'syctl migrate' first)", what, msg);
    return syctl_fail(rc == -SY_ECONN ? SYCTL_EXIT_UNAVAIL : SYCTL_EXIT_FAIL, "%s: %s", what,
                      msg ? msg : sy_strerror(rc));
}

static bool name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > NAME_MAX_BYTES)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return false;
    return true;
}

static int apikey_create(struct syctl *c, const struct syctl_args *a)
{
    char key[GW_APIKEY_LEN + 1], id[GW_APIKEY_ID_LEN + 1], hex[2 * SY_SHA256_LEN + 1];
    uint8_t hash[SY_SHA256_LEN];
    enum gw_role role;
    struct sy_pg *pg;
    int rc;

    if (a->npos != 3)
        return syctl_fail(SYCTL_EXIT_USAGE, "apikey create: expected ROLE NAME (see 'syctl "
                                            "apikey create --help')");
    role = gw_role_parse(a->pos[1]);
    if (!role)
        return syctl_fail(SYCTL_EXIT_INPUT,
                          "apikey create: unknown role '%.40s' (chatbot, agent, admin, readonly)",
                          a->pos[1]);
    if (!name_ok(a->pos[2]))
        return syctl_fail(SYCTL_EXIT_INPUT,
                          "apikey create: NAME must be 1 to %d bytes without control characters",
                          NAME_MAX_BYTES);
    if ((rc = syctl_load_conf(c, SYCTL_NEED_PG)) != 0 || (rc = syctl_pg(c, &pg)) != 0)
        return rc;
    for (int i = 0; i < CREATE_TRIES; i++) {
        struct sy_pg_res *res = NULL;
        const char *params[4];

        rc = gw_apikey_new(role, a->pos[2], key, sizeof key, id, sizeof id, hash);
        if (rc < 0)
            return syctl_fail(SYCTL_EXIT_FAIL, "apikey create: %s", sy_strerror(rc));
        sy_hex_encode(hash, sizeof hash, hex);
        params[0] = id;
        params[1] = a->pos[2];
        params[2] = gw_role_name(role);
        params[3] = hex;
        /* An id taken already (one chance in 2^48 per key) inserts nothing: try another. */
        rc = sy_pg_exec(pg,
                        "INSERT INTO sy_api_keys (id, name, role, key_hash)"
                        " VALUES ($1, $2, $3, decode($4, 'hex')) ON CONFLICT (id) DO NOTHING",
                        4, params, &res);
        if (rc < 0) {
            sy_pg_res_free(res);
            return pg_fail(pg, rc, "apikey create");
        }
        long long n = sy_pg_res_affected(res);
        sy_pg_res_free(res);
        if (n == 1)
            break;
        id[0] = '\0';
    }
    if (!id[0])
        return syctl_fail(SYCTL_EXIT_FAIL, "apikey create: no free id after %d tries",
                          CREATE_TRIES);
    if (a->set[OPT_JSON]) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "id", id, "name", a->pos[2], "role",
                              gw_role_name(role), "key", key);
        if (!j || json_dumpf(j, stdout, JSON_COMPACT) != 0) {
            json_decref(j);
            return syctl_fail(SYCTL_EXIT_FAIL, "apikey create: cannot write the output");
        }
        json_decref(j);
        putchar('\n');
    } else {
        printf("id:   %s\nrole: %s\nkey:  %s\n", id, gw_role_name(role), key);
        fprintf(stderr, "syctl: the key is shown only now: store it, it cannot be read back\n");
    }
    memset(key, 0, sizeof key);
    return SYCTL_OK;
}

static const char list_sql[] =
    "SELECT id, name, role, " TIME_SQL("created_at") ", " TIME_SQL("last_used_at") ", " TIME_SQL(
        "revoked_at") " FROM sy_api_keys ORDER BY created_at, id LIMIT 10000";

static json_t *opt_text(const char *s)
{
    return s ? json_string(s) : json_null();
}

static int apikey_list(struct syctl *c, const struct syctl_args *a)
{
    struct sy_pg_res *res = NULL;
    struct sy_pg *pg;
    json_t *arr = NULL;
    int rc, rows;

    if (a->npos != 1)
        return syctl_fail(SYCTL_EXIT_USAGE, "apikey list: too many arguments");
    if ((rc = syctl_load_conf(c, SYCTL_NEED_PG)) != 0 || (rc = syctl_pg(c, &pg)) != 0)
        return rc;
    rc = sy_pg_exec(pg, list_sql, 0, NULL, &res);
    if (rc < 0) {
        sy_pg_res_free(res);
        return pg_fail(pg, rc, "apikey list");
    }
    rows = sy_pg_res_rows(res);
    if (a->set[OPT_JSON]) {
        arr = json_array();
        for (int i = 0; arr && i < rows && i < LIST_MAX; i++) {
            json_t *o = json_object();
            if (!o || json_object_set_new(o, "id", opt_text(sy_pg_res_get(res, i, 0))) ||
                json_object_set_new(o, "name", opt_text(sy_pg_res_get(res, i, 1))) ||
                json_object_set_new(o, "role", opt_text(sy_pg_res_get(res, i, 2))) ||
                json_object_set_new(o, "created", opt_text(sy_pg_res_get(res, i, 3))) ||
                json_object_set_new(o, "last_used", opt_text(sy_pg_res_get(res, i, 4))) ||
                json_object_set_new(o, "revoked", opt_text(sy_pg_res_get(res, i, 5))) ||
                json_array_append_new(arr, o)) {
                json_decref(o);
                json_decref(arr);
                arr = NULL;
            }
        }
        sy_pg_res_free(res);
        return syctl_print_json(arr, "apikey list");
    }
    printf("%-12s  %-8s  %-20s  %-20s  %-20s  %s\n", "ID", "ROLE", "CREATED", "LAST USED",
           "REVOKED", "NAME");
    for (int i = 0; i < rows && i < LIST_MAX; i++) {
        const char *last = sy_pg_res_get(res, i, 4), *revoked = sy_pg_res_get(res, i, 5);
        printf("%-12s  %-8s  %-20s  %-20s  %-20s  %s\n", sy_pg_res_get(res, i, 0),
               sy_pg_res_get(res, i, 2), sy_pg_res_get(res, i, 3), last ? last : "-",
               revoked ? revoked : "-", sy_pg_res_get(res, i, 1));
    }
    sy_pg_res_free(res);
    return SYCTL_OK;
}

static int apikey_revoke(struct syctl *c, const struct syctl_args *a)
{
    struct sy_pg_res *res = NULL;
    const char *params[1];
    struct sy_pg *pg;
    int rc;

    if (a->npos != 2)
        return syctl_fail(SYCTL_EXIT_USAGE,
                          "apikey revoke: expected ID (see 'syctl apikey revoke --help')");
    params[0] = a->pos[1];
    if ((rc = syctl_load_conf(c, SYCTL_NEED_PG)) != 0 || (rc = syctl_pg(c, &pg)) != 0)
        return rc;
    /* Keeps the first revocation time when run twice. */
    rc = sy_pg_exec(pg,
                    "UPDATE sy_api_keys SET revoked_at = coalesce(revoked_at, now())"
                    " WHERE id = $1 RETURNING " TIME_SQL("revoked_at"),
                    1, params, &res);
    if (rc < 0) {
        sy_pg_res_free(res);
        return pg_fail(pg, rc, "apikey revoke");
    }
    if (sy_pg_res_rows(res) != 1) {
        sy_pg_res_free(res);
        return syctl_fail(SYCTL_EXIT_NOTFOUND, "apikey revoke: no API key with id '%.40s'",
                          a->pos[1]);
    }
    printf("revoked %s at %s\n", a->pos[1], sy_pg_res_get(res, 0, 0));
    sy_pg_res_free(res);
    return SYCTL_OK;
}

int syctl_cmd_apikey(struct syctl *c, int argc, char **argv)
{
    struct syctl_args a;
    char err[512];

    if (syctl_args_parse(argc - 1, argv + 1, specs, &a, err, sizeof(err)) < 0)
        return syctl_fail(SYCTL_EXIT_USAGE, "%s, in 'syctl apikey' (see its --help)", err);
    const char *sub = a.npos ? a.pos[0] : "";
    int (*run)(struct syctl *, const struct syctl_args *) = NULL;
    const char *text = help;
    if (strcmp(sub, "create") == 0) {
        run = apikey_create;
        text = help_create;
    } else if (strcmp(sub, "list") == 0) {
        run = apikey_list;
        text = help_list;
    } else if (strcmp(sub, "revoke") == 0) {
        run = apikey_revoke;
        text = help_revoke;
    }
    if (a.help) {
        syctl_help(text, SYCTL_NEED_PG);
        return SYCTL_OK;
    }
    if (!a.npos)
        return syctl_fail(SYCTL_EXIT_USAGE,
                          "expected create, list or revoke after 'syctl apikey' (see its --help)");
    if (!run)
        return syctl_fail(SYCTL_EXIT_USAGE,
                          "unknown subcommand '%s' of 'syctl apikey' (see its --help)", sub);
    if (run != apikey_list && a.set[OPT_JSON] && run != apikey_create)
        return syctl_fail(SYCTL_EXIT_USAGE, "apikey revoke: unknown option '--json'");
    return run(c, &a);
}
