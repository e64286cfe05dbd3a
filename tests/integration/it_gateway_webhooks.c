/* it_gateway_webhooks.c - sy-gateway's Chatwoot and WhatsApp webhooks end to end: a real
 * sy-gateway process over HTTP (libcurl), the real broker and Redis. Signed Chatwoot deliveries
 * pass, forged, unsigned and stale ones get 401 naming the header, a hook the webhooks file
 * names without a secret takes anything, a hook stored in PostgreSQL (`syctl glpi hook add`)
 * without a secret takes nothing (401 saying so) while one stored with a secret takes signed
 * deliveries, an unknown hook is 404, a redelivery is published once; the WhatsApp handshake
 * answers only the configured token; a media message becomes exactly one
 * ingest.whatsapp.media with its fields while text and receipts publish nothing; malformed JSON
 * is 400 naming the problem; with the broker away a delivery gets 503 with Retry-After, and its
 * dedup mark is forgotten so the sender's retry goes through. What the gateway publishes is read
 * back from sy.gw_probe, which nothing consumes. Secrets reach the gateway through its
 * environment and never appear in its log.
 *
 * The fleet's own topology may be declared on the same broker, and it routes chatwoot.# to
 * sy.glpi and ingest.# to sy.ingest: so that no test delivery reaches a real worker's queue,
 * this test and its gateways use a topology of their own on an exchange of their own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cm_http.h"
#include "cm_worker.h"
#include "harness.h"
#include "http.h"
#include "sy/amqp.h"
#include "sy/crypto.h"
#include "sy/err.h"
#include "sy/json.h"
#include "sy/pg.h"
#include "sy/topology.h"

#define PROBE_WORKER "gw_probe"
#define PROBE_QUEUE  "sy.gw_probe"
#define START_MAX_MS 20000
#define MAX_MSGS     256
#define TOPOLOGY                                                                                   \
    "# it_gateway_webhooks: what sy-gateway publishes lands in sy.gw_probe, read back\n"           \
    "# unconsumed; a private exchange keeps it away from the fleet's queues. The defaults are\n"   \
    "# those of tests/data/topology.yaml, like every test queue's.\n"                              \
    "exchange: sy.gwtest\n"                                                                        \
    "defaults:\n"                                                                                  \
    "  delivery_limit: 5\n"                                                                        \
    "  retry: {max_attempts: 4, delays: [1s, 2s, 4s], jitter: 0.2}\n"                              \
    "workers:\n"                                                                                   \
    "  gw_probe:\n"                                                                                \
    "    routes: [chatwoot.#, ingest.whatsapp.#]\n"

struct gateway {
    struct th_proc proc;
    bool running;
    int port, health_port;
    char env[9][1300]; /* room for a path of up to 1199 bytes and its name */
};

struct fixture {
    struct sy_amqp *amqp;
    struct sy_topology *topo;
    char run[17];
    char bin[1024];
    char dir[1024];
    char hooks[1200], secret_file[1200], topology[1200];
    char cw_secret[64], cw_file_secret[64], wa_token[64], wa_secret[64];
    struct gateway gw;   /* the healthy one, for the whole group */
    struct gateway down; /* one whose broker is a closed port */
    struct th_got msgs[MAX_MSGS];
    size_t nmsgs;
};

/* The "field" of an error body, "" when there is none. */
static const char *error_field(json_t *v)
{
    const char *f = json_string_value(json_object_get(json_object_get(v, "error"), "field"));
    return f ? f : "";
}

/* A gateway on the test's webhooks file and amqp_url; with pg_url, it also knows the hooks
 * stored in that database. */
static void start_gateway_pg(struct fixture *f, struct gateway *g, const char *amqp_url,
                             const char *pg_url)
{
    g->port = th_free_port();
    g->health_port = th_free_port();
    snprintf(g->env[0], sizeof g->env[0], "SY_GATEWAY_ADDR=127.0.0.1:%d", g->port);
    snprintf(g->env[1], sizeof g->env[1], "SY_HTTP_ADDR=127.0.0.1:%d", g->health_port);
    snprintf(g->env[2], sizeof g->env[2], "SY_GATEWAY_WEBHOOKS=%s", f->hooks);
    snprintf(g->env[3], sizeof g->env[3], "GWT_CW_SECRET=%s", f->cw_secret);
    snprintf(g->env[4], sizeof g->env[4], "GWT_WA_TOKEN=%s", f->wa_token);
    snprintf(g->env[5], sizeof g->env[5], "GWT_WA_SECRET=%s", f->wa_secret);
    snprintf(g->env[6], sizeof g->env[6], "SY_GATEWAY_PUBLISH_TIMEOUT=3s");
    snprintf(g->env[7], sizeof g->env[7], "SY_AMQP_URL=%s", amqp_url);
    snprintf(g->env[8], sizeof g->env[8], "SY_PG_URL=%s", pg_url ? pg_url : "");
    const char *env[] = {
        g->env[0], g->env[1], g->env[2], g->env[3],           g->env[4],
        g->env[5], g->env[6], g->env[7], "SY_LOG_LEVEL=info", pg_url ? g->env[8] : NULL,
        NULL};
    assert_int_equal(th_proc_spawn(&g->proc, f->bin, env), 0);
    g->running = true;
}

static void start_gateway(struct fixture *f, struct gateway *g, const char *amqp_url)
{
    start_gateway_pg(f, g, amqp_url, NULL);
}

