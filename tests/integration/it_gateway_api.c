/* it_gateway_api.c - sy-gateway's grievance REST API (workers/gateway/api.h) end to end: a real
 * sy-gateway process over HTTP (libcurl), the real broker and the real PostgreSQL. Each write,
 * by a caller of an allowed role, is answered 202 with its message id and becomes exactly one
 * message of its type carrying what was sent and who sent it; each read answers the rows seeded
 * here, 404 for an id nobody made and 400 naming the field for an id that cannot be one; every
 * route refuses missing, malformed, unknown, revoked and forged credentials with 401 and a role
 * it does not serve with 403; bad bodies get 400 naming the field and publish nothing; an
 * Idempotency-Key makes a retry the same message; with the broker away a write gets 503 with
 * Retry-After, and against a database without the grievance tables a read gets 503 saying to
 * migrate. What the gateway publishes is read back from sy.api_probe, which nothing consumes.
 *
 * The fleet's own topology may be declared on the same broker, and it routes grievance.# to
 * sy.grievance: so that no test write reaches the real worker's queue, this test and its
 * gateways use a topology of their own on an exchange of their own. Keys, rows and the scratch
 * database are named after the run and removed at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gateway/api.h"
#include "gateway/auth.h"
#include "cm_http.h"
#include "cm_worker.h"
#include "harness.h"
#include "http.h"
#include "jwt.h"
#include "sy/amqp.h"
#include "sy/crypto.h"
#include "sy/err.h"
#include "sy/json.h"
#include "sy/pg.h"
#include "sy/topology.h"

#define PROBE_WORKER "api_probe"
#define PROBE_QUEUE  "sy.api_probe"
#define START_MAX_MS 20000
#define MAX_MSGS     256
#define TOPOLOGY                                                                                   \
    "# it_gateway_api: what sy-gateway publishes lands in sy.api_probe, read back unconsumed;\n"   \
    "# a private exchange keeps it away from the fleet's sy.grievance. The defaults are those\n"   \
    "# of tests/data/topology.yaml, like every test queue's.\n"                                    \
    "exchange: sy.apitest\n"                                                                       \
    "defaults:\n"                                                                                  \
    "  delivery_limit: 5\n"                                                                        \
    "  retry: {max_attempts: 4, delays: [1s, 2s, 4s], jitter: 0.2}\n"                              \
    "workers:\n"                                                                                   \
    "  api_probe:\n"                                                                               \
    "    routes: [grievance.#]\n"

static const char JWT_SECRET[] = "it_gateway_api: an HS256 secret of more than 32 bytes";

/* Three bytes "abc" and eight of 0x00..0x07, in padded standard base64. */
#define B64_ABC   "YWJj"
#define B64_BYTES "AAECAwQFBgc="

struct gateway {
    struct th_proc proc;
    bool running;
    int port, health_port;
    char env[10][1300];
};

struct key {
    char key[GW_APIKEY_LEN + 1];
    char id[GW_APIKEY_ID_LEN + 1];
    char header[GW_APIKEY_LEN + 32]; /* "X-API-Key: <key>" */
    char actor[GW_APIKEY_ID_LEN + 8];
};

struct fixture {
    struct sy_amqp *amqp;
    struct sy_topology *topo;
    struct sy_pg *pg;
    char run[17];
    char bin[1024], src[1024], dir[1024];
    char hooks[1200], topology[1200], schemas[1200];
    /* Keys in the fleet's database, one per role, one revoked before it was ever used, one
     * that was never stored; and one in the scratch database. */
    struct key chatbot, agent, admin, readonly, revoked, unknown, bare_admin;
    char db[64];      /* the scratch database: sy_api_keys only */
    char db_url[512]; /* SY_PG_URL with the scratch database */
    /* Rows seeded for the reads. */
    char phone[20], g_old[64], g_new[64], g_none[64], f_one[64], f_two[64];
    struct gateway gw;   /* the healthy one, for the whole group */
    struct gateway down; /* one whose broker is a closed port */
    struct gateway bare; /* one whose database lacks the grievance tables */
    struct th_got msgs[MAX_MSGS];
    size_t nmsgs;
};

/* --- HTTP --------------------------------------------------------------------------------- */

/* One request to 127.0.0.1:port; h1 and h2 are headers ("Name: value") or NULL; body NULL
 * sends none. */
static struct th_reply request(int port, const char *method, const char *path, const char *h1,
                               const char *h2, const char *body)
{
    const char *headers[3] = {NULL};
    size_t n = 0;
    if (h1)
        headers[n++] = h1;
    if (h2)
        headers[n++] = h2;
    return th_http(port, method, path, headers, body);
}

