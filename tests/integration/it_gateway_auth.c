/* it_gateway_auth.c - the gateway's authentication against a real PostgreSQL (SY_PG_URL): keys
 * made by `syctl apikey create` are accepted with their role, a wrong secret and an unknown id
 * are refused, a role outside the allowed ones gets 403, a revoke takes effect once the cache
 * lifetime passed, list shows no hashes, PostgreSQL away gives 503, JWTs pass or fail, and
 * made-up keys beyond the lookup rate get 429.
 * Keys are named after the run and deleted at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "gateway/auth.h"
#include "gateway/http.h"
#include "harness.h"
#include "jwt.h"
#include "sy/crypto.h"
#include "sy/err.h"
#include "sy/metrics.h"
#include "sy/pg.h"

#define TTL_MS 1000

static const uint8_t JWT_SECRET[] = "integration secret of thirty-two bytes or more";

static char run[17];
static struct sy_pg *pg;

struct out {
    int code;
    char text[4096];
};

/* syctl with args (a shell word list of safe characters), its stdout and exit status. */
static struct out syctl(const char *args)
{
    struct out o = {0};
    char cmd[1024];
    size_t n;
    FILE *f;
    int st;

    snprintf(cmd, sizeof cmd, "'%s' %s 2>/dev/null", th_need_env("SYCTL_BIN"), args);
    f = popen(cmd, "r");
    assert_non_null(f);
    n = fread(o.text, 1, sizeof o.text - 1, f);
    o.text[n] = '\0';
    st = pclose(f);
    o.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    return o;
}

/* A key made by syctl for role, with its id. */
static void create_key(const char *role, char key[GW_APIKEY_LEN + 1], char id[GW_APIKEY_ID_LEN + 1])
{
    char args[256];
    struct out o;
    json_t *j;

    snprintf(args, sizeof args, "apikey create %s it-%s-%s --json", role, run, role);
    o = syctl(args);
    if (o.code != 0)
        fail_msg("syctl %s: exit %d: %s", args, o.code, o.text);
    j = json_loads(o.text, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "role")), role);
    snprintf(key, GW_APIKEY_LEN + 1, "%s", json_string_value(json_object_get(j, "key")));
    snprintf(id, GW_APIKEY_ID_LEN + 1, "%s", json_string_value(json_object_get(j, "id")));
    assert_int_equal(strlen(key), GW_APIKEY_LEN);
    json_decref(j);
}

static struct gw_auth *auth_new(const char *url)
{
    char err[256];
    struct gw_auth *a =
        gw_auth_new(url, JWT_SECRET, sizeof JWT_SECRET - 1, TTL_MS, err, sizeof err);

    if (!a)
        fail_msg("gw_auth_new: %s", err);
    return a;
}

static int check(struct gw_auth *a, const char *authorization, const char *x_api_key,
                 unsigned allowed, struct gw_principal *who)
{
    struct gw_response rs = {0};
    int rc = gw_auth_verify(a, authorization, x_api_key, allowed, NULL, &rs, who);

    if (rc != 0)
        assert_int_equal(rs.status, rc);
    json_decref(rs.json);
    return rc;
}

static void created_key_is_accepted_with_its_role(void **state)
{
    char key[GW_APIKEY_LEN + 1], id[GW_APIKEY_ID_LEN + 1], hdr[128];
    struct gw_auth *a = auth_new(th_need_env("SY_PG_URL"));
    struct gw_principal who = {0};
    struct sy_pg_res *res = NULL;
    const char *params[1];

    (void)state;
    create_key("agent", key, id);
    assert_int_equal(check(a, NULL, key, GW_ROLE_AGENT | GW_ROLE_ADMIN, &who), 0);
    assert_int_equal(who.role, GW_ROLE_AGENT);
    assert_string_equal(who.kind, "apikey");
    assert_string_equal(who.subject, id);
    snprintf(hdr, sizeof hdr, "Api-Key %s", key);
    assert_int_equal(check(a, hdr, NULL, GW_ROLE_AGENT, &who), 0);

    /* The first acceptance recorded its use; the stored hash is the secret's, not the key. */
    params[0] = id;
    assert_int_equal(sy_pg_exec(pg,
                                "SELECT last_used_at IS NOT NULL, encode(key_hash, 'hex')"
                                " FROM sy_api_keys WHERE id = $1",
                                1, params, &res),
                     0);
    assert_int_equal(sy_pg_res_rows(res), 1);
    assert_string_equal(sy_pg_res_get(res, 0, 0), "t");
    {
        uint8_t h[SY_SHA256_LEN];
        char hex[2 * SY_SHA256_LEN + 1];
        sy_sha256(key + 4 + GW_APIKEY_ID_LEN, GW_APIKEY_SEC_LEN, h);
        sy_hex_encode(h, sizeof h, hex);
        assert_string_equal(sy_pg_res_get(res, 0, 1), hex);
    }
    sy_pg_res_free(res);
    gw_auth_destroy(a);
}