/* Waits until port answers path with `want` (any answer when want is 0). */
static void wait_answer(struct gateway *g, int port, const char *path, long want)
{
    th_wait_answer(&g->proc, &g->running, "sy-gateway", port, path, want, START_MAX_MS);
}

static int stop_gateway(struct gateway *g)
{
    return th_stop(&g->proc, &g->running);
}

/* --- what was published ------------------------------------------------------------------- */

/* Moves everything now in sy.gw_probe into f->msgs. A 2xx came after the broker's confirm, so
 * what a request published is in the queue by the time its answer arrived. */
static void drain(struct fixture *f)
{
    th_drain(f->amqp, PROBE_QUEUE, f->msgs, MAX_MSGS, &f->nmsgs);
}

/* How many messages with this id were published; *env_out (borrowed) is the last of them. */
static int published(struct fixture *f, const char *id, json_t **env_out)
{
    drain(f);
    return th_got_count(f->msgs, f->nmsgs, id, env_out);
}

/* How many messages published so far carry data.<key> == value. */
static int published_with(struct fixture *f, const char *key, const char *value)
{
    int n = 0;
    drain(f);
    for (size_t i = 0; i < f->nmsgs; i++) {
        const char *v =
            json_string_value(json_object_get(json_object_get(f->msgs[i].env, "data"), key));
        if (v && strcmp(v, value) == 0)
            n++;
    }
    return n;
}

/* --- signing ------------------------------------------------------------------------------ */

static void hmac_hex(const char *key, const char *a, const char *b, char out[2 * SY_SHA256_LEN + 8])
{
    uint8_t mac[SY_SHA256_LEN];
    sy_hmac_sha256_2(key, strlen(key), a, strlen(a), b, strlen(b), mac);
    memcpy(out, "sha256=", 7);
    sy_hex_encode(mac, sizeof mac, out + 7);
}

/* POSTs a Chatwoot delivery to hook; secret NULL sends no signature; delivery NULL none. */
static struct th_reply chatwoot_post(struct fixture *f, int port, const char *hook,
                                     const char *secret, long long ts, const char *delivery,
                                     const char *body)
{
    char path[256], h_ts[64], h_sig[128], h_del[160], ts_text[32], sig[2 * SY_SHA256_LEN + 8];
    const char *headers[4] = {NULL};
    size_t n = 0;
    (void)f;
    snprintf(path, sizeof path, "/webhooks/chatwoot/%s", hook);
    snprintf(ts_text, sizeof ts_text, "%lld.", ts);
    if (ts > 0) {
        snprintf(h_ts, sizeof h_ts, "X-Chatwoot-Timestamp: %lld", ts);
        headers[n++] = h_ts;
    }
    if (secret) {
        hmac_hex(secret, ts_text, body, sig);
        snprintf(h_sig, sizeof h_sig, "X-Chatwoot-Signature: %s", sig);
        headers[n++] = h_sig;
    }
    if (delivery) {
        snprintf(h_del, sizeof h_del, "X-Chatwoot-Delivery: %s", delivery);
        headers[n++] = h_del;
    }
    return th_http(port, "POST", path, headers, body);
}

static struct th_reply whatsapp_post(int port, const char *secret, const char *body)
{
    char h_sig[160], sig[2 * SY_SHA256_LEN + 8];
    const char *headers[2] = {NULL};
    if (secret) {
        hmac_hex(secret, "", body, sig);
        snprintf(h_sig, sizeof h_sig, "X-Hub-Signature-256: %s", sig);
        headers[0] = h_sig;
    }
    return th_http(port, "POST", "/webhooks/whatsapp", headers, body);
}

static long long now_s(void)
{
    return (long long)time(NULL);
}

/* --- fixture ------------------------------------------------------------------------------ */

static int group_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    th_need_env("SY_REDIS_URL");
    th_need_env("SY_AMQP_URL");
    const char *build = th_need_env("SY_BUILD_DIR");
    th_run_id(f->run);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    snprintf(f->bin, sizeof f->bin, "%s/workers/gateway/sy-gateway", build);
    if (access(f->bin, X_OK) != 0)
        fail_msg("sy-gateway is not built: %s: %s", f->bin, strerror(errno));
    snprintf(f->dir, sizeof f->dir, "%s/Testing", build);
    if (mkdir(f->dir, 0755) != 0 && errno != EEXIST)
        fail_msg("mkdir %s: %s", f->dir, strerror(errno));
    snprintf(f->dir, sizeof f->dir, "%s/Testing/gwhooks-%s", build, f->run);
    if (mkdir(f->dir, 0755) != 0)
        fail_msg("mkdir %s: %s", f->dir, strerror(errno));

    /* The gateways spawned below inherit it. */
    snprintf(f->topology, sizeof f->topology, "%s/topology.yaml", f->dir);
    assert_int_equal(th_write_file(f->topology, TOPOLOGY), 0);
    assert_int_equal(setenv("SY_TOPOLOGY", f->topology, 1), 0);
    f->amqp = th_amqp(&f->topo);
    th_purge_worker(f->amqp, f->topo, PROBE_WORKER);

    snprintf(f->cw_secret, sizeof f->cw_secret, "cw-secret-%s", f->run);
    snprintf(f->cw_file_secret, sizeof f->cw_file_secret, "cw-filed-%s", f->run);
    snprintf(f->wa_token, sizeof f->wa_token, "wa-token-%s", f->run);
    snprintf(f->wa_secret, sizeof f->wa_secret, "wa-secret-%s", f->run);
    snprintf(f->secret_file, sizeof f->secret_file, "%s/filed.secret", f->dir);
    char text[256];
    snprintf(text, sizeof text, "%s\n", f->cw_file_secret);
    assert_int_equal(th_write_file(f->secret_file, text), 0);
    snprintf(f->hooks, sizeof f->hooks, "%s/webhooks.yaml", f->dir);
    static const char hooks[] = "chatwoot:\n"
                                "  signed:\n"
                                "    secret_env: GWT_CW_SECRET\n"
                                "  filed:\n"
                                "    secret_file: filed.secret\n"
                                "  open:\n"
                                "whatsapp:\n"
                                "  verify_token_env: GWT_WA_TOKEN\n"
                                "  app_secret_env: GWT_WA_SECRET\n";
    assert_int_equal(th_write_file(f->hooks, hooks), 0);

    start_gateway(f, &f->gw, th_need_env("SY_AMQP_URL"));
    wait_answer(&f->gw, f->gw.health_port, "/readyz", 200);
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    struct fixture *f = *state;
    stop_gateway(&f->gw);
    stop_gateway(&f->down);
    char path[1300];
    snprintf(path, sizeof path, "%s/bad.yaml", f->dir);
    unlink(path);
    unlink(f->secret_file);
    unlink(f->hooks);
    for (size_t i = 0; i < f->nmsgs; i++) {
        free(f->msgs[i].id);
        json_decref(f->msgs[i].env);
    }
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
    rmdir(f->dir);
    sy_amqp_destroy(f->amqp);
    sy_topology_destroy(f->topo);
    curl_global_cleanup();
    free(f);
    return 0;
}