static const char *str_at(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* The request, answered with an error as th_expect_error checks it. */
static void expect_refusal(int port, const char *method, const char *path, const char *h1,
                           const char *h2, const char *body, long status, const char *code,
                           const char *field)
{
    struct th_reply r = request(port, method, path, h1, h2, body);
    if (r.status != status)
        fail_msg("%s %s: expected %ld, got %ld: %s", method, path, status, r.status, r.body);
    th_expect_error(&r, status, code, field);
    th_reply_free(&r);
}

/* A 202 for a write: "status" is "accepted", `what` (the resource's id) is `value` when value
 * is not NULL; returns the message id and, in *res_out when not NULL, the resource's id
 * (both to free). */
static char *expect_accepted(const struct th_reply *r, const char *what, const char *value,
                             char **res_out)
{
    if (r->status != 202)
        fail_msg("expected 202, got %ld: %s", r->status, r->body);
    json_t *v = th_reply_json(r);
    if (!str_at(v, "status") || strcmp(str_at(v, "status"), "accepted") != 0)
        fail_msg("status is not \"accepted\" in %s", r->body);
    const char *id = str_at(v, "id");
    const char *res = str_at(v, what);
    if (!id || !*id)
        fail_msg("no message id in %s", r->body);
    if (!res || (value && strcmp(res, value) != 0))
        fail_msg("expected %s \"%s\" in %s", what, value ? value : "(any)", r->body);
    char *out = strdup(id);
    if (res_out)
        *res_out = strdup(res);
    json_decref(v);
    return out;
}

static bool is_uuid(const char *s)
{
    if (!s || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

/* --- gateways ----------------------------------------------------------------------------- */

static void start_gateway(struct fixture *f, struct gateway *g, const char *amqp_url,
                          const char *pg_url)
{
    g->port = th_free_port();
    g->health_port = th_free_port();
    snprintf(g->env[0], sizeof g->env[0], "SY_GATEWAY_ADDR=127.0.0.1:%d", g->port);
    snprintf(g->env[1], sizeof g->env[1], "SY_HTTP_ADDR=127.0.0.1:%d", g->health_port);
    snprintf(g->env[2], sizeof g->env[2], "SY_GATEWAY_WEBHOOKS=%s", f->hooks);
    snprintf(g->env[3], sizeof g->env[3], "SY_GATEWAY_PUBLISH_TIMEOUT=3s");
    snprintf(g->env[4], sizeof g->env[4], "SY_AMQP_URL=%s", amqp_url);
    snprintf(g->env[5], sizeof g->env[5], "SY_PG_URL=%s", pg_url);
    /* The fleet's own message schemas: what the gateway publishes must pass them. */
    snprintf(g->env[6], sizeof g->env[6], "SY_SCHEMA_DIR=%s", f->schemas);
    snprintf(g->env[7], sizeof g->env[7], "SY_GATEWAY_JWT_SECRET=%s", JWT_SECRET);
    const char *env[] = {g->env[0], g->env[1], g->env[2], g->env[3],           g->env[4],
                         g->env[5], g->env[6], g->env[7], "SY_LOG_LEVEL=info", NULL};
    assert_int_equal(th_proc_spawn(&g->proc, f->bin, env), 0);
    g->running = true;
}

static void wait_answer(struct gateway *g, const char *path, long want)
{
    th_wait_answer(&g->proc, &g->running, "sy-gateway", g->health_port, path, want, START_MAX_MS);
}

static int stop_gateway(struct gateway *g)
{
    return th_stop(&g->proc, &g->running);
}

/* --- what was published ------------------------------------------------------------------- */

/* Moves everything now in sy.api_probe into f->msgs. A 202 came after the broker's confirm, so
 * what a request published is in the queue by the time its answer arrived. */
static void drain(struct fixture *f)
{
    th_drain(f->amqp, PROBE_QUEUE, f->msgs, MAX_MSGS, &f->nmsgs);
}

/* Everything published so far. */
static size_t published_total(struct fixture *f)
{
    drain(f);
    return f->nmsgs;
}

/* How many messages with this id were published; *env_out (borrowed) is the last of them. */
static int published(struct fixture *f, const char *id, json_t **env_out)
{
    drain(f);
    return th_got_count(f->msgs, f->nmsgs, id, env_out);
}

/* The one message published with this id, of this type: its data (borrowed). */
static json_t *one_message(struct fixture *f, const char *id, const char *type)
{
    json_t *env = NULL;
    int n = published(f, id, &env);
    if (n != 1)
        fail_msg("%d messages with id %s, expected 1", n, id);
    if (!str_at(env, "type") || strcmp(str_at(env, "type"), type) != 0)
        fail_msg("message %s is a %s, expected %s", id, str_at(env, "type"), type);
    return json_object_get(env, "data");
}

/* data must be exactly `sent` (a JSON text) plus the fields of `added` (a JSON text). */
static void expect_data(json_t *data, const char *sent, const char *added)
{
    json_t *want = json_loads(sent, 0, NULL);
    json_t *more = json_loads(added, 0, NULL);
    assert_non_null(want);
    assert_non_null(more);
    assert_int_equal(json_object_update(want, more), 0);
    if (!json_equal(data, want)) {
        char *a = json_dumps(data, JSON_SORT_KEYS), *b = json_dumps(want, JSON_SORT_KEYS);
        fail_msg("published data %s, expected %s", a, b);
    }
    json_decref(want);
    json_decref(more);
}

/* The message id of a write that carried Idempotency-Key `key`: "idem:" and the hex SHA-256 of
 * type, actor and key with a NUL between each. */
static void idem_id(const char *type, const char *actor, const char *key, char out[70])
{
    char buf[512];
    uint8_t h[SY_SHA256_LEN];
    int n = snprintf(buf, sizeof buf, "%s%c%s%c%s", type, '\0', actor, '\0', key);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    sy_sha256(buf, (size_t)n, h);
    memcpy(out, "idem:", 5);
    sy_hex_encode(h, sizeof h, out + 5);
}

/* --- credentials -------------------------------------------------------------------------- */

/* A fresh key of role; stored in pg (named after the run) unless pg is NULL. */
static void make_key(struct fixture *f, struct sy_pg *pg, enum gw_role role, const char *what,
                     struct key *k)
{
    uint8_t hash[SY_SHA256_LEN];
    char hex[2 * SY_SHA256_LEN + 1], name[64];
    assert_int_equal(gw_apikey_new(role, "it", k->key, sizeof k->key, k->id, sizeof k->id, hash),
                     0);
    snprintf(k->header, sizeof k->header, "X-API-Key: %s", k->key);
    snprintf(k->actor, sizeof k->actor, "apikey:%s", k->id);
    if (!pg)
        return;
    sy_hex_encode(hash, sizeof hash, hex);
    snprintf(name, sizeof name, "it-api-%s-%s", f->run, what);
    const char *params[] = {k->id, name, gw_role_name(role), hex};
    int rc = sy_pg_exec(pg,
                        "INSERT INTO sy_api_keys (id, name, role, key_hash)"
                        " VALUES ($1, $2, $3, decode($4, 'hex'))",
                        4, params, NULL);
    if (rc != 0)
        fail_msg("storing a key: %s (%s)", sy_strerror(rc), sy_pg_error(pg));
}

/* "Authorization: Bearer <token>" for role and sub (NULL: no sub), expiring in exp_in_s. */
static void bearer(char *out, size_t outsz, const char *role, const char *sub, long exp_in_s,
                   const char *key)
{
    char claims[256], tok[1024];
    long long exp = (long long)time(NULL) + exp_in_s;
    if (sub)
        snprintf(claims, sizeof claims, "{\"sub\":\"%s\",\"role\":\"%s\",\"exp\":%lld}", sub, role,
                 exp);
    else
        snprintf(claims, sizeof claims, "{\"role\":\"%s\",\"exp\":%lld}", role, exp);
    assert_int_equal(th_make_jwt(tok, sizeof tok, claims, key, strlen(key)), 0);
    snprintf(out, outsz, "Authorization: Bearer %s", tok);
}

/* --- PostgreSQL --------------------------------------------------------------------------- */

static void sql(struct sy_pg *pg, const char *text, int n, const char *const *params)
{
    int rc = sy_pg_exec(pg, text, n, params, NULL);
    if (rc != 0)
        fail_msg("%s: %s (%s)", text, sy_strerror(rc), sy_pg_error(pg));
}

/* The users, grievances, attachments and history the reads answer: g_old (resolved, two
 * attachments, three statuses) and g_new, both the user's; g_none is nobody's. */
static void seed(struct fixture *f)
{
    const char *user[] = {f->phone, "Asha Devi"};
    sql(f->pg, "INSERT INTO users (phone_number, name) VALUES ($1, $2)", 2, user);
    const char *old[] = {f->g_old, f->phone};
    sql(f->pg,
        "INSERT INTO grievances (grievance_id, phone_number, project_type, description, location,"
        " status, custom, created_at, updated_at) VALUES ($1, $2, 'water', 'The pump at the"
        " school is broken', 'Ward 7', 'resolved', '{\"ward\": 7}', now() - interval '2 hours',"
        " now() - interval '10 minutes')",
        2, old);
    const char *young[] = {f->g_new, f->phone};
    sql(f->pg,
        "INSERT INTO grievances (grievance_id, phone_number, project_type, description,"
        " created_at) VALUES ($1, $2, 'roads', 'A pothole on the main road',"
        " now() - interval '1 hour')",
        2, young);
    const char *one[] = {f->f_one, f->g_old};
    sql(f->pg,
        "INSERT INTO file_attachments (file_id, grievance_id, file_type, file_name, size, sha256)"
        " VALUES ($1, $2, 'image/jpeg', 'pump.jpg', 2048, repeat('ab', 32))",
        2, one);
    const char *two[] = {f->f_two, f->g_old};
    sql(f->pg,
        "INSERT INTO file_attachments (file_id, grievance_id, file_type, size, sha256)"
        " VALUES ($1, $2, 'application/pdf', 0, repeat('0f', 32))",
        2, two);
    const char *hist[] = {f->g_old};
    sql(f->pg,
        "INSERT INTO status_history (grievance_id, status, notes, created_by, at) VALUES"
        " ($1, 'submitted', NULL, 'apikey:000000000001', now() - interval '2 hours'),"
        " ($1, 'resolved', 'pump replaced', 'grm', now() - interval '10 minutes'),"
        " ($1, 'under_evaluation', 'an engineer will visit', 'jwt:agent-7',"
        " now() - interval '1 hour')",
        1, hist);
}

static void unseed(struct fixture *f)
{
    const char *g[] = {f->g_old, f->g_new};
    const char *u[] = {f->phone};
    sy_pg_exec(f->pg, "DELETE FROM status_history WHERE grievance_id IN ($1, $2)", 2, g, NULL);
    sy_pg_exec(f->pg, "DELETE FROM file_attachments WHERE grievance_id IN ($1, $2)", 2, g, NULL);
    sy_pg_exec(f->pg, "DELETE FROM grievances WHERE grievance_id IN ($1, $2)", 2, g, NULL);
    sy_pg_exec(f->pg, "DELETE FROM users WHERE phone_number = $1", 1, u, NULL);
}

/* SY_PG_URL with its database replaced by db. */
static void url_with_db(const char *url, const char *db, char *out, size_t outsz)
{
    const char *host = strstr(url, "://");
    const char *slash = host ? strchr(host + 3, '/') : NULL;
    const char *query = strchr(url, '?');
    if (!slash)
        fail_msg("SY_PG_URL has no database: %s", url);
    snprintf(out, outsz, "%.*s/%s%s", (int)(slash - url), url, db, query ? query : "");
}

/* A database of its own with only the API keys' table (migration 0003), and a key in it. */
static void make_bare_db(struct fixture *f)
{
    char text[8192], path[1200], err[512];
    snprintf(f->db, sizeof f->db, "sy_it_api_%s", f->run);
    snprintf(text, sizeof text, "CREATE DATABASE %s", f->db);
    sql(f->pg, text, 0, NULL);
    url_with_db(th_need_env("SY_PG_URL"), f->db, f->db_url, sizeof f->db_url);

    snprintf(path, sizeof path, "%s/schemas/sql/postgres/0003_api_keys.sql", f->src);
    FILE *fp = fopen(path, "r");
    if (!fp)
        fail_msg("%s: %s", path, strerror(errno));
    size_t n = fread(text, 1, sizeof text - 1, fp);
    text[n] = '\0';
    fclose(fp);
    struct sy_pg *bare = sy_pg_connect(f->db_url, err, sizeof err);
    if (!bare)
        fail_msg("cannot connect to %s: %s", f->db, err);
    sql(bare, text, 0, NULL);
    make_key(f, bare, GW_ROLE_ADMIN, "bare", &f->bare_admin);
    sy_pg_destroy(bare);
}

/* --- fixture ------------------------------------------------------------------------------ */

static int group_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char err[512], dir[1200];
    assert_non_null(f);
    th_need_env("SY_AMQP_URL");
    const char *pg_url = th_need_env("SY_PG_URL");
    const char *build = th_need_env("SY_BUILD_DIR");
    snprintf(f->src, sizeof f->src, "%s", th_need_env("SY_SOURCE_DIR"));
    th_run_id(f->run);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    snprintf(f->bin, sizeof f->bin, "%s/workers/gateway/sy-gateway", build);
    if (access(f->bin, X_OK) != 0)
        fail_msg("sy-gateway is not built: %s: %s", f->bin, strerror(errno));
    snprintf(f->schemas, sizeof f->schemas, "%s/schemas/messages", f->src);
    snprintf(f->dir, sizeof f->dir, "%s/Testing", build);
    if (mkdir(f->dir, 0755) != 0 && errno != EEXIST)
        fail_msg("mkdir %s: %s", f->dir, strerror(errno));
    snprintf(f->dir, sizeof f->dir, "%s/Testing/gwapi-%s", build, f->run);
    if (mkdir(f->dir, 0755) != 0)
        fail_msg("mkdir %s: %s", f->dir, strerror(errno));

    /* The gateways spawned below inherit it. */
    snprintf(f->topology, sizeof f->topology, "%s/topology.yaml", f->dir);
    assert_int_equal(th_write_file(f->topology, TOPOLOGY), 0);
    assert_int_equal(setenv("SY_TOPOLOGY", f->topology, 1), 0);
    f->amqp = th_amqp(&f->topo);
    th_purge_worker(f->amqp, f->topo, PROBE_WORKER);
    snprintf(f->hooks, sizeof f->hooks, "%s/webhooks.yaml", f->dir);
    static const char hooks[] = "# it_gateway_api: no webhooks, only the REST API\n"
                                "chatwoot: {}\n";
    assert_int_equal(th_write_file(f->hooks, hooks), 0);

    f->pg = sy_pg_connect(pg_url, err, sizeof err);
    if (!f->pg)
        fail_msg("cannot connect to PostgreSQL: %s", err);
    snprintf(dir, sizeof dir, "%s/schemas/sql/postgres", f->src);
    if (sy_pg_migrate(f->pg, dir, NULL, NULL, err, sizeof err) != 0)
        fail_msg("migrate: %s", err);

    make_key(f, f->pg, GW_ROLE_CHATBOT, "chatbot", &f->chatbot);
    make_key(f, f->pg, GW_ROLE_AGENT, "agent", &f->agent);
    make_key(f, f->pg, GW_ROLE_ADMIN, "admin", &f->admin);
    make_key(f, f->pg, GW_ROLE_READONLY, "readonly", &f->readonly);
    /* Revoked before any gateway saw it, so no cache holds it. */
    make_key(f, f->pg, GW_ROLE_ADMIN, "revoked", &f->revoked);
    const char *rid[] = {f->revoked.id};
    sql(f->pg, "UPDATE sy_api_keys SET revoked_at = now() WHERE id = $1", 1, rid);
    make_key(f, NULL, GW_ROLE_ADMIN, "unknown", &f->unknown);

    /* A phone number of the run: "+44" and ten digits. */
    snprintf(f->phone, sizeof f->phone, "+447%09llu",
             strtoull(f->run + 4, NULL, 16) % 1000000000ULL);
    snprintf(f->g_old, sizeof f->g_old, "it-%s-old", f->run);
    snprintf(f->g_new, sizeof f->g_new, "it-%s-new", f->run);
    snprintf(f->g_none, sizeof f->g_none, "it-%s-none", f->run);
    snprintf(f->f_one, sizeof f->f_one, "it-%s-f1", f->run);
    snprintf(f->f_two, sizeof f->f_two, "it-%s-f2", f->run);
    seed(f);

    start_gateway(f, &f->gw, th_need_env("SY_AMQP_URL"), pg_url);
    wait_answer(&f->gw, "/readyz", 200);
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    struct fixture *f = *state;
    char text[256], like[64];
    stop_gateway(&f->gw);
    stop_gateway(&f->down);
    stop_gateway(&f->bare);
    for (size_t i = 0; i < f->nmsgs; i++) {
        free(f->msgs[i].id);
        json_decref(f->msgs[i].env);
    }
    unseed(f);
    snprintf(like, sizeof like, "it-api-%s-%%", f->run);
    const char *params[] = {like};
    sy_pg_exec(f->pg, "DELETE FROM sy_api_keys WHERE name LIKE $1", 1, params, NULL);
    if (f->db[0]) {
        snprintf(text, sizeof text, "DROP DATABASE IF EXISTS %s WITH (FORCE)", f->db);
        sy_pg_exec(f->pg, text, 0, NULL, NULL);
    }
    sy_pg_destroy(f->pg);
    /* Its queues go with it (the exchange stays, bound to nothing). */
    const struct sy_topo_worker *w = sy_topology_worker(f->topo, PROBE_WORKER);
    char q[300];
    if (w && sy_topo_queue_name(w, q, sizeof q) == 0)
        sy_amqp_queue_delete(f->amqp, q);
    if (w && sy_topo_dead_name(w, q, sizeof q) == 0)
        sy_amqp_queue_delete(f->amqp, q);
    for (size_t i = 0; w && i < w->ndelays && sy_topo_retry_name(w, i, q, sizeof q) == 0; i++)
        sy_amqp_queue_delete(f->amqp, q);
    unlink(f->topology);
    unlink(f->hooks);
    rmdir(f->dir);
    sy_amqp_destroy(f->amqp);
    sy_topology_destroy(f->topo);
    curl_global_cleanup();
    free(f);
    return 0;
}

/* --- writes ------------------------------------------------------------------------------- */

static void submit_body(char *out, size_t outsz, const char *gid, const char *phone,
                        const char *files)
{
    snprintf(out, outsz,
             "{\"grievance_id\":\"%s\",\"user_info\":{\"phone_number\":\"%s\",\"name\":\"Ravi\"},"
             "\"project_type\":\"water\",\"description\":\"No water since Monday\","
             "\"location\":\"Ward 3\",\"custom\":{\"ward\":3,\"urgent\":true}%s%s}",
             gid, phone, files ? ",\"files\":" : "", files ? files : "");
}

static void submit_is_published_with_its_files(void **state)
{
    struct fixture *f = *state;
    char gid[64], body[2048], actor[64];
    snprintf(gid, sizeof gid, "it-%s-sub", f->run);
    submit_body(body, sizeof body, gid, "+27821234567",
                "[{\"file_id\":\"it-sub-a\",\"file_type\":\"image/png\",\"file_name\":\"a.png\","
                "\"file_data\":\"" B64_BYTES "\"},{\"file_id\":\"it-sub-b\",\"file_type\":"
                "\"text/plain\",\"file_data\":\"" B64_ABC "\"}]");

    struct th_reply r =
        request(f->gw.port, "POST", "/api/grievances/", f->chatbot.header, NULL, body);
    char *id = expect_accepted(&r, "grievance_id", gid, NULL);
    th_reply_free(&r);
    /* Without an Idempotency-Key, a fresh id. */
    assert_true(is_uuid(id));
    json_t *data = one_message(f, id, "grievance.submitted");
    snprintf(actor, sizeof actor, "{\"actor\":\"%s\"}", f->chatbot.actor);
    expect_data(data, body, actor);
    free(id);

    /* The same body again is another message under another id. */
    r = request(f->gw.port, "POST", "/api/grievances/", f->chatbot.header, NULL, body);
    char *again = expect_accepted(&r, "grievance_id", gid, NULL);
    th_reply_free(&r);
    assert_true(is_uuid(again));
    assert_int_equal(published(f, again, NULL), 1);
    free(again);
}

static void submit_by_token_names_its_subject(void **state)
{
    struct fixture *f = *state;
    char gid[64], body[1024], auth[1200], sub[64], actor[96];
    snprintf(gid, sizeof gid, "it-%s-jwt", f->run);
    snprintf(sub, sizeof sub, "bot-%s", f->run);
    submit_body(body, sizeof body, gid, "+27821234568", NULL);
    bearer(auth, sizeof auth, "chatbot", sub, 300, JWT_SECRET);

    struct th_reply r = request(f->gw.port, "POST", "/api/grievances/", auth, NULL, body);
    char *id = expect_accepted(&r, "grievance_id", gid, NULL);
    th_reply_free(&r);
    snprintf(actor, sizeof actor, "{\"actor\":\"jwt:%s\"}", sub);
    expect_data(one_message(f, id, "grievance.submitted"), body, actor);
    free(id);

    /* A token without sub: the actor is "jwt" alone. */
    bearer(auth, sizeof auth, "agent", NULL, 300, JWT_SECRET);
    r = request(f->gw.port, "POST", "/api/grievances/", auth, NULL, body);
    id = expect_accepted(&r, "grievance_id", gid, NULL);
    th_reply_free(&r);
    expect_data(one_message(f, id, "grievance.submitted"), body, "{\"actor\":\"jwt\"}");
    free(id);
}

static void update_is_published_with_the_paths_id(void **state)
{
    struct fixture *f = *state;
    char path[128], added[256];
    const char *body = "{\"description\":\"Still no water\",\"location\":null,"
                       "\"custom\":{\"urgent\":null}}";
    snprintf(path, sizeof path, "/api/grievances/%s/", f->g_old);

    struct th_reply r = request(f->gw.port, "PUT", path, f->agent.header, NULL, body);
    char *id = expect_accepted(&r, "grievance_id", f->g_old, NULL);
    th_reply_free(&r);
    snprintf(added, sizeof added, "{\"grievance_id\":\"%s\",\"actor\":\"%s\"}", f->g_old,
             f->agent.actor);
    expect_data(one_message(f, id, "grievance.updated"), body, added);
    free(id);

    /* The body may repeat the path's id. */
    char same[256];
    snprintf(same, sizeof same, "{\"grievance_id\":\"%s\",\"project_type\":\"sanitation\"}",
             f->g_old);
    r = request(f->gw.port, "PUT", path, f->chatbot.header, NULL, same);
    id = expect_accepted(&r, "grievance_id", f->g_old, NULL);
    th_reply_free(&r);
    snprintf(added, sizeof added, "{\"actor\":\"%s\"}", f->chatbot.actor);
    expect_data(one_message(f, id, "grievance.updated"), same, added);
    free(id);
}

static void status_update_is_published(void **state)
{
    struct fixture *f = *state;
    char path[128], added[256];
    const char *body = "{\"status\":\"under_evaluation\",\"notes\":\"assigned to the engineer\"}";
    snprintf(path, sizeof path, "/api/grievances/%s/status/", f->g_new);

    struct th_reply r = request(f->gw.port, "PUT", path, f->admin.header, NULL, body);
    char *id = expect_accepted(&r, "grievance_id", f->g_new, NULL);
    th_reply_free(&r);
    snprintf(added, sizeof added, "{\"grievance_id\":\"%s\",\"actor\":\"%s\"}", f->g_new,
             f->admin.actor);
    expect_data(one_message(f, id, "grievance.status_update"), body, added);
    free(id);

    /* An agent may too, with the key in Authorization. */
    char auth[GW_APIKEY_LEN + 32];
    snprintf(auth, sizeof auth, "Authorization: Api-Key %s", f->agent.key);
    r = request(f->gw.port, "PUT", path, auth, NULL, "{\"status\":\"denied\"}");
    id = expect_accepted(&r, "grievance_id", f->g_new, NULL);
    th_reply_free(&r);
    snprintf(added, sizeof added, "{\"grievance_id\":\"%s\",\"actor\":\"%s\"}", f->g_new,
             f->agent.actor);
    expect_data(one_message(f, id, "grievance.status_update"), "{\"status\":\"denied\"}", added);
    free(id);
}

static void user_create_and_update_are_published(void **state)
{
    struct fixture *f = *state;
    char auth[1200], sub[64], added[256];
    const char *body = "{\"phone_number\":\"+27821230001\",\"name\":\"Thandi\"}";
    snprintf(sub, sizeof sub, "agent-%s", f->run);
    bearer(auth, sizeof auth, "agent", sub, 300, JWT_SECRET);

    struct th_reply r = request(f->gw.port, "POST", "/api/users/", auth, NULL, body);
    char *id = expect_accepted(&r, "phone_number", "+27821230001", NULL);
    th_reply_free(&r);
    snprintf(added, sizeof added, "{\"actor\":\"jwt:%s\"}", sub);
    expect_data(one_message(f, id, "grievance.user_upsert"), body, added);
    free(id);

    /* "%2B" stands for the '+' of the path's phone number. */
    r = request(f->gw.port, "PUT", "/api/users/%2B27821230001/", f->chatbot.header, NULL,
                "{\"name\":\"Thandi M.\"}");
    id = expect_accepted(&r, "phone_number", "+27821230001", NULL);
    th_reply_free(&r);
    snprintf(added, sizeof added, "{\"phone_number\":\"+27821230001\",\"actor\":\"%s\"}",
             f->chatbot.actor);
    expect_data(one_message(f, id, "grievance.user_upsert"), "{\"name\":\"Thandi M.\"}", added);
    free(id);
}

static void file_is_published_with_its_id_or_a_fresh_one(void **state)
{
    struct fixture *f = *state;
    char body[512], added[256], fid[64];
    snprintf(fid, sizeof fid, "it-%s-file", f->run);
    snprintf(body, sizeof body,
             "{\"file_id\":\"%s\",\"grievance_id\":\"%s\",\"file_type\":\"image/jpeg\","
             "\"file_name\":\"crack.jpg\",\"file_data\":\"" B64_BYTES "\"}",
             fid, f->g_old);

    struct th_reply r = request(f->gw.port, "POST", "/api/files/", f->agent.header, NULL, body);
    char *id = expect_accepted(&r, "file_id", fid, NULL);
    th_reply_free(&r);
    snprintf(added, sizeof added, "{\"actor\":\"%s\"}", f->agent.actor);
    expect_data(one_message(f, id, "grievance.file_attached"), body, added);
    free(id);

    /* Without file_id the gateway makes a UUID, answered and published. */
    snprintf(body, sizeof body,
             "{\"grievance_id\":\"%s\",\"file_type\":\"text/plain\",\"file_data\":\"" B64_ABC "\"}",
             f->g_old);
    r = request(f->gw.port, "POST", "/api/files/", f->chatbot.header, NULL, body);
    char *made = NULL;
    id = expect_accepted(&r, "file_id", NULL, &made);
    th_reply_free(&r);
    if (!is_uuid(made))
        fail_msg("file_id %s is not a UUID", made);
    snprintf(added, sizeof added, "{\"file_id\":\"%s\",\"actor\":\"%s\"}", made, f->chatbot.actor);
    expect_data(one_message(f, id, "grievance.file_attached"), body, added);
    free(made);
    free(id);
}

/* A client cannot speak for someone else: an "actor" of its own is refused, or replaced. */
static void a_clients_actor_is_never_published(void **state)
{
    struct fixture *f = *state;
    const char *body = "{\"phone_number\":\"+27821230002\",\"name\":\"Sipho\",\"actor\":\"grm\"}";
    size_t before = published_total(f);
    struct th_reply r = request(f->gw.port, "POST", "/api/users/", f->chatbot.header, NULL, body);
    if (r.status == 400) {
        th_expect_error(&r, 400, "invalid", "actor");
        assert_int_equal(published_total(f), before);
    } else {
        char *id = expect_accepted(&r, "phone_number", "+27821230002", NULL);
        json_t *data = one_message(f, id, "grievance.user_upsert");
        assert_string_equal(str_at(data, "actor"), f->chatbot.actor);
        free(id);
    }
    th_reply_free(&r);
}

/* --- reads -------------------------------------------------------------------------------- */

/* GET path with the readonly key: 200 and its JSON (to free). */
static json_t *get_ok(struct fixture *f, const char *path)
{
    struct th_reply r = request(f->gw.port, "GET", path, f->readonly.header, NULL, NULL);
    if (r.status != 200)
        fail_msg("GET %s: expected 200, got %ld: %s", path, r.status, r.body);
    json_t *v = th_reply_json(&r);
    th_reply_free(&r);
    return v;
}

static void grievance_is_read_with_its_user_and_files(void **state)
{
    struct fixture *f = *state;
    char path[128];
    snprintf(path, sizeof path, "/api/grievances/%s/", f->g_old);
    json_t *v = get_ok(f, path);

    assert_string_equal(str_at(v, "grievance_id"), f->g_old);
    assert_string_equal(str_at(v, "status"), "resolved");
    assert_string_equal(str_at(v, "project_type"), "water");
    assert_string_equal(str_at(v, "description"), "The pump at the school is broken");
    assert_string_equal(str_at(v, "location"), "Ward 7");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "custom"), "ward")), 7);
    json_t *user = json_object_get(v, "user_info");
    assert_string_equal(str_at(user, "phone_number"), f->phone);
    assert_string_equal(str_at(user, "name"), "Asha Devi");

    json_t *files = json_object_get(v, "files");
    assert_true(json_is_array(files));
    assert_int_equal(json_array_size(files), 2);
    bool seen_one = false, seen_two = false;
    size_t i;
    json_t *file;
    json_array_foreach(files, i, file)
    {
        /* Metadata only: the bytes are in the file store. */
        assert_null(json_object_get(file, "file_data"));
        const char *fid = str_at(file, "file_id");
        assert_non_null(fid);
        if (strcmp(fid, f->f_one) == 0) {
            seen_one = true;
            assert_string_equal(str_at(file, "file_type"), "image/jpeg");
            assert_string_equal(str_at(file, "file_name"), "pump.jpg");
            assert_int_equal(json_integer_value(json_object_get(file, "size")), 2048);
        } else if (strcmp(fid, f->f_two) == 0) {
            seen_two = true;
            assert_string_equal(str_at(file, "file_type"), "application/pdf");
            assert_null(str_at(file, "file_name"));
            assert_int_equal(json_integer_value(json_object_get(file, "size")), 0);
        }
    }
    assert_true(seen_one && seen_two);
    json_decref(v);

    /* Its sibling has no attachments, and the defaults of a fresh row. */
    snprintf(path, sizeof path, "/api/grievances/%s/", f->g_new);
    v = get_ok(f, path);
    assert_string_equal(str_at(v, "status"), "submitted");
    assert_int_equal(json_array_size(json_object_get(v, "files")), 0);
    assert_null(str_at(v, "location"));
    json_decref(v);
}

