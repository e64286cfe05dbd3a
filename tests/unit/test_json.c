/* test_json.c - JSON ⇄ msgpack: exact bytes one way, exact values the other, edge numbers,
 * bin and ext, and the limits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sy/err.h"
#include "sy/json.h"
#include "sy/msg.h"

static void expect_packed(const char *json, const unsigned char *want, size_t wantlen)
{
    json_error_t jerr;
    json_t *j = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    void *out = NULL;
    size_t len = 0;

    if (!j)
        fail_msg("bad JSON in test: %s", jerr.text);
    assert_int_equal(sy_json_to_msgpack(j, &out, &len), 0);
    assert_int_equal(len, wantlen);
    assert_memory_equal(out, want, wantlen);
    free(out);
    json_decref(j);
}

/* Converts msgpack bytes to JSON and compares its compact text. */
static void expect_json(const void *p, size_t len, const char *want)
{
    char err[256];
    json_t *j = sy_msgpack_to_json(p, len, err, sizeof err);
    char *text;

    if (!j)
        fail_msg("conversion failed: %s", err);
    text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(text);
    assert_string_equal(text, want);
    free(text);
    json_decref(j);
}

static void expect_json_error(const void *p, size_t len, const char *why_part)
{
    char err[256];
    json_t *j = sy_msgpack_to_json(p, len, err, sizeof err);

    assert_null(j);
    if (!strstr(err, why_part))
        fail_msg("reason '%s' does not mention '%s'", err, why_part);
}

/* --- JSON → msgpack -------------------------------------------------------------------- */