/* --- Chatwoot ----------------------------------------------------------------------------- */

static void chatwoot_signed_delivery_is_published_with_its_fields(void **state)
{
    struct fixture *f = *state;
    char delivery[64], id[96];
    snprintf(delivery, sizeof delivery, "ok-%s", f->run);
    snprintf(id, sizeof id, "chatwoot:%s", delivery);
    const char *body = "{\"event\":\"message_created\",\"id\":118,\"content\":\"hi\","
                       "\"private\":false,\"sender\":{\"id\":14,\"type\":\"contact\"}}";

    struct th_reply r =
        chatwoot_post(f, f->gw.port, "signed", f->cw_secret, now_s(), delivery, body);
    if (r.status != 202)
        fail_msg("expected 202, got %ld: %s", r.status, r.body);
    json_t *v = th_reply_json(&r);
    assert_string_equal(json_string_value(json_object_get(v, "id")), id);
    assert_string_equal(json_string_value(json_object_get(v, "status")), "accepted");
    json_decref(v);
    th_reply_free(&r);

    json_t *env = NULL;
    assert_int_equal(published(f, id, &env), 1);
    assert_string_equal(json_string_value(json_object_get(env, "type")),
                        "chatwoot.message_created");
    json_t *data = json_object_get(env, "data");
    assert_string_equal(json_string_value(json_object_get(data, "hook")), "signed");
    assert_string_equal(json_string_value(json_object_get(data, "delivery")), delivery);
    json_t *payload = json_object_get(data, "payload");
    json_t *sent = json_loads(body, 0, NULL);
    assert_true(json_equal(payload, sent));
    json_decref(sent);

    /* A secret read from a file signs just as well. */
    snprintf(delivery, sizeof delivery, "filed-%s", f->run);
    snprintf(id, sizeof id, "chatwoot:%s", delivery);
    r = chatwoot_post(f, f->gw.port, "filed", f->cw_file_secret, now_s(), delivery,
                      "{\"event\":\"contact_created\",\"id\":12,\"name\":\"Jane\"}");
    assert_int_equal(r.status, 202);
    th_reply_free(&r);
    assert_int_equal(published(f, id, NULL), 1);
}