static void status_is_read_with_its_history_newest_first(void **state)
{
    struct fixture *f = *state;
    char path[128];
    snprintf(path, sizeof path, "/api/grievances/%s/status/", f->g_old);
    json_t *v = get_ok(f, path);

    assert_string_equal(str_at(v, "grievance_id"), f->g_old);
    assert_string_equal(str_at(v, "status"), "resolved");
    json_t *h = json_object_get(v, "history");
    assert_true(json_is_array(h));
    assert_int_equal(json_array_size(h), 3);
    const char *order[] = {"resolved", "under_evaluation", "submitted"};
    const char *by[] = {"grm", "jwt:agent-7", "apikey:000000000001"};
    for (size_t i = 0; i < 3; i++) {
        json_t *row = json_array_get(h, i);
        assert_string_equal(str_at(row, "status"), order[i]);
        assert_string_equal(str_at(row, "created_by"), by[i]);
    }
    assert_string_equal(str_at(json_array_get(h, 0), "notes"), "pump replaced");
    assert_null(str_at(json_array_get(h, 2), "notes"));
    json_decref(v);

    /* A grievance with no history yet: its status, and an empty list. */
    snprintf(path, sizeof path, "/api/grievances/%s/status/", f->g_new);
    v = get_ok(f, path);
    assert_string_equal(str_at(v, "status"), "submitted");
    assert_int_equal(json_array_size(json_object_get(v, "history")), 0);
    json_decref(v);
}

