/* test_gateway_auth.c - sy-gateway's authentication without a database: the API key format
 * made and parsed, HS256 tokens built here and verified (every refusal the gateway promises),
 * and the 401/403 answers of gw_auth_verify for tokens and headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/auth.h"
#include "gateway/http.h"
#include "sy/clock.h"
#include "sy/crypto.h"
#include "sy/err.h"

static const uint8_t SECRET[] = "a test secret of some length, 42 bytes ok";
#define NOW 1800000000LL

/* base64url of text, appended to out. */
static void b64_append(char *out, size_t outsz, const char *text, size_t len)
{
    char buf[8192];

    assert_true(sy_base64_encoded_len(len) < sizeof buf);
    sy_base64_encode(text, len, true, buf);
    assert_true(strlen(out) + strlen(buf) < outsz);
    strcat(out, buf);
}

/* A token of header and claims JSON, signed with key (or with an empty signature part when
 * key is NULL). */
static void make_jwt(char *out, size_t outsz, const char *header, const char *claims,
                     const uint8_t *key, size_t key_len)
{
    uint8_t mac[SY_SHA256_LEN];

    out[0] = '\0';
    b64_append(out, outsz, header, strlen(header));
    strcat(out, ".");
    b64_append(out, outsz, claims, strlen(claims));
    if (key) {
        sy_hmac_sha256(key, key_len, out, strlen(out), mac);
        strcat(out, ".");
        b64_append(out, outsz, (const char *)mac, sizeof mac);
    } else {
        strcat(out, ".");
    }
}

static const char *HS256 = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

static void signed_jwt(char *out, size_t outsz, const char *claims)
{
    make_jwt(out, outsz, HS256, claims, SECRET, sizeof SECRET - 1);
}

static int verify(const char *token, struct gw_jwt_claims *c, char *why, size_t why_len)
{
    return gw_jwt_verify(token, SECRET, sizeof SECRET - 1, NOW, 30, c, why, why_len);
}

static void assert_refused(const char *token, const char *why_has)
{
    struct gw_jwt_claims c;
    char why[128];

    assert_int_not_equal(verify(token, &c, why, sizeof why), 0);
    if (!strstr(why, why_has))
        fail_msg("reason \"%s\" does not mention \"%s\"", why, why_has);
}

static void roles_have_names_both_ways(void **state)
{
    (void)state;
    assert_int_equal(gw_role_parse("chatbot"), GW_ROLE_CHATBOT);
    assert_int_equal(gw_role_parse("agent"), GW_ROLE_AGENT);
    assert_int_equal(gw_role_parse("admin"), GW_ROLE_ADMIN);
    assert_int_equal(gw_role_parse("readonly"), GW_ROLE_READONLY);
    assert_int_equal(gw_role_parse("Admin"), 0);
    assert_int_equal(gw_role_parse(""), 0);
    assert_int_equal(gw_role_parse(NULL), 0);
    assert_string_equal(gw_role_name(GW_ROLE_AGENT), "agent");
    assert_null(gw_role_name(GW_ROLE_AGENT | GW_ROLE_ADMIN));
    assert_null(gw_role_name(0));
}

static void apikey_new_has_the_documented_format_and_parses_back(void **state)
{
    char key[GW_APIKEY_LEN + 1], key2[GW_APIKEY_LEN + 1], id[GW_APIKEY_ID_LEN + 1],
        id2[GW_APIKEY_ID_LEN + 1];
    uint8_t hash[32], hash2[32], want[32];

    (void)state;
    assert_int_equal(gw_apikey_new(GW_ROLE_AGENT, "desk", key, sizeof key, id, sizeof id, hash), 0);
    assert_int_equal(strlen(key), GW_APIKEY_LEN);
    assert_int_equal(strlen(id), 12);
    assert_memory_equal(key, "sy_", 3);
    assert_memory_equal(key + 3, id, 12);
    assert_int_equal(key[15], '_');
    assert_int_equal(strspn(id, "0123456789abcdef"), 12);
    /* The stored hash is the SHA-256 of the secret's text. */
    sy_sha256(key + 16, GW_APIKEY_SEC_LEN, want);
    assert_memory_equal(hash, want, 32);

    assert_int_equal(gw_apikey_parse(key, id2, hash2), 0);
    assert_string_equal(id2, id);
    assert_memory_equal(hash2, hash, 32);

    /* Two keys share nothing. */
    assert_int_equal(
        gw_apikey_new(GW_ROLE_AGENT, "desk", key2, sizeof key2, id2, sizeof id2, hash2), 0);
    assert_string_not_equal(key, key2);
    assert_memory_not_equal(hash, hash2, 32);
}