static void chatwoot_bad_signatures_get_401_naming_the_header(void **state)
{
    struct fixture *f = *state;
    const char *body = "{\"event\":\"conversation_created\",\"id\":10}";
    char d[64];

    /* A wrong secret. */
    snprintf(d, sizeof d, "forged-%s", f->run);
    struct th_reply r = chatwoot_post(f, f->gw.port, "signed", "not-the-secret", now_s(), d, body);
    th_expect_error(&r, 401, NULL, "X-Chatwoot-Signature");
    th_reply_free(&r);
    /* The secret of another hook. */
    r = chatwoot_post(f, f->gw.port, "signed", f->cw_file_secret, now_s(), d, body);
    th_expect_error(&r, 401, NULL, "X-Chatwoot-Signature");
    th_reply_free(&r);
    /* No signature at all. */
    r = chatwoot_post(f, f->gw.port, "signed", NULL, now_s(), d, body);
    th_expect_error(&r, 401, NULL, "X-Chatwoot-Signature");
    th_reply_free(&r);
    /* Signed, but without the timestamp it signed. */
    char sig[2 * SY_SHA256_LEN + 8], h_sig[160], ts[32];
    snprintf(ts, sizeof ts, "%lld.", now_s());
    hmac_hex(f->cw_secret, ts, body, sig);
    snprintf(h_sig, sizeof h_sig, "X-Chatwoot-Signature: %s", sig);
    const char *headers[] = {h_sig, NULL};
    r = th_http(f->gw.port, "POST", "/webhooks/chatwoot/signed", headers, body);
    th_expect_error(&r, 401, NULL, "X-Chatwoot-Timestamp");
    th_reply_free(&r);
    /* Correctly signed, but ten minutes old, and ten minutes ahead. */
    r = chatwoot_post(f, f->gw.port, "signed", f->cw_secret, now_s() - 600, d, body);
    th_expect_error(&r, 401, NULL, "X-Chatwoot-Timestamp");
    th_reply_free(&r);
    r = chatwoot_post(f, f->gw.port, "signed", f->cw_secret, now_s() + 600, d, body);
    th_expect_error(&r, 401, NULL, "X-Chatwoot-Timestamp");
    th_reply_free(&r);
    /* Signed, then the body changed on the way. */
    snprintf(ts, sizeof ts, "%lld", now_s());
    char ts_dot[40];
    snprintf(ts_dot, sizeof ts_dot, "%s.", ts);
    hmac_hex(f->cw_secret, ts_dot, body, sig);
    char h_ts[64];
    snprintf(h_ts, sizeof h_ts, "X-Chatwoot-Timestamp: %s", ts);
    snprintf(h_sig, sizeof h_sig, "X-Chatwoot-Signature: %s", sig);
    const char *tampered[] = {h_ts, h_sig, NULL};
    r = th_http(f->gw.port, "POST", "/webhooks/chatwoot/signed", tampered,
                "{\"event\":\"conversation_created\",\"id\":11}");
    th_expect_error(&r, 401, NULL, "X-Chatwoot-Signature");
    th_reply_free(&r);

    char id[96];
    snprintf(id, sizeof id, "chatwoot:%s", d);
    assert_int_equal(published(f, id, NULL), 0);
    /* The refusals marked nothing: the genuine delivery still goes through. */
    r = chatwoot_post(f, f->gw.port, "signed", f->cw_secret, now_s(), d, body);
    assert_int_equal(r.status, 202);
    th_reply_free(&r);
    assert_int_equal(published(f, id, NULL), 1);
}

static void chatwoot_file_hook_without_secret_takes_unsigned_deliveries(void **state)
{
    struct fixture *f = *state;
    char body[256];
    snprintf(body, sizeof body, "{\"event\":\"contact_updated\",\"id\":12,\"name\":\"open-%s\"}",
             f->run);
    struct th_reply r = chatwoot_post(f, f->gw.port, "open", NULL, 0, NULL, body);
    if (r.status != 202)
        fail_msg("expected 202, got %ld: %s", r.status, r.body);
    json_t *v = th_reply_json(&r);
    const char *id = json_string_value(json_object_get(v, "id"));
    assert_non_null(id);
    assert_int_equal(strlen(id), 36); /* a fresh UUID without a delivery id */
    json_t *env = NULL;
    assert_int_equal(published(f, id, &env), 1);
    json_t *data = json_object_get(env, "data");
    assert_string_equal(json_string_value(json_object_get(data, "hook")), "open");
    assert_true(json_is_null(json_object_get(data, "delivery")));
    json_decref(v);
    th_reply_free(&r);
}

/* Hooks `syctl glpi hook add` stored: one with a webhook secret takes deliveries signed with
 * it; one stored without takes none, signed or not, since signatures are checked and only the
 * webhooks file may name an unsigned hook (which this gateway still honours). */
static void chatwoot_stored_hook_without_a_secret_is_refused(void **state)
{
    struct fixture *f = *state;
    char err[512] = "", dir[1200], secret[64], signed_id[64], open_id[64], body[256];
    struct gateway g = {0};
    const char *pg_url = th_need_env("SY_PG_URL");
    struct sy_pg *pg = sy_pg_connect(pg_url, err, sizeof err);

    if (!pg)
        fail_msg("pg: %s", err);
    snprintf(dir, sizeof dir, "%s/schemas/sql/postgres", th_need_env("SY_SOURCE_DIR"));
    if (sy_pg_migrate(pg, dir, NULL, NULL, err, sizeof err) != 0)
        fail_msg("migrate: %s", err);
    snprintf(secret, sizeof secret, "cw-stored-%s", f->run);
    snprintf(signed_id, sizeof signed_id, "gwt-%s-signed", f->run);
    snprintf(open_id, sizeof open_id, "gwt-%s-open", f->run);
    const char *add = "INSERT INTO glpi_hooks (hook_id, api_url, user_token, webhook_secret)"
                      " VALUES ($1, 'https://glpi.example.org/apirest.php', 'tok', $2)";
    const char *ps[2] = {signed_id, secret}, *po[2] = {open_id, NULL};
    if (sy_pg_exec(pg, add, 2, ps, NULL) != 0 || sy_pg_exec(pg, add, 2, po, NULL) != 0)
        fail_msg("glpi_hooks: %s", sy_pg_error(pg));
    start_gateway_pg(f, &g, th_need_env("SY_AMQP_URL"), pg_url);
    wait_answer(&g, g.health_port, "/readyz", 200);

    snprintf(body, sizeof body, "{\"event\":\"contact_updated\",\"id\":12,\"name\":\"st-%s\"}",
             f->run);
    struct th_reply r = chatwoot_post(f, g.port, signed_id, secret, now_s(), NULL, body);
    if (r.status != 202)
        fail_msg("a signed delivery to a stored hook: expected 202, got %ld: %s", r.status, r.body);
    th_reply_free(&r);
    assert_int_equal(published_with(f, "hook", signed_id), 1);
    r = chatwoot_post(f, g.port, signed_id, NULL, now_s(), NULL, body);
    th_expect_error(&r, 401, NULL, "X-Chatwoot-Signature");
    th_reply_free(&r);

    r = chatwoot_post(f, g.port, open_id, NULL, now_s(), NULL, body);
    th_expect_error(&r, 401, NULL, "hook_id");
    assert_non_null(strstr(r.body, "no webhook secret"));
    assert_non_null(strstr(r.body, "--webhook-secret"));
    th_reply_free(&r);
    r = chatwoot_post(f, g.port, open_id, secret, now_s(), NULL, body);
    th_expect_error(&r, 401, NULL, "hook_id");
    th_reply_free(&r);
    assert_int_equal(published_with(f, "hook", open_id), 0);
    /* The file's own unsigned hook is still taken by the same gateway. */
    r = chatwoot_post(f, g.port, "open", NULL, 0, NULL, body);
    assert_int_equal(r.status, 202);
    th_reply_free(&r);

    assert_int_equal(stop_gateway(&g), 0);
    assert_int_equal(th_log_count(&g.proc, secret), 0);
    th_proc_cleanup(&g.proc);
    const char *del = "DELETE FROM glpi_hooks WHERE hook_id IN ($1, $2)";
    const char *pd[2] = {signed_id, open_id};
    sy_pg_exec(pg, del, 2, pd, NULL);
    sy_pg_destroy(pg);
}