static void user_is_read_with_their_grievances(void **state)
{
    struct fixture *f = *state;
    char path[128];
    /* Both spellings of the '+'. */
    snprintf(path, sizeof path, "/api/users/%%2B%s/", f->phone + 1);
    json_t *v = get_ok(f, path);

    assert_string_equal(str_at(v, "phone_number"), f->phone);
    assert_string_equal(str_at(v, "name"), "Asha Devi");
    json_t *g = json_object_get(v, "grievance_ids");
    assert_true(json_is_array(g));
    assert_int_equal(json_array_size(g), 2);
    /* Ids, the latest first. */
    assert_string_equal(json_string_value(json_array_get(g, 0)), f->g_new);
    assert_string_equal(json_string_value(json_array_get(g, 1)), f->g_old);
    json_decref(v);

    snprintf(path, sizeof path, "/api/users/%s/", f->phone);
    v = get_ok(f, path);
    assert_string_equal(str_at(v, "phone_number"), f->phone);
    json_decref(v);
}

static void file_is_read_as_metadata(void **state)
{
    struct fixture *f = *state;
    char path[128];
    snprintf(path, sizeof path, "/api/files/%s/", f->f_one);
    json_t *v = get_ok(f, path);

    assert_string_equal(str_at(v, "file_id"), f->f_one);
    assert_string_equal(str_at(v, "grievance_id"), f->g_old);
    assert_string_equal(str_at(v, "file_type"), "image/jpeg");
    assert_string_equal(str_at(v, "file_name"), "pump.jpg");
    assert_int_equal(json_integer_value(json_object_get(v, "size")), 2048);
    assert_string_equal(str_at(v, "sha256"),
                        "abababababababababababababababababababababababababababababababab");
    assert_null(json_object_get(v, "file_data"));
    json_decref(v);
}