static void apikey_new_refuses_bad_arguments(void **state)
{
    char key[GW_APIKEY_LEN + 1], id[GW_APIKEY_ID_LEN + 1];
    uint8_t hash[32];

    (void)state;
    assert_int_equal(gw_apikey_new(0, "x", key, sizeof key, id, sizeof id, hash), -SY_EINVAL);
    assert_int_equal(
        gw_apikey_new(GW_ROLE_ADMIN | GW_ROLE_AGENT, "x", key, sizeof key, id, sizeof id, hash),
        -SY_EINVAL);
    assert_int_equal(gw_apikey_new(GW_ROLE_ADMIN, "", key, sizeof key, id, sizeof id, hash),
                     -SY_EINVAL);
    assert_int_equal(gw_apikey_new(GW_ROLE_ADMIN, "x", key, sizeof key - 1, id, sizeof id, hash),
                     -SY_EINVAL);
    assert_int_equal(gw_apikey_new(GW_ROLE_ADMIN, "x", key, sizeof key, id, sizeof id - 1, hash),
                     -SY_EINVAL);
}

static void apikey_parse_refuses_every_other_shape(void **state)
{
    char key[GW_APIKEY_LEN + 1], bad[GW_APIKEY_LEN + 8], id[GW_APIKEY_ID_LEN + 1];
    uint8_t hash[32];

    (void)state;
    assert_int_equal(gw_apikey_new(GW_ROLE_CHATBOT, "bot", key, sizeof key, id, sizeof id, hash),
                     0);
    assert_int_equal(gw_apikey_parse("", id, hash), -SY_EDECODE);
    assert_int_equal(gw_apikey_parse(NULL, id, hash), -SY_EDECODE);

    snprintf(bad, sizeof bad, "%s", key); /* prefix */
    bad[0] = 'x';
    assert_int_equal(gw_apikey_parse(bad, id, hash), -SY_EDECODE);
    snprintf(bad, sizeof bad, "%s", key); /* upper-case hex in the id */
    bad[3] = 'A';
    assert_int_equal(gw_apikey_parse(bad, id, hash), -SY_EDECODE);
    snprintf(bad, sizeof bad, "%s", key); /* separator */
    bad[15] = '-';
    assert_int_equal(gw_apikey_parse(bad, id, hash), -SY_EDECODE);
    snprintf(bad, sizeof bad, "%s", key); /* a character outside base64url */
    bad[20] = '+';
    assert_int_equal(gw_apikey_parse(bad, id, hash), -SY_EDECODE);
    snprintf(bad, sizeof bad, "%sA", key); /* one character too many */
    assert_int_equal(gw_apikey_parse(bad, id, hash), -SY_EDECODE);
    snprintf(bad, sizeof bad, "%.*s", GW_APIKEY_LEN - 1, key); /* one too few */
    assert_int_equal(gw_apikey_parse(bad, id, hash), -SY_EDECODE);
    snprintf(bad, sizeof bad, "%s", key); /* non-zero trailing bits of the last character */
    bad[GW_APIKEY_LEN - 1] = 'B';
    assert_int_equal(gw_apikey_parse(bad, id, hash), -SY_EDECODE);
}

static void jwt_valid_token_gives_its_claims(void **state)
{
    char tok[1024], why[128];
    struct gw_jwt_claims c;

    (void)state;
    signed_jwt(tok, sizeof tok,
               "{\"sub\":\"user-7\",\"role\":\"agent\",\"exp\":1800000600,\"iat\":1800000000,"
               "\"nbf\":1799999990}");
    assert_int_equal(verify(tok, &c, why, sizeof why), 0);
    assert_int_equal(c.role, GW_ROLE_AGENT);
    assert_string_equal(c.sub, "user-7");
    assert_int_equal(c.exp, 1800000600);
    assert_int_equal(c.iat, 1800000000);

    /* No typ, no sub: still fine. */
    make_jwt(tok, sizeof tok, "{\"alg\":\"HS256\"}", "{\"role\":\"readonly\",\"exp\":1800000001}",
             SECRET, sizeof SECRET - 1);
    assert_int_equal(verify(tok, &c, why, sizeof why), 0);
    assert_int_equal(c.role, GW_ROLE_READONLY);
    assert_string_equal(c.sub, "");
}