static void chatwoot_unknown_hook_is_404(void **state)
{
    struct fixture *f = *state;
    struct th_reply r = chatwoot_post(f, f->gw.port, "nosuchhook", f->cw_secret, now_s(), NULL,
                                      "{\"event\":\"message_created\"}");
    th_expect_error(&r, 404, NULL, "hook_id");
    th_reply_free(&r);
}

static void chatwoot_redelivery_is_published_once(void **state)
{
    struct fixture *f = *state;
    char delivery[64], id[96];
    snprintf(delivery, sizeof delivery, "dup-%s", f->run);
    snprintf(id, sizeof id, "chatwoot:%s", delivery);
    const char *body =
        "{\"event\":\"conversation_status_changed\",\"id\":10,\"status\":\"resolved\"}";

    struct th_reply r =
        chatwoot_post(f, f->gw.port, "signed", f->cw_secret, now_s(), delivery, body);
    assert_int_equal(r.status, 202);
    th_reply_free(&r);
    for (int i = 0; i < 3; i++) {
        r = chatwoot_post(f, f->gw.port, "signed", f->cw_secret, now_s(), delivery, body);
        if (r.status != 200)
            fail_msg("redelivery %d: expected 200, got %ld: %s", i, r.status, r.body);
        json_t *v = th_reply_json(&r);
        assert_string_equal(json_string_value(json_object_get(v, "status")), "duplicate");
        json_decref(v);
        th_reply_free(&r);
    }
    assert_int_equal(published(f, id, NULL), 1);
}

static void chatwoot_bad_bodies_are_refused_naming_the_problem(void **state)
{
    struct fixture *f = *state;
    struct th_reply r =
        chatwoot_post(f, f->gw.port, "open", NULL, 0, NULL, "{\"event\": \"message_");
    assert_int_equal(r.status, 400);
    json_t *v = th_reply_json(&r);
    const char *msg = json_string_value(json_object_get(json_object_get(v, "error"), "message"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "not JSON"));
    assert_non_null(strstr(msg, "line 1"));
    json_decref(v);
    th_reply_free(&r);

    r = chatwoot_post(f, f->gw.port, "open", NULL, 0, NULL, "[1,2]");
    assert_int_equal(r.status, 400);
    th_reply_free(&r);
    r = chatwoot_post(f, f->gw.port, "open", NULL, 0, NULL, "{\"id\":1}");
    th_expect_error(&r, 400, NULL, "event");
    th_reply_free(&r);
    r = chatwoot_post(f, f->gw.port, "open", NULL, 0, NULL, "{\"event\":\"Message.Created\"}");
    th_expect_error(&r, 400, NULL, "event");
    th_reply_free(&r);
    r = chatwoot_post(f, f->gw.port, "open", NULL, 0, NULL, "{\"event\":\"agent_added\"}");
    th_expect_error(&r, 422, NULL, "event");
    th_reply_free(&r);
    /* The schema's own check: a message id that is not an integer names the field. */
    r = chatwoot_post(f, f->gw.port, "open", NULL, 0, NULL,
                      "{\"event\":\"message_created\",\"id\":\"x\"}");
    if (r.status != 400)
        fail_msg("expected 400, got %ld: %s", r.status, r.body);
    v = th_reply_json(&r);
    assert_string_equal(error_field(v), "payload.id");
    json_decref(v);
    th_reply_free(&r);
}

/* --- WhatsApp ----------------------------------------------------------------------------- */

static void whatsapp_verify_answers_only_the_configured_token(void **state)
{
    struct fixture *f = *state;
    char path[512];
    snprintf(path, sizeof path,
             "/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=%s&hub.challenge=1158201444",
             f->wa_token);
    struct th_reply r = th_http(f->gw.port, "GET", path, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "1158201444");
    th_reply_free(&r);

    snprintf(path, sizeof path,
             "/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=%sx&hub.challenge=1",
             f->wa_token);
    r = th_http(f->gw.port, "GET", path, NULL, NULL);
    th_expect_error(&r, 403, NULL, "hub.verify_token");
    th_reply_free(&r);
    r = th_http(f->gw.port, "GET", "/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=1", NULL,
                NULL);
    th_expect_error(&r, 403, NULL, "hub.verify_token");
    th_reply_free(&r);
    snprintf(path, sizeof path,
             "/webhooks/whatsapp?hub.mode=unsubscribe&hub.verify_token=%s&hub.challenge=1",
             f->wa_token);
    r = th_http(f->gw.port, "GET", path, NULL, NULL);
    assert_int_equal(r.status, 403);
    th_reply_free(&r);
    snprintf(path, sizeof path,
             "/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=%s&hub.challenge=12ab",
             f->wa_token);
    r = th_http(f->gw.port, "GET", path, NULL, NULL);
    th_expect_error(&r, 400, NULL, "hub.challenge");
    th_reply_free(&r);
}