static void unknown_ids_are_404(void **state)
{
    struct fixture *f = *state;
    char path[128], fid[64];
    const char *h = f->readonly.header;
    snprintf(path, sizeof path, "/api/grievances/%s/", f->g_none);
    expect_refusal(f->gw.port, "GET", path, h, NULL, NULL, 404, "not_found", NULL);
    snprintf(path, sizeof path, "/api/grievances/%s/status/", f->g_none);
    expect_refusal(f->gw.port, "GET", path, h, NULL, NULL, 404, "not_found", NULL);
    /* A valid number nobody registered (this run's seeded one, one digit longer). */
    snprintf(path, sizeof path, "/api/users/%s9/", f->phone);
    expect_refusal(f->gw.port, "GET", path, h, NULL, NULL, 404, "not_found", NULL);
    snprintf(fid, sizeof fid, "it-%s-nofile", f->run);
    snprintf(path, sizeof path, "/api/files/%s/", fid);
    expect_refusal(f->gw.port, "GET", path, h, NULL, NULL, 404, "not_found", NULL);
}

static void malformed_ids_in_paths_are_400_naming_the_field(void **state)
{
    struct fixture *f = *state;
    char long_id[GW_API_ID_MAX + 2], path[256];
    const char *h = f->admin.header;
    size_t before = published_total(f);
    memset(long_id, 'a', GW_API_ID_MAX + 1);
    long_id[GW_API_ID_MAX + 1] = '\0';

    expect_refusal(f->gw.port, "GET", "/api/grievances/bad!id/", h, NULL, NULL, 400, "invalid",
                   "grievance_id");
    expect_refusal(f->gw.port, "GET", "/api/grievances/bad!id/status/", h, NULL, NULL, 400,
                   "invalid", "grievance_id");
    snprintf(path, sizeof path, "/api/grievances/%s/", long_id);
    expect_refusal(f->gw.port, "GET", path, h, NULL, NULL, 400, "invalid", "grievance_id");
    expect_refusal(f->gw.port, "GET", "/api/files/bad%20id/", h, NULL, NULL, 400, "invalid",
                   "file_id");
    /* Not E.164: no '+', a leading 0, too short, too long, a letter. */
    const char *phones[] = {"27821234567", "%2B0821234567", "%2B123456", "%2B1234567890123456",
                            "%2B2782123456x"};
    for (size_t i = 0; i < sizeof phones / sizeof phones[0]; i++) {
        snprintf(path, sizeof path, "/api/users/%s/", phones[i]);
        expect_refusal(f->gw.port, "GET", path, h, NULL, NULL, 400, "invalid", "phone_number");
        expect_refusal(f->gw.port, "PUT", path, h, NULL, "{\"name\":\"X\"}", 400, "invalid",
                       "phone_number");
    }
    /* Writes too. */
    expect_refusal(f->gw.port, "PUT", "/api/grievances/bad!id/", h, NULL, "{\"description\":\"x\"}",
                   400, "invalid", "grievance_id");
    expect_refusal(f->gw.port, "PUT", "/api/grievances/bad!id/status/", h, NULL,
                   "{\"status\":\"resolved\"}", 400, "invalid", "grievance_id");
    assert_int_equal(published_total(f), before);
}