static void wrong_secret_and_unknown_id_are_refused(void **state)
{
    char key[GW_APIKEY_LEN + 1], id[GW_APIKEY_ID_LEN + 1], bad[GW_APIKEY_LEN + 1];
    struct gw_auth *a = auth_new(th_need_env("SY_PG_URL"));
    struct gw_principal who;

    (void)state;
    create_key("chatbot", key, id);
    /* The first secret character carries six whole bits: any other letter is a canonical,
     * different secret. */
    snprintf(bad, sizeof bad, "%s", key);
    bad[4 + GW_APIKEY_ID_LEN] = bad[4 + GW_APIKEY_ID_LEN] == 'Q' ? 'R' : 'Q';
    assert_int_equal(check(a, NULL, bad, GW_ROLES_ALL, &who), 401);
    /* Still refused once the right key sits in the cache. */
    assert_int_equal(check(a, NULL, key, GW_ROLES_ALL, &who), 0);
    assert_int_equal(check(a, NULL, bad, GW_ROLES_ALL, &who), 401);
    /* The right secret under an id nobody made. */
    snprintf(bad, sizeof bad, "%s", key);
    memcpy(bad + 3, "000000000000", GW_APIKEY_ID_LEN);
    assert_int_equal(check(a, NULL, bad, GW_ROLES_ALL, &who), 401);
    gw_auth_destroy(a);
}

static void role_outside_the_allowed_ones_gets_403(void **state)
{
    char key[GW_APIKEY_LEN + 1], id[GW_APIKEY_ID_LEN + 1];
    struct gw_auth *a = auth_new(th_need_env("SY_PG_URL"));
    struct gw_principal who;

    (void)state;
    create_key("readonly", key, id);
    assert_int_equal(check(a, NULL, key, GW_ROLE_ADMIN | GW_ROLE_AGENT, &who), 403);
    assert_int_equal(check(a, NULL, key, GW_ROLE_READONLY, &who), 0);
    gw_auth_destroy(a);
}