/* A delivery with a document from `wamid_doc`, a text message and a delivery receipt. */
static void whatsapp_body(char *out, size_t outsz, const char *wamid_doc, const char *wamid_text)
{
    snprintf(out, outsz,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"WABA1\",\"changes\":["
             "{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
             "\"metadata\":{\"display_phone_number\":\"15550001111\",\"phone_number_id\":\"PN1\"},"
             "\"contacts\":[{\"profile\":{\"name\":\"Asha\"},\"wa_id\":\"919800000000\"}],"
             "\"messages\":["
             "{\"from\":\"919800000000\",\"id\":\"%s\",\"timestamp\":\"1716630000\","
             "\"type\":\"document\",\"document\":{\"caption\":\"site report\","
             "\"filename\":\"report.pdf\",\"mime_type\":\"application/pdf\",\"sha256\":\"abc123\","
             "\"id\":\"MEDIA77\"}},"
             "{\"from\":\"919800000000\",\"id\":\"%s\",\"timestamp\":\"1716630001\","
             "\"type\":\"text\",\"text\":{\"body\":\"hello\"}}]}},"
             "{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
             "\"metadata\":{\"phone_number_id\":\"PN1\"},\"statuses\":[{\"id\":\"wamid.S\","
             "\"status\":\"delivered\",\"timestamp\":\"1716630002\"}]}}]}]}",
             wamid_doc, wamid_text);
}

static void whatsapp_media_becomes_one_message_and_text_none(void **state)
{
    struct fixture *f = *state;
    char body[4096], wamid[64], wamid_text[64], id[96], id_text[96];
    snprintf(wamid, sizeof wamid, "wamid.DOC%s", f->run);
    snprintf(wamid_text, sizeof wamid_text, "wamid.TXT%s", f->run);
    snprintf(id, sizeof id, "whatsapp:%s", wamid);
    snprintf(id_text, sizeof id_text, "whatsapp:%s", wamid_text);
    whatsapp_body(body, sizeof body, wamid, wamid_text);

    struct th_reply r = whatsapp_post(f->gw.port, f->wa_secret, body);
    if (r.status != 200)
        fail_msg("expected 200, got %ld: %s", r.status, r.body);
    json_t *v = th_reply_json(&r);
    assert_string_equal(json_string_value(json_object_get(v, "status")), "accepted");
    assert_int_equal(json_integer_value(json_object_get(v, "published")), 1);
    json_decref(v);
    th_reply_free(&r);

    json_t *env = NULL;
    assert_int_equal(published(f, id, &env), 1);
    assert_int_equal(published(f, id_text, NULL), 0);
    assert_int_equal(published_with(f, "wamid", wamid_text), 0);
    assert_string_equal(json_string_value(json_object_get(env, "type")), "ingest.whatsapp.media");
    json_t *d = json_object_get(env, "data");
    assert_string_equal(json_string_value(json_object_get(d, "media_id")), "MEDIA77");
    assert_string_equal(json_string_value(json_object_get(d, "mime_type")), "application/pdf");
    assert_string_equal(json_string_value(json_object_get(d, "media_type")), "document");
    assert_string_equal(json_string_value(json_object_get(d, "sha256")), "abc123");
    assert_string_equal(json_string_value(json_object_get(d, "filename")), "report.pdf");
    assert_string_equal(json_string_value(json_object_get(d, "caption")), "site report");
    assert_string_equal(json_string_value(json_object_get(d, "from")), "919800000000");
    assert_string_equal(json_string_value(json_object_get(d, "wamid")), wamid);
    assert_int_equal(json_integer_value(json_object_get(d, "timestamp")), 1716630000);
    assert_string_equal(json_string_value(json_object_get(d, "phone_number_id")), "PN1");

    /* WhatsApp's redelivery: acknowledged, nothing published twice. */
    r = whatsapp_post(f->gw.port, f->wa_secret, body);
    assert_int_equal(r.status, 200);
    v = th_reply_json(&r);
    assert_int_equal(json_integer_value(json_object_get(v, "published")), 0);
    json_decref(v);
    th_reply_free(&r);
    assert_int_equal(published(f, id, NULL), 1);

    /* An image without caption, sha256 or filename: those fields are left out. */
    char wamid_img[64], img[1024];
    snprintf(wamid_img, sizeof wamid_img, "wamid.IMG%s", f->run);
    snprintf(img, sizeof img,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":"
             "\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"PN2\"},\"messages\":[{"
             "\"from\":\"4477\",\"id\":\"%s\",\"timestamp\":\"1716630100\",\"type\":\"image\","
             "\"image\":{\"mime_type\":\"image/jpeg\",\"id\":\"MEDIA78\"}}]}}]}]}",
             wamid_img);
    r = whatsapp_post(f->gw.port, f->wa_secret, img);
    if (r.status != 200)
        fail_msg("expected 200, got %ld: %s", r.status, r.body);
    th_reply_free(&r);
    snprintf(id, sizeof id, "whatsapp:%s", wamid_img);
    assert_int_equal(published(f, id, &env), 1);
    d = json_object_get(env, "data");
    assert_string_equal(json_string_value(json_object_get(d, "media_type")), "image");
    assert_null(json_object_get(d, "caption"));
    assert_null(json_object_get(d, "filename"));
    assert_null(json_object_get(d, "sha256"));
}