/* --- authentication ----------------------------------------------------------------------- */

struct route {
    const char *method;
    char path[160];
    const char *body;
    bool write;
    bool staff_only; /* refused to chatbots */
};

/* The ten routes, each with a body a permitted caller gets 202 for. */
struct routes {
    struct route rt[10];
    char submit[1024], user[256], file[512];
};

static void routes_make(struct fixture *f, struct routes *r)
{
    size_t n = 0;
    submit_body(r->submit, sizeof r->submit, f->g_none, "+27821234569", NULL);
    snprintf(r->user, sizeof r->user, "{\"phone_number\":\"+27821234569\",\"name\":\"N\"}");
    snprintf(r->file, sizeof r->file,
             "{\"grievance_id\":\"%s\",\"file_type\":\"text/plain\","
             "\"file_data\":\"" B64_ABC "\"}",
             f->g_old);
    r->rt[n++] = (struct route){"POST", "/api/grievances/", r->submit, true, false};
    r->rt[n] = (struct route){"GET", "", NULL, false, false};
    snprintf(r->rt[n++].path, sizeof r->rt[0].path, "/api/grievances/%s/", f->g_old);
    r->rt[n] = (struct route){"PUT", "", "{\"description\":\"x\"}", true, false};
    snprintf(r->rt[n++].path, sizeof r->rt[0].path, "/api/grievances/%s/", f->g_old);
    r->rt[n] = (struct route){"GET", "", NULL, false, false};
    snprintf(r->rt[n++].path, sizeof r->rt[0].path, "/api/grievances/%s/status/", f->g_old);
    r->rt[n] = (struct route){"PUT", "", "{\"status\":\"resolved\"}", true, true};
    snprintf(r->rt[n++].path, sizeof r->rt[0].path, "/api/grievances/%s/status/", f->g_old);
    r->rt[n++] = (struct route){"POST", "/api/users/", r->user, true, false};
    r->rt[n] = (struct route){"GET", "", NULL, false, false};
    snprintf(r->rt[n++].path, sizeof r->rt[0].path, "/api/users/%s/", f->phone);
    r->rt[n] = (struct route){"PUT", "", "{\"name\":\"N\"}", true, false};
    snprintf(r->rt[n++].path, sizeof r->rt[0].path, "/api/users/%s/", f->phone);
    r->rt[n++] = (struct route){"POST", "/api/files/", r->file, true, false};
    r->rt[n] = (struct route){"GET", "", NULL, false, false};
    snprintf(r->rt[n++].path, sizeof r->rt[0].path, "/api/files/%s/", f->f_one);
    assert_int_equal(n, sizeof r->rt / sizeof r->rt[0]);
}

static void every_route_refuses_bad_credentials_with_401(void **state)
{
    struct fixture *f = *state;
    struct routes all;
    char expired[1200], forged[1200], no_role[1200], revoked_auth[128];
    routes_make(f, &all);
    const struct route *rt = all.rt;
    size_t n = sizeof all.rt / sizeof all.rt[0];
    bearer(expired, sizeof expired, "admin", "late", -3600, JWT_SECRET);
    bearer(forged, sizeof forged, "admin", "forger", 300, "not the gateway's secret at all....");
    bearer(no_role, sizeof no_role, "root", "who", 300, JWT_SECRET);
    snprintf(revoked_auth, sizeof revoked_auth, "Authorization: Api-Key %s", f->revoked.key);
    const char *creds[] = {
        NULL,                                /* none */
        "X-API-Key: sy_nothex_short",        /* malformed */
        "Authorization: Api-Key not-a-key",  /* malformed */
        "Authorization: Basic dXNlcjpwYXNz", /* a scheme the API does not take */
        f->unknown.header,                   /* well formed, never stored */
        f->revoked.header,                   /* revoked */
        revoked_auth,                        /* revoked, in Authorization */
        expired,                             /* a token an hour past its exp */
        forged,                              /* signed with another secret */
        no_role,                             /* a role that is none of the four */
    };
    size_t before = published_total(f);
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < sizeof creds / sizeof creds[0]; c++) {
            struct th_reply r =
                request(f->gw.port, rt[i].method, rt[i].path, creds[c], NULL, rt[i].body);
            if (r.status != 401)
                fail_msg("%s %s with credentials #%zu: expected 401, got %ld: %s", rt[i].method,
                         rt[i].path, c, r.status, r.body);
            th_expect_error(&r, 401, "unauthenticated", NULL);
            th_reply_free(&r);
        }
    assert_int_equal(published_total(f), before);
}

static void roles_a_route_does_not_serve_get_403(void **state)
{
    struct fixture *f = *state;
    struct routes all;
    routes_make(f, &all);
    const struct route *rt = all.rt;
    size_t n = sizeof all.rt / sizeof all.rt[0];
    size_t before = published_total(f);
    for (size_t i = 0; i < n; i++) {
        /* readonly reads everything and writes nothing. */
        struct th_reply r =
            request(f->gw.port, rt[i].method, rt[i].path, f->readonly.header, NULL, rt[i].body);
        long want = rt[i].write ? 403 : 200;
        if (r.status != want)
            fail_msg("%s %s as readonly: expected %ld, got %ld: %s", rt[i].method, rt[i].path, want,
                     r.status, r.body);
        if (want == 403)
            th_expect_error(&r, 403, "forbidden", NULL);
        th_reply_free(&r);
        /* A chatbot sets no status. */
        if (rt[i].staff_only) {
            r = request(f->gw.port, rt[i].method, rt[i].path, f->chatbot.header, NULL, rt[i].body);
            th_expect_error(&r, 403, "forbidden", NULL);
            th_reply_free(&r);
            char auth[1200];
            bearer(auth, sizeof auth, "chatbot", "bot", 300, JWT_SECRET);
            r = request(f->gw.port, rt[i].method, rt[i].path, auth, NULL, rt[i].body);
            th_expect_error(&r, 403, "forbidden", NULL);
            th_reply_free(&r);
        }
    }
    assert_int_equal(published_total(f), before);
    /* The same bodies from an admin are accepted: the refusals were the role's. */
    for (size_t i = 0; i < n; i++) {
        if (!rt[i].write)
            continue;
        struct th_reply r =
            request(f->gw.port, rt[i].method, rt[i].path, f->admin.header, NULL, rt[i].body);
        if (r.status != 202)
            fail_msg("%s %s as admin: expected 202, got %ld: %s", rt[i].method, rt[i].path,
                     r.status, r.body);
        th_reply_free(&r);
    }
    assert_int_equal(published_total(f), before + 6);
}

/* --- bad input ---------------------------------------------------------------------------- */

struct bad {
    const char *method;
    const char *path;
    const char *body;
    const char *field; /* NULL: not checked */
};