static void jwt_times_are_checked_with_leeway(void **state)
{
    char tok[1024];
    struct gw_jwt_claims c;

    (void)state;
    signed_jwt(tok, sizeof tok, "{\"role\":\"admin\",\"exp\":1799999900}");
    assert_refused(tok, "expired");
    signed_jwt(tok, sizeof tok, "{\"role\":\"admin\",\"exp\":1799999975}"); /* within 30 s */
    assert_int_equal(verify(tok, &c, NULL, 0), 0);
    signed_jwt(tok, sizeof tok, "{\"role\":\"admin\",\"exp\":1800000600,\"nbf\":1800000100}");
    assert_refused(tok, "not yet valid");
    signed_jwt(tok, sizeof tok, "{\"role\":\"admin\",\"exp\":1800000600,\"iat\":1800000100}");
    assert_refused(tok, "future");
    signed_jwt(tok, sizeof tok, "{\"role\":\"admin\"}");
    assert_refused(tok, "exp");
    signed_jwt(tok, sizeof tok, "{\"role\":\"admin\",\"exp\":\"1800000600\"}");
    assert_refused(tok, "exp");
    signed_jwt(tok, sizeof tok, "{\"role\":\"admin\",\"exp\":9223372036854775807}");
    assert_int_equal(verify(tok, &c, NULL, 0), 0);
    signed_jwt(tok, sizeof tok, "{\"role\":\"admin\",\"exp\":-9223372036854775807}");
    assert_refused(tok, "expired");
}

static void jwt_wrong_signature_is_refused(void **state)
{
    static const uint8_t other[] = "another secret";
    char tok[1024];
    size_t n;

    (void)state;
    make_jwt(tok, sizeof tok, HS256, "{\"role\":\"admin\",\"exp\":1800000600}", other,
             sizeof other - 1);
    assert_refused(tok, "signature does not match");

    /* A claim changed after signing. */
    signed_jwt(tok, sizeof tok, "{\"role\":\"readonly\",\"exp\":1800000600}");
    {
        char forged[1024] = "";
        const char *sig = strrchr(tok, '.');

        b64_append(forged, sizeof forged, HS256, strlen(HS256));
        strcat(forged, ".");
        b64_append(forged, sizeof forged, "{\"role\":\"admin\",\"exp\":1800000600}", 34);
        strcat(forged, sig);
        assert_refused(forged, "signature does not match");
    }
    /* A signature one bit off. */
    n = strlen(tok);
    tok[n - 2] = tok[n - 2] == 'A' ? 'B' : 'A';
    assert_refused(tok, "signature");
}

static void jwt_other_algorithms_are_refused(void **state)
{
    char tok[1024];

    (void)state;
    make_jwt(tok, sizeof tok, "{\"alg\":\"none\",\"typ\":\"JWT\"}",
             "{\"role\":\"admin\",\"exp\":1800000600}", NULL, 0);
    assert_refused(tok, "HS256");
    /* alg none with a valid HS256 signature appended still fails on alg. */
    make_jwt(tok, sizeof tok, "{\"alg\":\"none\"}", "{\"role\":\"admin\",\"exp\":1800000600}",
             SECRET, sizeof SECRET - 1);
    assert_refused(tok, "HS256");
    make_jwt(tok, sizeof tok, "{\"alg\":\"HS512\"}", "{\"role\":\"admin\",\"exp\":1800000600}",
             SECRET, sizeof SECRET - 1);
    assert_refused(tok, "HS256");
    make_jwt(tok, sizeof tok, "{\"alg\":\"hs256\"}", "{\"role\":\"admin\",\"exp\":1800000600}",
             SECRET, sizeof SECRET - 1);
    assert_refused(tok, "HS256");
    make_jwt(tok, sizeof tok, "{\"typ\":\"JWT\"}", "{\"role\":\"admin\",\"exp\":1800000600}",
             SECRET, sizeof SECRET - 1);
    assert_refused(tok, "HS256");
    make_jwt(tok, sizeof tok, "{\"alg\":\"HS256\",\"alg\":\"none\"}",
             "{\"role\":\"admin\",\"exp\":1800000600}", SECRET, sizeof SECRET - 1);
    assert_refused(tok, "header");
    make_jwt(tok, sizeof tok, "{\"alg\":\"HS256\",\"crit\":[\"b64\"]}",
             "{\"role\":\"admin\",\"exp\":1800000600}", SECRET, sizeof SECRET - 1);
    assert_refused(tok, "critical");
}