static void whatsapp_bad_signatures_get_401(void **state)
{
    struct fixture *f = *state;
    char body[4096], wamid[64], id[96];
    snprintf(wamid, sizeof wamid, "wamid.FORGED%s", f->run);
    snprintf(id, sizeof id, "whatsapp:%s", wamid);
    whatsapp_body(body, sizeof body, wamid, "wamid.T");

    struct th_reply r = whatsapp_post(f->gw.port, "not-the-app-secret", body);
    th_expect_error(&r, 401, NULL, "X-Hub-Signature-256");
    th_reply_free(&r);
    r = whatsapp_post(f->gw.port, NULL, body);
    th_expect_error(&r, 401, NULL, "X-Hub-Signature-256");
    th_reply_free(&r);
    const char *bad_hex[] = {"X-Hub-Signature-256: sha256=zz", NULL};
    r = th_http(f->gw.port, "POST", "/webhooks/whatsapp", bad_hex, body);
    th_expect_error(&r, 401, NULL, "X-Hub-Signature-256");
    th_reply_free(&r);
    assert_int_equal(published(f, id, NULL), 0);
}

static void whatsapp_malformed_bodies_are_400_naming_the_problem(void **state)
{
    struct fixture *f = *state;
    struct th_reply r = whatsapp_post(f->gw.port, f->wa_secret, "{\"object\":");
    assert_int_equal(r.status, 400);
    json_t *v = th_reply_json(&r);
    const char *msg = json_string_value(json_object_get(json_object_get(v, "error"), "message"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "not JSON"));
    json_decref(v);
    th_reply_free(&r);

    r = whatsapp_post(f->gw.port, f->wa_secret, "{\"object\":\"page\",\"entry\":[]}");
    th_expect_error(&r, 400, NULL, "object");
    th_reply_free(&r);
    r = whatsapp_post(f->gw.port, f->wa_secret, "{\"object\":\"whatsapp_business_account\"}");
    th_expect_error(&r, 400, NULL, "entry");
    th_reply_free(&r);
    /* A document without its media id. */
    r = whatsapp_post(f->gw.port, f->wa_secret,
                      "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{"
                      "\"field\":\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"P\"},"
                      "\"messages\":[{\"from\":\"1\",\"id\":\"wamid.NOID\",\"timestamp\":\"1\","
                      "\"type\":\"document\",\"document\":{\"mime_type\":\"application/pdf\"}}]}}"
                      "]}]}");
    th_expect_error(&r, 400, NULL, "entry[0].changes[0].value.messages[0].document.id");
    th_reply_free(&r);
    assert_int_equal(published(f, "whatsapp:wamid.NOID", NULL), 0);
}

/* --- broker away -------------------------------------------------------------------------- */

static void broker_down_is_503_with_retry_after_and_the_retry_goes_through(void **state)
{
    struct fixture *f = *state;
    char url[128];
    snprintf(url, sizeof url, "amqp://guest:guest@127.0.0.1:%d/", th_free_port());
    start_gateway(f, &f->down, url);
    wait_answer(&f->down, f->down.health_port, "/healthz", 200);

    char delivery[64], id[96];
    snprintf(delivery, sizeof delivery, "down-%s", f->run);
    snprintf(id, sizeof id, "chatwoot:%s", delivery);
    const char *body = "{\"event\":\"message_created\",\"id\":501}";
    for (int i = 0; i < 2; i++) {
        struct th_reply r =
            chatwoot_post(f, f->down.port, "signed", f->cw_secret, now_s(), delivery, body);
        if (r.status != 503)
            fail_msg("expected 503, got %ld: %s", r.status, r.body);
        assert_int_equal(r.retry_after, 5);
        th_reply_free(&r);
    }
    char wa[4096], wamid[64], wa_id[96];
    snprintf(wamid, sizeof wamid, "wamid.DOWN%s", f->run);
    snprintf(wa_id, sizeof wa_id, "whatsapp:%s", wamid);
    whatsapp_body(wa, sizeof wa, wamid, "wamid.T2");
    struct th_reply r = whatsapp_post(f->down.port, f->wa_secret, wa);
    assert_int_equal(r.status, 503);
    assert_int_equal(r.retry_after, 5);
    th_reply_free(&r);
    assert_int_equal(published(f, id, NULL), 0);
    assert_int_equal(published(f, wa_id, NULL), 0);
    assert_int_equal(stop_gateway(&f->down), 0);

    /* The failed publishes left no dedup mark: the senders' retries are published. */
    r = chatwoot_post(f, f->gw.port, "signed", f->cw_secret, now_s(), delivery, body);
    assert_int_equal(r.status, 202);
    th_reply_free(&r);
    r = whatsapp_post(f->gw.port, f->wa_secret, wa);
    assert_int_equal(r.status, 200);
    th_reply_free(&r);
    assert_int_equal(published(f, id, NULL), 1);
    assert_int_equal(published(f, wa_id, NULL), 1);
}

/* --- settings ----------------------------------------------------------------------------- */