static void bad_bodies_are_400_naming_the_field_and_publish_nothing(void **state)
{
    struct fixture *f = *state;
    char g_path[128], s_path[128], u_path[128], long_desc[16100], files11[2048], big[17000];
    char two_files[1024], mismatch[256];
    snprintf(g_path, sizeof g_path, "/api/grievances/%s/", f->g_old);
    snprintf(s_path, sizeof s_path, "/api/grievances/%s/status/", f->g_old);
    snprintf(u_path, sizeof u_path, "/api/users/%s/", f->phone);

    memset(long_desc, 'x', 16001);
    long_desc[16001] = '\0';
    snprintf(big, sizeof big,
             "{\"grievance_id\":\"g1\",\"user_info\":{\"phone_number\":\"+27821234567\","
             "\"name\":\"R\"},\"project_type\":\"water\",\"description\":\"%s\"}",
             long_desc);
    size_t n = (size_t)snprintf(files11, sizeof files11, "[");
    for (int i = 0; i <= GW_API_FILES_MAX; i++)
        n += (size_t)snprintf(files11 + n, sizeof files11 - n,
                              "%s{\"file_id\":\"f%d\",\"file_type\":\"text/plain\","
                              "\"file_data\":\"" B64_ABC "\"}",
                              i ? "," : "", i);
    snprintf(files11 + n, sizeof files11 - n, "]");
    char too_many[4096];
    submit_body(too_many, sizeof too_many, "g1", "+27821234567", files11);
    submit_body(two_files, sizeof two_files, "g1", "+27821234567",
                "[{\"file_id\":\"f0\",\"file_type\":\"text/plain\",\"file_data\":\"" B64_ABC
                "\"},{\"file_id\":\"f1\",\"file_type\":\"text/plain\",\"file_data\":\"@@@@\"}]");
    snprintf(mismatch, sizeof mismatch, "{\"grievance_id\":\"%s-other\",\"description\":\"x\"}",
             f->g_old);

    const struct bad bad[] = {
        {"POST", "/api/grievances/", "{\"grievance_id\":", NULL},
        {"POST", "/api/grievances/", "", NULL},
        {"POST", "/api/grievances/", "[1,2]", NULL},
        {"POST", "/api/grievances/", "\"a string\"", NULL},
        {"POST", "/api/grievances/",
         "{\"grievance_id\":\"g1\",\"user_info\":{\"name\":\"R\"},\"project_type\":\"water\","
         "\"description\":\"d\"}",
         "user_info.phone_number"},
        {"POST", "/api/grievances/",
         "{\"user_info\":{\"phone_number\":\"+27821234567\",\"name\":\"R\"},"
         "\"project_type\":\"water\",\"description\":\"d\"}",
         "grievance_id"},
        {"POST", "/api/grievances/",
         "{\"grievance_id\":\"g1\",\"user_info\":{\"phone_number\":\"+27821234567\","
         "\"name\":\"R\"},\"project_type\":5,\"description\":\"d\"}",
         "project_type"},
        {"POST", "/api/grievances/",
         "{\"grievance_id\":\"g1\",\"user_info\":\"+27821234567\",\"project_type\":\"w\","
         "\"description\":\"d\"}",
         "user_info"},
        {"POST", "/api/grievances/",
         "{\"grievance_id\":\"g/1\",\"user_info\":{\"phone_number\":\"+27821234567\","
         "\"name\":\"R\"},\"project_type\":\"w\",\"description\":\"d\"}",
         "grievance_id"},
        {"POST", "/api/grievances/",
         "{\"grievance_id\":\"g1\",\"user_info\":{\"phone_number\":\"0821234567\","
         "\"name\":\"R\"},\"project_type\":\"w\",\"description\":\"d\"}",
         "user_info.phone_number"},
        {"POST", "/api/grievances/", big, "description"},
        {"POST", "/api/grievances/", too_many, "files"},
        {"POST", "/api/grievances/", two_files, "files[1].file_data"},
        {"POST", "/api/grievances/",
         "{\"grievance_id\":\"g1\",\"user_info\":{\"phone_number\":\"+27821234567\","
         "\"name\":\"R\"},\"project_type\":\"w\",\"descripton\":\"typo\",\"description\":\"d\"}",
         "descripton"},
        {"POST", "/api/grievances/",
         "{\"grievance_id\":\"g1\",\"user_info\":{\"phone_number\":\"+27821234567\","
         "\"name\":\"R\",\"nickname\":\"Ri\"},\"project_type\":\"w\",\"description\":\"d\"}",
         "user_info.nickname"},
        {"PUT", g_path, mismatch, "grievance_id"},
        {"PUT", g_path, "{\"description\":7}", "description"},
        {"PUT", g_path, "{\"status\":\"resolved\"}", "status"},
        {"PUT", s_path, "{\"status\":\"closed\"}", "status"},
        {"PUT", s_path, "{\"notes\":\"no status\"}", "status"},
        {"PUT", s_path, "{\"status\":\"resolved\",\"reason\":\"x\"}", "reason"},
        {"POST", "/api/users/", "{\"phone_number\":\"+0821234567\",\"name\":\"R\"}",
         "phone_number"},
        {"POST", "/api/users/", "{\"phone_number\":\"27821234567\",\"name\":\"R\"}",
         "phone_number"},
        {"POST", "/api/users/", "{\"phone_number\":\"+27821234567\"}", "name"},
        {"POST", "/api/users/", "{\"phone_number\":\"+27821234567\",\"name\":\"\"}", "name"},
        {"PUT", u_path, "{\"phone_number\":\"+27821234599\",\"name\":\"R\"}", "phone_number"},
        {"POST", "/api/files/",
         "{\"grievance_id\":\"g1\",\"file_type\":\"text/plain\",\"file_data\":\"@@@@\"}",
         "file_data"},
        {"POST", "/api/files/", "{\"grievance_id\":\"g1\",\"file_data\":\"" B64_ABC "\"}",
         "file_type"},
        {"POST", "/api/files/",
         "{\"file_type\":\"text/plain\",\"file_data\":\"" B64_ABC "\",\"size\":3,"
         "\"grievance_id\":\"g1\"}",
         "size"},
    };
    size_t before = published_total(f);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct th_reply r =
            request(f->gw.port, bad[i].method, bad[i].path, f->admin.header, NULL, bad[i].body);
        if (r.status != 400)
            fail_msg("bad body #%zu (%s %s %.80s): expected 400, got %ld: %s", i, bad[i].method,
                     bad[i].path, bad[i].body, r.status, r.body);
        json_t *v = th_reply_json(&r);
        const char *field = str_at(json_object_get(v, "error"), "field");
        if (bad[i].field && (!field || strcmp(field, bad[i].field) != 0))
            fail_msg("bad body #%zu: expected field \"%s\": %s", i, bad[i].field, r.body);
        json_decref(v);
        th_expect_error(&r, 400, "invalid", NULL);
        th_reply_free(&r);
    }
    assert_int_equal(published_total(f), before);
    assert_int_equal(th_queue_depth(f->amqp, PROBE_QUEUE), 0);

    /* At the limit is fine: 16000 bytes of description, ten files. */
    long_desc[16000] = '\0';
    snprintf(big, sizeof big,
             "{\"grievance_id\":\"%s-max\",\"user_info\":{\"phone_number\":\"+27821234567\","
             "\"name\":\"R\"},\"project_type\":\"water\",\"description\":\"%s\"}",
             f->run, long_desc);
    struct th_reply r = request(f->gw.port, "POST", "/api/grievances/", f->admin.header, NULL, big);
    char *id = expect_accepted(&r, "grievance_id", NULL, NULL);
    th_reply_free(&r);
    free(id);
    char *last = strrchr(files11, '{');
    snprintf(last - 1, 2, "]");
    submit_body(too_many, sizeof too_many, "g1", "+27821234567", files11);
    r = request(f->gw.port, "POST", "/api/grievances/", f->admin.header, NULL, too_many);
    id = expect_accepted(&r, "grievance_id", "g1", NULL);
    th_reply_free(&r);
    assert_int_equal(
        json_array_size(json_object_get(one_message(f, id, "grievance.submitted"), "files")),
        GW_API_FILES_MAX);
    free(id);
    assert_int_equal(published_total(f), before + 2);
}

/* --- Idempotency-Key ---------------------------------------------------------------------- */