static void revoked_key_is_refused_once_the_cache_forgot_it(void **state)
{
    char key[GW_APIKEY_LEN + 1], id[GW_APIKEY_ID_LEN + 1], args[128];
    struct gw_auth *a = auth_new(th_need_env("SY_PG_URL"));
    struct gw_principal who;
    struct out o;
    json_t *list;
    size_t i;
    json_t *row;
    bool found = false;
    int64_t t0;

    (void)state;
    create_key("admin", key, id);
    t0 = th_now_ms();
    assert_int_equal(check(a, NULL, key, GW_ROLE_ADMIN, &who), 0);
    snprintf(args, sizeof args, "apikey revoke %s", id);
    o = syctl(args);
    assert_int_equal(o.code, 0);
    /* Within the cache lifetime the verified key still passes without asking PostgreSQL (when
     * syctl was quick enough to leave some of that lifetime) ... */
    if (th_now_ms() - t0 < TTL_MS / 2)
        assert_int_equal(check(a, NULL, key, GW_ROLE_ADMIN, &who), 0);
    th_sleep_ms(TTL_MS + 200);
    /* ... and after it, the revoke holds. */
    assert_int_equal(check(a, NULL, key, GW_ROLE_ADMIN, &who), 401);
    /* A fresh gateway refuses it at once. */
    gw_auth_destroy(a);
    a = auth_new(th_need_env("SY_PG_URL"));
    assert_int_equal(check(a, NULL, key, GW_ROLE_ADMIN, &who), 401);
    gw_auth_destroy(a);

    /* list shows it revoked, and no hash of any key. */
    o = syctl("apikey list --json");
    assert_int_equal(o.code, 0);
    list = json_loads(o.text, 0, NULL);
    assert_true(json_is_array(list));
    json_array_foreach(list, i, row)
    {
        assert_null(json_object_get(row, "key_hash"));
        assert_null(json_object_get(row, "key"));
        if (strcmp(json_string_value(json_object_get(row, "id")), id) == 0) {
            found = true;
            assert_true(json_is_string(json_object_get(row, "revoked")));
            assert_true(json_is_string(json_object_get(row, "last_used")));
            assert_string_equal(json_string_value(json_object_get(row, "role")), "admin");
        }
    }
    assert_true(found);
    json_decref(list);
    assert_null(strstr(o.text, key + 4 + GW_APIKEY_ID_LEN));

    /* Revoking an unknown id exits 4; a bad role exits 3. */
    assert_int_equal(syctl("apikey revoke 000000000000").code, 4);
    assert_int_equal(syctl("apikey create root it-nobody").code, 3);
}

static void postgres_away_answers_503(void **state)
{
    char key[GW_APIKEY_LEN + 1], id[GW_APIKEY_ID_LEN + 1];
    uint8_t hash[SY_SHA256_LEN];
    struct gw_auth *a = auth_new("postgresql://postgres@127.0.0.1:1/switchyard");
    struct gw_principal who;

    (void)state;
    assert_int_equal(gw_apikey_new(GW_ROLE_AGENT, "x", key, sizeof key, id, sizeof id, hash), 0);
    assert_int_equal(check(a, NULL, key, GW_ROLES_ALL, &who), 503);
    gw_auth_destroy(a);
}

static void jwt_is_accepted_or_refused(void **state)
{
    struct gw_auth *a = auth_new(th_need_env("SY_PG_URL"));
    char claims[256], tok[1024], hdr[1100];
    struct gw_principal who;
    long long now = th_now_ms() / 1000;

    (void)state;
    snprintf(claims, sizeof claims, "{\"sub\":\"bot-1\",\"role\":\"chatbot\",\"exp\":%lld}",
             now + 300);
    assert_int_equal(th_make_jwt(tok, sizeof tok, claims, JWT_SECRET, sizeof JWT_SECRET - 1), 0);
    snprintf(hdr, sizeof hdr, "Bearer %s", tok);
    assert_int_equal(check(a, hdr, NULL, GW_ROLE_CHATBOT, &who), 0);
    assert_int_equal(who.role, GW_ROLE_CHATBOT);
    assert_string_equal(who.subject, "bot-1");
    assert_int_equal(check(a, hdr, NULL, GW_ROLE_ADMIN, &who), 403);

    assert_int_equal(th_make_jwt(tok, sizeof tok, claims, "another secret", 14), 0);
    snprintf(hdr, sizeof hdr, "Bearer %s", tok);
    assert_int_equal(check(a, hdr, NULL, GW_ROLES_ALL, &who), 401);

    snprintf(claims, sizeof claims, "{\"role\":\"chatbot\",\"exp\":%lld}", now - 3600);
    assert_int_equal(th_make_jwt(tok, sizeof tok, claims, JWT_SECRET, sizeof JWT_SECRET - 1), 0);
    snprintf(hdr, sizeof hdr, "Bearer %s", tok);
    assert_int_equal(check(a, hdr, NULL, GW_ROLES_ALL, &who), 401);
    gw_auth_destroy(a);
}

/* Made-up keys cost a query each only within the rate limit (a burst of 50, then 20 a
 * second); beyond it they get 429 with Retry-After while a key the cache knows still passes,
 * an id already looked up is refused unasked, and the bucket refills with time. */