static void test_scalars_pack_to_their_exact_msgpack(void **state)
{
    static const unsigned char one[] = {0x01};
    static const unsigned char neg[] = {0xff};
    static const unsigned char u8[] = {0xcc, 0xc8};
    static const unsigned char i8[] = {0xd0, 0x80};
    static const unsigned char max[] = {0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const unsigned char min[] = {0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned char real[] = {0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0};
    static const unsigned char real_int[] = {0xcb, 0x40, 0x00, 0, 0, 0, 0, 0, 0};
    static const unsigned char t[] = {0xc3}, f[] = {0xc2}, nil[] = {0xc0};
    static const unsigned char str[] = {0xa3, 'a', 0x00, 'b'};
    static const unsigned char utf8[] = {0xa2, 0xc3, 0xa9};

    expect_packed("1", one, sizeof one);
    expect_packed("-1", neg, sizeof neg);
    expect_packed("200", u8, sizeof u8);
    expect_packed("-128", i8, sizeof i8);
    expect_packed("9223372036854775807", max, sizeof max);
    expect_packed("-9223372036854775808", min, sizeof min);
    expect_packed("1.5", real, sizeof real);
    expect_packed("2.0", real_int, sizeof real_int); /* a real stays a float */
    expect_packed("true", t, 1);
    expect_packed("false", f, 1);
    expect_packed("null", nil, 1);
    expect_packed("\"a\\u0000b\"", str, sizeof str);
    expect_packed("\"\\u00e9\"", utf8, sizeof utf8);
}

static void test_containers_pack_in_document_order(void **state)
{
    static const unsigned char obj[] = {0x82, 0xa1, 'z', 0x90, 0xa1, 'a', 0x81, 0xa1, 'k', 0xc0};
    static const unsigned char arr[] = {0x93, 0x01, 0xa1, 'x', 0x80};

    expect_packed("{\"z\": [], \"a\": {\"k\": null}}", obj, sizeof obj);
    expect_packed("[1, \"x\", {}]", arr, sizeof arr);
}

static json_t *nested_arrays(int depth)
{
    json_t *j = json_array();

    for (int i = 1; i < depth; i++) {
        json_t *outer = json_array();
        json_array_append_new(outer, j);
        j = outer;
    }
    return j;
}

static void test_json_to_msgpack_limits(void **state)
{
    json_t *ok = nested_arrays(SY_MSG_MAX_DEPTH);
    json_t *deep = nested_arrays(SY_MSG_MAX_DEPTH + 1);
    json_t *bad = json_stringn_nocheck("\xff\xfe", 2);
    json_t *badkey = json_object();
    void *out = NULL;
    size_t len;

    assert_int_equal(sy_json_to_msgpack(ok, &out, &len), 0);
    assert_int_equal(len, SY_MSG_MAX_DEPTH);
    free(out);
    assert_int_equal(sy_json_to_msgpack(deep, &out, &len), -SY_EINVAL);
    assert_int_equal(sy_json_to_msgpack(bad, &out, &len), -SY_EINVAL);
    json_object_setn_new_nocheck(badkey, "\xc0\xaf", 2, json_true());
    assert_int_equal(sy_json_to_msgpack(badkey, &out, &len), -SY_EINVAL);
    assert_int_equal(sy_json_to_msgpack(NULL, &out, &len), -SY_EINVAL);
    json_decref(ok);
    json_decref(deep);
    json_decref(bad);
    json_decref(badkey);
}

static void test_json_to_msgpack_item_limit(void **state)
{
    json_t *arr = json_array();
    void *out = NULL;
    size_t len;

    for (size_t i = 0; i < SY_MSG_MAX_ITEMS; i++)
        json_array_append_new(arr, json_null());
    assert_int_equal(sy_json_to_msgpack(arr, &out, &len), 0);
    free(out);
    json_array_append_new(arr, json_null());
    assert_int_equal(sy_json_to_msgpack(arr, &out, &len), -SY_EINVAL);
    json_decref(arr);
}

/* --- msgpack → JSON -------------------------------------------------------------------- */

static void test_numbers_convert_exactly_or_to_reals_beyond_json_integers(void **state)
{
    static const unsigned char u64max[] = {0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const unsigned char i64max[] = {0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const unsigned char i64min[] = {0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned char f32[] = {0xca, 0x3f, 0xc0, 0x00, 0x00}; /* 1.5f */
    static const unsigned char f64[] = {0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0};
    static const unsigned char nan64[] = {0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0};
    static const unsigned char inf32[] = {0xca, 0x7f, 0x80, 0x00, 0x00};
    static const unsigned char ninf64[] = {0xcb, 0xff, 0xf0, 0, 0, 0, 0, 0, 0};
    char err[64];
    json_t *j;

    j = sy_msgpack_to_json(u64max, sizeof u64max, err, sizeof err);
    assert_true(json_is_real(j));
    assert_true(json_real_value(j) == 18446744073709551615.0);
    json_decref(j);
    expect_json(i64max, sizeof i64max, "9223372036854775807");
    expect_json(i64min, sizeof i64min, "-9223372036854775808");
    expect_json(f32, sizeof f32, "1.5");
    expect_json(f64, sizeof f64, "1.5");
    expect_json(nan64, sizeof nan64, "null");
    expect_json(inf32, sizeof inf32, "null");
    expect_json(ninf64, sizeof ninf64, "null");
}

static void test_bin_and_ext_become_tagged_base64(void **state)
{
    static const unsigned char bin0[] = {0xc4, 0x00};
    static const unsigned char bin1[] = {0xc4, 0x01, 0x00};
    static const unsigned char bin2[] = {0xc4, 0x02, 0x00, 0x01};
    static const unsigned char bin3[] = {0xc4, 0x03, 0x00, 0x01, 0x02};
    static const unsigned char bin4[] = {0xc4, 0x04, 0xff, 0xfe, 0xfd, 0xfc};
    static const unsigned char ts[] = {0xd6, 0xff, 0x65, 0x5a, 0x00, 0x00};

    expect_json(bin0, sizeof bin0, "{\"$bin\":\"\"}");
    expect_json(bin1, sizeof bin1, "{\"$bin\":\"AA==\"}");
    expect_json(bin2, sizeof bin2, "{\"$bin\":\"AAE=\"}");
    expect_json(bin3, sizeof bin3, "{\"$bin\":\"AAEC\"}");
    expect_json(bin4, sizeof bin4, "{\"$bin\":\"//79/A==\"}");
    expect_json(ts, sizeof ts, "{\"$ext\":-1,\"data\":\"ZVoAAA==\"}");
}

static void test_map_keys_that_are_not_strings_become_their_json_text(void **state)
{
    static const unsigned char m[] = {0x86, 0x01, 0xa1, 'a',  0xc0, 0xa1, 'b', 0xc3,
                                      0xa1, 'c',  0x92, 0x01, 0x02, 0xa1, 'd', 0xff,
                                      0xa1, 'e',  0xa1, 'k',  0xa1, 'f'};

    expect_json(m, sizeof m,
                "{\"1\":\"a\",\"null\":\"b\",\"true\":\"c\",\"[1,2]\":\"d\",\"-1\":\"e\","
                "\"k\":\"f\"}");
}

static void test_duplicate_keys_keep_the_first_value(void **state)
{
    static const unsigned char m[] = {0x83, 0xa1, 'k', 0x01, 0xa1, 'k', 0x02, 0x01, 0x03};
    static const unsigned char m2[] = {0x82, 0x01, 0x01, 0xa1, '1', 0x02};

    expect_json(m, sizeof m, "{\"k\":1,\"1\":3}");
    expect_json(m2, sizeof m2, "{\"1\":1}");
}

static void test_strings_and_nesting(void **state)
{
    static const unsigned char m[] = {0x82, 0xa1, 's',  0xa3, 'a',  0x00, 'b',
                                      0xa1, 'n',  0x92, 0x90, 0x81, 0xa0, 0xc2};
    static const unsigned char scalar[] = {0x2a};

    expect_json(m, sizeof m, "{\"s\":\"a\\u0000b\",\"n\":[[],{\"\":false}]}");
    expect_json(scalar, sizeof scalar, "42");
}

static void test_msgpack_to_json_applies_the_decode_limits(void **state)
{
    static const unsigned char huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const unsigned char trailing[] = {0x01, 0x02};
    static const unsigned char ext[] = {0xd4, 0x07, 0x00};
    static const unsigned char badutf8[] = {0xa1, 0xff};
    unsigned char deep[SY_MSG_MAX_DEPTH + 1];

    memset(deep, 0x91, sizeof deep);
    deep[SY_MSG_MAX_DEPTH] = 0x90;
    expect_json_error(huge, sizeof huge, "array of 4294967295 elements claims more");
    expect_json_error(trailing, sizeof trailing, "1 trailing bytes");
    expect_json_error(ext, sizeof ext, "ext type 7 not accepted");
    expect_json_error(badutf8, sizeof badutf8, "not valid UTF-8");
    expect_json_error(deep, sizeof deep, "nested deeper than 16");
    expect_json_error("", 0, "empty body");
    deep[SY_MSG_MAX_DEPTH - 1] = 0x90;
    expect_json(deep, SY_MSG_MAX_DEPTH, "[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]");
}

static void test_round_trip_is_exact(void **state)
{
    const char *text = "{\"id\":\"G-1\",\"n\":-42,\"big\":9223372036854775807,\"r\":0.1,"
                       "\"ok\":true,\"no\":null,\"list\":[1,\"two\",[3.5,{}]],"
                       "\"nested\":{\"a\":{\"b\":\"\\u00e9\\u4e2d\"}}}";
    json_error_t jerr;
    json_t *in = json_loads(text, 0, &jerr), *out;
    void *mp;
    size_t len;
    char err[64];

    assert_non_null(in);
    assert_int_equal(sy_json_to_msgpack(in, &mp, &len), 0);
    out = sy_msgpack_to_json(mp, len, err, sizeof err);
    assert_non_null(out);
    assert_true(json_equal(in, out));
    json_decref(in);
    json_decref(out);
    free(mp);
}

static void test_msg_data_json_converts_the_data_map(void **state)
{
    static const unsigned char data[] = {0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0xc4, 0x01, 0x2a};
    void *env;
    size_t len;
    struct sy_msg *msg = NULL;
    char err[128];
    json_t *j;
    char *text;

    assert_int_equal(sy_msg_encode("t.x", "i", "s", 1, data, sizeof data, &env, &len), 0);
    assert_int_equal(sy_msg_decode(env, len, &msg, err, sizeof err), 0);
    j = sy_msg_data_json(msg);
    assert_non_null(j);
    text = json_dumps(j, JSON_COMPACT);
    assert_string_equal(text, "{\"a\":1,\"b\":{\"$bin\":\"Kg==\"}}");
    free(text);
    json_decref(j);
    sy_msg_destroy(msg);
    free(env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars_pack_to_their_exact_msgpack),
        cmocka_unit_test(test_containers_pack_in_document_order),
        cmocka_unit_test(test_json_to_msgpack_limits),
        cmocka_unit_test(test_json_to_msgpack_item_limit),
        cmocka_unit_test(test_numbers_convert_exactly_or_to_reals_beyond_json_integers),
        cmocka_unit_test(test_bin_and_ext_become_tagged_base64),
        cmocka_unit_test(test_map_keys_that_are_not_strings_become_their_json_text),
        cmocka_unit_test(test_duplicate_keys_keep_the_first_value),
        cmocka_unit_test(test_strings_and_nesting),
        cmocka_unit_test(test_msgpack_to_json_applies_the_decode_limits),
        cmocka_unit_test(test_round_trip_is_exact),
        cmocka_unit_test(test_msg_data_json_converts_the_data_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