static void jwt_role_is_required_and_one_of_four(void **state)
{
    char tok[1024];

    (void)state;
    signed_jwt(tok, sizeof tok, "{\"sub\":\"u\",\"exp\":1800000600}");
    assert_refused(tok, "no role");
    signed_jwt(tok, sizeof tok, "{\"role\":\"root\",\"exp\":1800000600}");
    assert_refused(tok, "role");
    signed_jwt(tok, sizeof tok, "{\"role\":[\"admin\"],\"exp\":1800000600}");
    assert_refused(tok, "no role");
    signed_jwt(tok, sizeof tok, "{\"role\":\"admin\",\"sub\":42,\"exp\":1800000600}");
    assert_refused(tok, "sub");
}

static void jwt_malformed_text_is_refused(void **state)
{
    char tok[1024], bad[1100];
    struct gw_jwt_claims c;

    (void)state;
    signed_jwt(tok, sizeof tok, "{\"role\":\"admin\",\"exp\":1800000600}");
    assert_int_equal(verify(tok, &c, NULL, 0), 0);

    snprintf(bad, sizeof bad, "%s.", tok); /* trailing garbage */
    assert_refused(bad, "three");
    snprintf(bad, sizeof bad, "%s.xyz", tok);
    assert_refused(bad, "three");
    snprintf(bad, sizeof bad, "%s ", tok);
    assert_refused(bad, "signature");
    snprintf(bad, sizeof bad, "%s=", tok); /* padding where none belongs */
    assert_refused(bad, "padding");
    snprintf(bad, sizeof bad, "%s", tok); /* '+' is base64, not base64url */
    bad[3] = '+';
    assert_refused(bad, "header");
    snprintf(bad, sizeof bad, "%s", tok);
    memcpy(strchr(bad, '.') + 2, "!!", 2);
    assert_int_not_equal(verify(bad, &c, NULL, 0), 0);
    assert_refused("", "three");
    assert_refused("a.b", "three");
    assert_refused("..", "header");

    /* Claims that are JSON but not an object, or JSON with garbage after it. */
    signed_jwt(tok, sizeof tok, "[1,2]");
    assert_refused(tok, "claims");
    signed_jwt(tok, sizeof tok, "{\"role\":\"admin\",\"exp\":1800000600} x");
    assert_refused(tok, "claims");
}

static void jwt_size_and_secret_are_bounded(void **state)
{
    char *big = malloc(GW_JWT_MAX + 200), claims[GW_JWT_MAX];
    struct gw_jwt_claims c;
    char why[128];

    (void)state;
    assert_non_null(big);
    /* A real, valid token just over the limit. */
    snprintf(claims, sizeof claims, "{\"role\":\"admin\",\"exp\":1800000600,\"pad\":\"%0*d\"}",
             GW_JWT_MAX * 3 / 4 - 40, 0);
    signed_jwt(big, GW_JWT_MAX + 200, claims);
    assert_true(strlen(big) > GW_JWT_MAX);
    assert_int_equal(verify(big, &c, why, sizeof why), -SY_ETOOBIG);
    /* The same padding made shorter passes. */
    snprintf(claims, sizeof claims, "{\"role\":\"admin\",\"exp\":1800000600,\"pad\":\"%0*d\"}",
             GW_JWT_MAX * 3 / 4 - 200, 0);
    signed_jwt(big, GW_JWT_MAX + 200, claims);
    assert_true(strlen(big) <= GW_JWT_MAX);
    assert_int_equal(verify(big, &c, why, sizeof why), 0);
    /* No secret: no token passes. */
    assert_int_equal(gw_jwt_verify(big, NULL, 0, NOW, 30, &c, why, sizeof why), -SY_EINVAL);
    free(big);
}