/* Starts sy-gateway on a webhooks file of `text`: it must exit 78 with a line holding `why`. */
static void expect_refused(struct fixture *f, const char *text, const char *why)
{
    char path[1300], env[1400];
    snprintf(path, sizeof path, "%s/bad.yaml", f->dir);
    assert_int_equal(th_write_file(path, text), 0);
    snprintf(env, sizeof env, "SY_GATEWAY_WEBHOOKS=%s", path);
    struct th_proc p;
    const char *e[] = {env, "SY_HTTP_ADDR=127.0.0.1:0", "SY_GATEWAY_ADDR=127.0.0.1:0", NULL};
    assert_int_equal(th_proc_spawn(&p, f->bin, e), 0);
    if (th_proc_wait(&p, 20000) != 0) {
        th_proc_cleanup(&p);
        fail_msg("sy-gateway kept running with a bad webhooks file");
    }
    if (p.exit_status != 78 || th_log_count(&p, "SY_GATEWAY_WEBHOOKS") == 0 ||
        th_log_count(&p, why) == 0) {
        th_proc_dump_log(&p, 20);
        fail_msg("expected exit 78 naming '%s', got %d", why, p.exit_status);
    }
    unlink(p.log_path);
}

static void a_bad_webhooks_file_stops_the_gateway_with_78(void **state)
{
    struct fixture *f = *state;
    /* A secret written inline, instead of named. */
    expect_refused(f, "chatwoot:\n  signed:\n    secret: inline-secret\n", "unknown key 'secret'");
    /* A secret named by a variable nobody set. */
    expect_refused(f, "chatwoot:\n  signed:\n    secret_env: GWT_NEVER_SET_X\n",
                   "GWT_NEVER_SET_X is not set");
    /* WhatsApp without its app secret: its deliveries could not be authenticated. */
    expect_refused(f, "whatsapp:\n  verify_token_file: filed.secret\n",
                   "app_secret_env or app_secret_file is required");
    expect_refused(f, "chatwoot:\n  bad/id:\n", "hook id");
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

static void secrets_never_reach_the_log(void **state)
{
    struct fixture *f = *state;
    assert_true(th_log_count(&f->gw.proc, "http.access") > 10);
    assert_int_equal(th_log_count(&f->gw.proc, f->cw_secret), 0);
    assert_int_equal(th_log_count(&f->gw.proc, f->cw_file_secret), 0);
    assert_int_equal(th_log_count(&f->gw.proc, f->wa_token), 0);
    assert_int_equal(th_log_count(&f->gw.proc, f->wa_secret), 0);
}

/* The tests' copies of the gateway's schemas are the fleet's, byte for byte. */
static void test_schemas_match_the_fleets(void **state)
{
    (void)state;
    const char *src = th_need_env("SY_SOURCE_DIR");
    const char *types[] = {
        "ingest.whatsapp.media",           "chatwoot.contact_created",
        "chatwoot.contact_updated",        "chatwoot.conversation_created",
        "chatwoot.conversation_updated",   "chatwoot.conversation_status_changed",
        "chatwoot.conversation_typing_on", "chatwoot.conversation_typing_off",
        "chatwoot.message_created",        "chatwoot.message_updated",
        "chatwoot.webwidget_triggered",    "chatwoot.inbox_created",
        "chatwoot.inbox_updated"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char a[1200], b[1200];
        char *ta = NULL, *tb = NULL;
        size_t la = 0, lb = 0;
        snprintf(a, sizeof a, "%s/schemas/messages/%s.yaml", src, types[i]);
        snprintf(b, sizeof b, "%s/tests/data/schemas/%s.yaml", src, types[i]);
        FILE *fa = fopen(a, "r"), *fb = fopen(b, "r");
        if (!fa || !fb)
            fail_msg("missing schema for %s", types[i]);
        ta = calloc(1, 65536);
        tb = calloc(1, 65536);
        la = fread(ta, 1, 65535, fa);
        lb = fread(tb, 1, 65535, fb);
        fclose(fa);
        fclose(fb);
        if (la != lb || memcmp(ta, tb, la) != 0)
            fail_msg("tests/data/schemas/%s.yaml differs from schemas/messages", types[i]);
        free(ta);
        free(tb);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schemas_match_the_fleets),
        cmocka_unit_test(chatwoot_signed_delivery_is_published_with_its_fields),
        cmocka_unit_test(chatwoot_bad_signatures_get_401_naming_the_header),
        cmocka_unit_test(chatwoot_file_hook_without_secret_takes_unsigned_deliveries),
        cmocka_unit_test(chatwoot_stored_hook_without_a_secret_is_refused),
        cmocka_unit_test(chatwoot_unknown_hook_is_404),
        cmocka_unit_test(chatwoot_redelivery_is_published_once),
        cmocka_unit_test(chatwoot_bad_bodies_are_refused_naming_the_problem),
        cmocka_unit_test(whatsapp_verify_answers_only_the_configured_token),
        cmocka_unit_test(whatsapp_media_becomes_one_message_and_text_none),
        cmocka_unit_test(whatsapp_bad_signatures_get_401),
        cmocka_unit_test(whatsapp_malformed_bodies_are_400_naming_the_problem),
        cmocka_unit_test(broker_down_is_503_with_retry_after_and_the_retry_goes_through),
        cmocka_unit_test(a_bad_webhooks_file_stops_the_gateway_with_78),
        cmocka_unit_test(sigterm_stops_the_gateway_with_0),
        cmocka_unit_test(secrets_never_reach_the_log),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