static void unknown_keys_are_rate_limited(void **state)
{
    char known[GW_APIKEY_LEN + 1], known_id[GW_APIKEY_ID_LEN + 1];
    char keys[200][GW_APIKEY_LEN + 1], id[GW_APIKEY_ID_LEN + 1];
    uint8_t hash[SY_SHA256_LEN];
    struct gw_auth *a;
    struct gw_principal who;
    struct gw_response rs = {0};
    int n401 = 0, n429 = 0, rc;
    char *metrics, err[256];

    (void)state;
    create_key("chatbot", known, known_id);
    for (size_t i = 0; i < 200; i++)
        assert_int_equal(
            gw_apikey_new(GW_ROLE_AGENT, "x", keys[i], sizeof keys[i], id, sizeof id, hash), 0);
    a = gw_auth_new(th_need_env("SY_PG_URL"), NULL, 0, 60000, err, sizeof err);
    if (!a)
        fail_msg("gw_auth_new: %s", err);
    assert_int_equal(check(a, NULL, known, GW_ROLES_ALL, &who), 0);
    for (size_t i = 0; i < 200; i++) {
        rc = gw_auth_verify(a, NULL, keys[i], GW_ROLES_ALL, NULL, &rs, &who);
        if (rc == 429) {
            n429++;
            assert_int_equal(rs.retry_after_s, 1);
        } else {
            assert_int_equal(rc, 401);
            n401++;
        }
        json_decref(rs.json);
        rs = (struct gw_response){0};
    }
    /* 50 at once less the known key's own lookup, plus what 20 a second refilled while the
     * loop ran (well under 5 s). */
    if (n401 < 49 || n401 >= 49 + 20 * 5)
        fail_msg("%d made-up keys were looked up, %d refused with 429", n401, n429);
    assert_int_equal(n401 + n429, 200);
    assert_int_equal(check(a, NULL, known, GW_ROLES_ALL, &who), 0);
    /* The first key was looked up: refused unasked, so not held up by the limit. */
    assert_int_equal(check(a, NULL, keys[0], GW_ROLES_ALL, &who), 401);
    metrics = sy_metrics_render();
    assert_non_null(strstr(metrics, "sy_gateway_key_lookups_refused_total"));
    free(metrics);
    th_sleep_ms(300); /* 6 more lookups */
    assert_int_equal(check(a, NULL, keys[199], GW_ROLES_ALL, &who), 401);
    gw_auth_destroy(a);
}

static int setup(void **state)
{
    char err[512], dir[1024];
    int rc;

    (void)state;
    th_run_id(run);
    pg = sy_pg_connect(th_need_env("SY_PG_URL"), err, sizeof err);
    if (!pg) {
        fprintf(stderr, "cannot connect to PostgreSQL: %s\n", err);
        return -1;
    }
    snprintf(dir, sizeof dir, "%s/schemas/sql/postgres", th_need_env("SY_SOURCE_DIR"));
    rc = sy_pg_migrate(pg, dir, NULL, NULL, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "migrate: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    char like[64];
    const char *params[1] = {like};

    (void)state;
    snprintf(like, sizeof like, "it-%s-%%", run);
    sy_pg_exec(pg, "DELETE FROM sy_api_keys WHERE name LIKE $1", 1, params, NULL);
    sy_pg_destroy(pg);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(created_key_is_accepted_with_its_role),
        cmocka_unit_test(wrong_secret_and_unknown_id_are_refused),
        cmocka_unit_test(role_outside_the_allowed_ones_gets_403),
        cmocka_unit_test(revoked_key_is_refused_once_the_cache_forgot_it),
        cmocka_unit_test(postgres_away_answers_503),
        cmocka_unit_test(jwt_is_accepted_or_refused),
        cmocka_unit_test(unknown_keys_are_rate_limited),
    };

    th_need_env("SY_PG_URL");
    th_need_env("SY_SOURCE_DIR");
    th_need_env("SYCTL_BIN");
    return cmocka_run_group_tests(tests, setup, teardown);
}