/* gw_auth_verify without PostgreSQL: the answers for tokens and for missing credentials. */
static void verify_answers_401_and_403_for_tokens(void **state)
{
    struct gw_auth *a;
    struct gw_response rs = {0};
    struct gw_principal who;
    char tok[1024], hdr[1100], err[128], key[GW_APIKEY_LEN + 1], id[GW_APIKEY_ID_LEN + 1];
    uint8_t hash[32];
    char claims[128];
    long long exp = sy_wall_ms() / 1000 + 600;

    (void)state;
    a = gw_auth_new(NULL, SECRET, sizeof SECRET - 1, 1000, err, sizeof err);
    assert_non_null(a);
    snprintf(claims, sizeof claims, "{\"sub\":\"ops\",\"role\":\"agent\",\"exp\":%lld}", exp);
    signed_jwt(tok, sizeof tok, claims);

    snprintf(hdr, sizeof hdr, "Bearer %s", tok);
    assert_int_equal(gw_auth_verify(a, hdr, NULL, GW_ROLE_AGENT | GW_ROLE_ADMIN, NULL, &rs, &who),
                     0);
    assert_int_equal(who.role, GW_ROLE_AGENT);
    assert_string_equal(who.kind, "jwt");
    assert_string_equal(who.subject, "ops");
    snprintf(hdr, sizeof hdr, "bearer   %s", tok); /* scheme case and spaces */
    assert_int_equal(gw_auth_verify(a, hdr, NULL, GW_ROLES_ALL, NULL, &rs, &who), 0);

    assert_int_equal(gw_auth_verify(a, hdr, NULL, GW_ROLE_ADMIN, NULL, &rs, &who), 403);
    assert_int_equal(rs.status, 403);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(rs.json, "error"), "code")), "forbidden");

    assert_int_equal(gw_auth_verify(a, NULL, NULL, GW_ROLES_ALL, NULL, &rs, &who), 401);
    assert_int_equal(rs.status, 401);
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(rs.json, "error"), "message")),
               "Bearer"));
    assert_int_equal(gw_auth_verify(a, "Basic dXNlcjpwYXNz", NULL, GW_ROLES_ALL, NULL, &rs, &who),
                     401);
    assert_int_equal(gw_auth_verify(a, "Bearer", NULL, GW_ROLES_ALL, NULL, &rs, &who), 401);
    tok[strlen(tok) - 3] ^= 1;
    snprintf(hdr, sizeof hdr, "Bearer %s", tok);
    assert_int_equal(gw_auth_verify(a, hdr, NULL, GW_ROLES_ALL, NULL, &rs, &who), 401);
    /* A well-formed key with no database to vouch for it, and a malformed one. */
    assert_int_equal(gw_apikey_new(GW_ROLE_ADMIN, "k", key, sizeof key, id, sizeof id, hash), 0);
    assert_int_equal(gw_auth_verify(a, NULL, key, GW_ROLES_ALL, NULL, &rs, &who), 401);
    assert_int_equal(gw_auth_verify(a, NULL, "sy_nope", GW_ROLES_ALL, NULL, &rs, &who), 401);
    json_decref(rs.json);
    gw_auth_destroy(a);

    /* A secret shorter than the hash, or a negative cache lifetime, is refused at start. */
    assert_null(gw_auth_new(NULL, (const uint8_t *)"short", 5, 0, err, sizeof err));
    assert_non_null(strstr(err, "32"));
    assert_null(gw_auth_new(NULL, NULL, 0, -1, err, sizeof err));

    /* Without a secret, tokens are refused. */
    a = gw_auth_new(NULL, NULL, 0, 0, err, sizeof err);
    assert_non_null(a);
    signed_jwt(tok, sizeof tok, claims);
    snprintf(hdr, sizeof hdr, "Bearer %s", tok);
    memset(&rs, 0, sizeof rs);
    assert_int_equal(gw_auth_verify(a, hdr, NULL, GW_ROLES_ALL, NULL, &rs, &who), 401);
    json_decref(rs.json);
    gw_auth_destroy(a);
    gw_auth_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roles_have_names_both_ways),
        cmocka_unit_test(apikey_new_has_the_documented_format_and_parses_back),
        cmocka_unit_test(apikey_new_refuses_bad_arguments),
        cmocka_unit_test(apikey_parse_refuses_every_other_shape),
        cmocka_unit_test(jwt_valid_token_gives_its_claims),
        cmocka_unit_test(jwt_times_are_checked_with_leeway),
        cmocka_unit_test(jwt_wrong_signature_is_refused),
        cmocka_unit_test(jwt_other_algorithms_are_refused),
        cmocka_unit_test(jwt_role_is_required_and_one_of_four),
        cmocka_unit_test(jwt_malformed_text_is_refused),
        cmocka_unit_test(jwt_size_and_secret_are_bounded),
        cmocka_unit_test(verify_answers_401_and_403_for_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