static void idempotency_key_makes_a_retry_the_same_message(void **state)
{
    struct fixture *f = *state;
    char body[1024], gid[64], ikey[64], hdr[128], want[70], other[70];
    snprintf(gid, sizeof gid, "it-%s-idem", f->run);
    snprintf(ikey, sizeof ikey, "retry-%s.1", f->run);
    snprintf(hdr, sizeof hdr, "Idempotency-Key: %s", ikey);
    submit_body(body, sizeof body, gid, "+27821234570", NULL);
    idem_id("grievance.submitted", f->chatbot.actor, ikey, want);

    char *ids[2];
    for (int i = 0; i < 2; i++) {
        struct th_reply r =
            request(f->gw.port, "POST", "/api/grievances/", f->chatbot.header, hdr, body);
        ids[i] = expect_accepted(&r, "grievance_id", gid, NULL);
        th_reply_free(&r);
    }
    assert_string_equal(ids[0], ids[1]);
    assert_string_equal(ids[0], want);
    /* Consumers deduplicate by id: whatever reached the queue carries that one id. */
    int n = published(f, want, NULL);
    assert_true(n >= 1 && n <= 2);
    free(ids[0]);
    free(ids[1]);

    /* The same key from another caller is another message. */
    struct th_reply r = request(f->gw.port, "POST", "/api/grievances/", f->agent.header, hdr, body);
    char *id = expect_accepted(&r, "grievance_id", gid, NULL);
    th_reply_free(&r);
    idem_id("grievance.submitted", f->agent.actor, ikey, other);
    assert_string_equal(id, other);
    assert_string_not_equal(id, want);
    assert_int_equal(published(f, id, NULL), 1);
    free(id);

    /* ... and so is the same key on another kind of write. */
    r = request(f->gw.port, "POST", "/api/users/", f->chatbot.header, hdr,
                "{\"phone_number\":\"+27821234570\",\"name\":\"Idem\"}");
    id = expect_accepted(&r, "phone_number", "+27821234570", NULL);
    th_reply_free(&r);
    idem_id("grievance.user_upsert", f->chatbot.actor, ikey, other);
    assert_string_equal(id, other);
    assert_int_equal(published(f, id, NULL), 1);
    free(id);

    /* Keys that are not 1..64 of [A-Za-z0-9._-] are refused, and publish nothing. */
    char long_key[GW_API_IDEM_MAX + 2], bad_hdr[128];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    const char *bad[] = {"has space", "a/b", "caf\xc3\xa9", long_key};
    size_t before = published_total(f);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(bad_hdr, sizeof bad_hdr, "Idempotency-Key: %s", bad[i]);
        expect_refusal(f->gw.port, "POST", "/api/grievances/", f->chatbot.header, bad_hdr, body,
                       400, "invalid", "Idempotency-Key");
    }
    assert_int_equal(published_total(f), before);
}

/* --- broker and database away ------------------------------------------------------------- */

static void broker_down_is_503_with_retry_after_while_reads_go_on(void **state)
{
    struct fixture *f = *state;
    char url[128], body[1024], gid[64], path[128];
    snprintf(url, sizeof url, "amqp://guest:guest@127.0.0.1:%d/", th_free_port());
    start_gateway(f, &f->down, url, th_need_env("SY_PG_URL"));
    wait_answer(&f->down, "/healthz", 200);

    snprintf(gid, sizeof gid, "it-%s-down", f->run);
    submit_body(body, sizeof body, gid, "+27821234571", NULL);
    size_t before = published_total(f);
    struct th_reply r =
        request(f->down.port, "POST", "/api/grievances/", f->chatbot.header, NULL, body);
    th_expect_error(&r, 503, "unavailable", NULL);
    if (r.retry_after <= 0)
        fail_msg("a 503 without Retry-After: %s", r.body);
    th_reply_free(&r);
    r = request(f->down.port, "PUT", "/api/users/%2B27821234571/", f->agent.header, NULL,
                "{\"name\":\"N\"}");
    th_expect_error(&r, 503, "unavailable", NULL);
    assert_true(r.retry_after > 0);
    th_reply_free(&r);
    /* Bad input is still 400, not 503: it was never going to be published. */
    expect_refusal(f->down.port, "POST", "/api/users/", f->agent.header, NULL,
                   "{\"phone_number\":\"1\",\"name\":\"N\"}", 400, "invalid", "phone_number");
    /* Reads need PostgreSQL only. */
    snprintf(path, sizeof path, "/api/grievances/%s/", f->g_old);
    r = request(f->down.port, "GET", path, f->readonly.header, NULL, NULL);
    if (r.status != 200)
        fail_msg("GET %s with the broker away: expected 200, got %ld: %s", path, r.status, r.body);
    th_reply_free(&r);
    assert_int_equal(published_total(f), before);
    assert_int_equal(stop_gateway(&f->down), 0);
}

static void missing_tables_are_503_saying_to_migrate(void **state)
{
    struct fixture *f = *state;
    char path[128];
    make_bare_db(f);
    start_gateway(f, &f->bare, th_need_env("SY_AMQP_URL"), f->db_url);
    wait_answer(&f->bare, "/readyz", 200);

    const char *kind[] = {"grievances", "grievances", "users", "files"};
    const char *ids[] = {f->g_old, f->g_old, f->phone, f->f_one};
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "/api/%s/%s/%s", kind[i], ids[i], i == 1 ? "status/" : "");
        struct th_reply r = request(f->bare.port, "GET", path, f->bare_admin.header, NULL, NULL);
        th_expect_error(&r, 503, "unavailable", NULL);
        if (r.retry_after <= 0)
            fail_msg("GET %s: a 503 without Retry-After: %s", path, r.body);
        json_t *v = th_reply_json(&r);
        const char *msg = str_at(json_object_get(v, "error"), "message");
        if (!msg || !strstr(msg, "migrate"))
            fail_msg("GET %s: the 503 does not say to migrate: %s", path, r.body);
        json_decref(v);
        th_reply_free(&r);
    }
    /* The keys of that database are the only ones it knows. */
    snprintf(path, sizeof path, "/api/files/%s/", f->f_one);
    expect_refusal(f->bare.port, "GET", path, f->readonly.header, NULL, NULL, 401,
                   "unauthenticated", NULL);
    assert_int_equal(stop_gateway(&f->bare), 0);
}

/* --- the process -------------------------------------------------------------------------- */

static void keys_and_tokens_never_reach_the_log(void **state)
{
    struct fixture *f = *state;
    const struct key *keys[] = {&f->chatbot,  &f->agent,   &f->admin,
                                &f->readonly, &f->revoked, &f->unknown};
    assert_true(th_log_count(&f->gw.proc, "http.access") > 50);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        assert_int_equal(th_log_count(&f->gw.proc, keys[i]->key + 4 + GW_APIKEY_ID_LEN), 0);
    assert_int_equal(th_log_count(&f->gw.proc, JWT_SECRET), 0);
    /* No token either: every one this test made starts with the same header. */
    assert_int_equal(th_log_count(&f->gw.proc, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"), 0);
}

static void sigterm_stops_the_gateway_with_0(void **state)
{
    struct fixture *f = *state;
    int status = stop_gateway(&f->gw);
    if (status != 0) {
        th_proc_dump_log(&f->gw.proc, 40);
        fail_msg("sy-gateway exited with %d after SIGTERM", status);
    }
    assert_int_equal(th_log_count(&f->gw.proc, "LeakSanitizer"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(submit_is_published_with_its_files),
        cmocka_unit_test(submit_by_token_names_its_subject),
        cmocka_unit_test(update_is_published_with_the_paths_id),
        cmocka_unit_test(status_update_is_published),
        cmocka_unit_test(user_create_and_update_are_published),
        cmocka_unit_test(file_is_published_with_its_id_or_a_fresh_one),
        cmocka_unit_test(a_clients_actor_is_never_published),
        cmocka_unit_test(grievance_is_read_with_its_user_and_files),
        cmocka_unit_test(status_is_read_with_its_history_newest_first),
        cmocka_unit_test(user_is_read_with_their_grievances),
        cmocka_unit_test(file_is_read_as_metadata),
        cmocka_unit_test(unknown_ids_are_404),
        cmocka_unit_test(malformed_ids_in_paths_are_400_naming_the_field),
        cmocka_unit_test(every_route_refuses_bad_credentials_with_401),
        cmocka_unit_test(roles_a_route_does_not_serve_get_403),
        cmocka_unit_test(bad_bodies_are_400_naming_the_field_and_publish_nothing),
        cmocka_unit_test(idempotency_key_makes_a_retry_the_same_message),
        cmocka_unit_test(broker_down_is_503_with_retry_after_while_reads_go_on),
        cmocka_unit_test(missing_tables_are_503_saying_to_migrate),
        cmocka_unit_test(keys_and_tokens_never_reach_the_log),
        cmocka_unit_test(sigterm_stops_the_gateway_with_0),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
