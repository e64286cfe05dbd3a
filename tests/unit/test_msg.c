/* test_msg.c - the envelope: round trips, field errors, the pre-decode scan, path access and
 * verdicts. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mpscan_int.h"
#include "sy/err.h"
#include "sy/msg.h"

/* --- helpers --------------------------------------------------------------------------- */

static void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* The data map most tests read:
 * {name: "Asha", n: 5, neg: -3, big: 2^64-1, ok: true, f: 1.5, none: nil, raw: bin(00 01 02),
 *  nul: "a\0b", files: [{file_id: "f0"}, {file_id: "f1", size: 10}], nested: {a: {b: "deep"}}}
 */
static void pack_data(msgpack_sbuffer *sb)
{
    msgpack_packer pk;

    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 11);
    pk_str(&pk, "name");
    pk_str(&pk, "Asha");
    pk_str(&pk, "n");
    msgpack_pack_int(&pk, 5);
    pk_str(&pk, "neg");
    msgpack_pack_int(&pk, -3);
    pk_str(&pk, "big");
    msgpack_pack_uint64(&pk, UINT64_MAX);
    pk_str(&pk, "ok");
    msgpack_pack_true(&pk);
    pk_str(&pk, "f");
    msgpack_pack_double(&pk, 1.5);
    pk_str(&pk, "none");
    msgpack_pack_nil(&pk);
    pk_str(&pk, "raw");
    msgpack_pack_bin(&pk, 3);
    msgpack_pack_bin_body(&pk, "\x00\x01\x02", 3);
    pk_str(&pk, "nul");
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "a\0b", 3);
    pk_str(&pk, "files");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_map(&pk, 1);
    pk_str(&pk, "file_id");
    pk_str(&pk, "f0");
    msgpack_pack_map(&pk, 2);
    pk_str(&pk, "file_id");
    pk_str(&pk, "f1");
    pk_str(&pk, "size");
    msgpack_pack_int(&pk, 10);
    pk_str(&pk, "nested");
    msgpack_pack_map(&pk, 1);
    pk_str(&pk, "a");
    msgpack_pack_map(&pk, 1);
    pk_str(&pk, "b");
    pk_str(&pk, "deep");
}

static struct sy_msg *decode_ok(const void *p, size_t len)
{
    char err[256];
    struct sy_msg *msg = NULL;
    int rc = sy_msg_decode(p, len, &msg, err, sizeof err);

    if (rc != 0)
        fail_msg("decode failed: %s", err);
    return msg;
}

static struct sy_msg *sample_msg(void)
{
    msgpack_sbuffer data;
    void *env;
    size_t len;
    struct sy_msg *msg;

    msgpack_sbuffer_init(&data);
    pack_data(&data);
    assert_int_equal(sy_msg_encode("grievance.submitted", "id-1", "gateway", 1700000000123,
                                   data.data, data.size, &env, &len),
                     0);
    msg = decode_ok(env, len);
    free(env);
    msgpack_sbuffer_destroy(&data);
    return msg;
}

/* An envelope with the six fields in order, where field `omit` is left out and field
 * `replace` gets its value from `value` instead. */
enum val_kind {
    V_NIL,
    V_INT,
    V_NEG,
    V_BIG,
    V_STR,
    V_EMPTY,
    V_LONG,
    V_NULSTR,
    V_ARRAY,
    V_MAP,
    V_FLOAT,
    V_BADTYPE
};

static void pack_value(msgpack_packer *pk, enum val_kind k)
{
    char longs[200];

    switch (k) {
    case V_NIL:
        msgpack_pack_nil(pk);
        break;
    case V_INT:
        msgpack_pack_int(pk, 7);
        break;
    case V_NEG:
        msgpack_pack_int(pk, -1);
        break;
    case V_BIG:
        msgpack_pack_uint64(pk, UINT64_MAX);
        break;
    case V_STR:
        pk_str(pk, "text");
        break;
    case V_EMPTY:
        pk_str(pk, "");
        break;
    case V_LONG:
        memset(longs, 'x', sizeof longs - 1);
        longs[sizeof longs - 1] = '\0';
        pk_str(pk, longs);
        break;
    case V_NULSTR:
        msgpack_pack_str(pk, 3);
        msgpack_pack_str_body(pk, "a\0b", 3);
        break;
    case V_ARRAY:
        msgpack_pack_array(pk, 0);
        break;
    case V_MAP:
        msgpack_pack_map(pk, 0);
        break;
    case V_FLOAT:
        msgpack_pack_double(pk, 1.0);
        break;
    case V_BADTYPE:
        pk_str(pk, "Grievance.Submitted");
        break;
    }
}

static void pack_env(msgpack_sbuffer *sb, const char *omit, const char *replace, enum val_kind kind)
{
    static const char *const names[] = {"v", "id", "type", "ts", "source", "data"};
    msgpack_packer pk;
    unsigned n = 6;

    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    if (omit)
        n--;
    msgpack_pack_map(&pk, n + 1);
    pk_str(&pk, "extra"); /* unknown top-level keys are ignored */
    pk_str(&pk, "ignored");
    for (size_t i = 0; i < 6; i++) {
        if (omit && strcmp(omit, names[i]) == 0)
            continue;
        pk_str(&pk, names[i]);
        if (replace && strcmp(replace, names[i]) == 0) {
            pack_value(&pk, kind);
            continue;
        }
        switch (i) {
        case 0:
            msgpack_pack_int(&pk, 1);
            break;
        case 1:
            pk_str(&pk, "id-1");
            break;
        case 2:
            pk_str(&pk, "probe.work");
            break;
        case 3:
            msgpack_pack_int64(&pk, 1700000000000);
            break;
        case 4:
            pk_str(&pk, "test");
            break;
        case 5:
            msgpack_pack_map(&pk, 0);
            break;
        }
    }
}

static void expect_env_error(const char *omit, const char *replace, enum val_kind kind,
                             const char *reason)
{
    msgpack_sbuffer sb;
    struct sy_msg *msg = NULL;
    char err[256];
    int rc;

    msgpack_sbuffer_init(&sb);
    pack_env(&sb, omit, replace, kind);
    rc = sy_msg_decode(sb.data, sb.size, &msg, err, sizeof err);
    assert_int_equal(rc, -SY_ESCHEMA);
    assert_null(msg);
    assert_string_equal(err, reason);
    msgpack_sbuffer_destroy(&sb);
}

static int scan(const void *p, size_t len, char *err, size_t errlen)
{
    return sy_mpscan(p, len, NULL, NULL, err, errlen);
}

static void expect_scan_fails(const void *p, size_t len, const char *why_part)
{
    char err[256];
    struct sy_msg *msg = NULL;

    assert_int_equal(scan(p, len, err, sizeof err), -SY_EDECODE);
    if (!strstr(err, why_part))
        fail_msg("reason '%s' does not mention '%s'", err, why_part);
    /* sy_msg_decode runs the same scan before msgpack-c sees anything. */
    assert_int_equal(sy_msg_decode(p, len, &msg, err, sizeof err), -SY_EDECODE);
    assert_null(msg);
}

/* --- round trip ------------------------------------------------------------------------ */

static void test_encode_decode_round_trip_keeps_every_field(void **state)
{
    struct sy_msg *msg = sample_msg();
    const void *body;
    size_t len;

    assert_int_equal(sy_msg_version(msg), 1);
    assert_string_equal(sy_msg_id(msg), "id-1");
    assert_string_equal(sy_msg_type(msg), "grievance.submitted");
    assert_string_equal(sy_msg_source(msg), "gateway");
    assert_int_equal(sy_msg_ts_ms(msg), 1700000000123);
    assert_int_equal(sy_msg_attempt(msg), 1);
    body = sy_msg_body(msg, &len);
    assert_non_null(body);
    assert_true(len > 60);
    /* The body is the message's own copy and decodes again to the same id. */
    {
        struct sy_msg *again = decode_ok(body, len);
        assert_string_equal(sy_msg_id(again), "id-1");
        sy_msg_destroy(again);
    }
    sy_msg_destroy(msg);
}

static void test_encode_fills_fresh_id_and_now(void **state)
{
    static const unsigned char empty_map[] = {0x80};
    void *env;
    size_t len;
    struct sy_msg *msg;
    struct timespec now;
    int64_t now_ms;
    const char *id;

    clock_gettime(CLOCK_REALTIME, &now);
    now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    assert_int_equal(sy_msg_encode("a.b", NULL, "src", 0, empty_map, 1, &env, &len), 0);
    msg = decode_ok(env, len);
    id = sy_msg_id(msg);
    assert_int_equal(strlen(id), 36);
    assert_int_equal(id[14], '4');
    assert_true(strchr("89ab", id[19]) != NULL);
    assert_true(sy_msg_ts_ms(msg) >= now_ms && sy_msg_ts_ms(msg) < now_ms + 60000);
    sy_msg_destroy(msg);
    free(env);
}

static void test_encode_refuses_bad_arguments(void **state)
{
    static const unsigned char map[] = {0x81, 0xa1, 'k', 0x01};
    static const unsigned char arr[] = {0x91, 0x01};
    static const unsigned char trailing[] = {0x80, 0x00};
    static const unsigned char truncated[] = {0x81, 0xa1, 'k'};
    char longid[SY_MSG_ID_MAX + 2];
    void *env = (void *)1;
    size_t len;

    memset(longid, 'i', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    assert_int_equal(sy_msg_encode("Bad.Type", NULL, "s", 0, map, sizeof map, &env, &len),
                     -SY_EINVAL);
    assert_int_equal(sy_msg_encode("a..b", NULL, "s", 0, map, sizeof map, &env, &len), -SY_EINVAL);
    assert_int_equal(sy_msg_encode("a.b", NULL, "", 0, map, sizeof map, &env, &len), -SY_EINVAL);
    assert_int_equal(sy_msg_encode("a.b", "", "s", 0, map, sizeof map, &env, &len), -SY_EINVAL);
    assert_int_equal(sy_msg_encode("a.b", longid, "s", 0, map, sizeof map, &env, &len), -SY_EINVAL);
    assert_int_equal(sy_msg_encode("a.b", NULL, "s", -1, map, sizeof map, &env, &len), -SY_EINVAL);
    assert_int_equal(sy_msg_encode("a.b", NULL, "s", 0, arr, sizeof arr, &env, &len), -SY_EINVAL);
    assert_int_equal(sy_msg_encode("a.b", NULL, "s", 0, trailing, sizeof trailing, &env, &len),
                     -SY_EINVAL);
    assert_int_equal(sy_msg_encode("a.b", NULL, "s", 0, truncated, sizeof truncated, &env, &len),
                     -SY_EINVAL);
    assert_null(env);
}

static void pack_nested_maps(msgpack_sbuffer *sb, int depth)
{
    msgpack_packer pk;

    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    for (int i = 0; i < depth - 1; i++) {
        msgpack_pack_map(&pk, 1);
        pk_str(&pk, "k");
    }
    msgpack_pack_map(&pk, 0);
}

static void test_encode_refuses_data_that_would_nest_too_deep_once_wrapped(void **state)
{
    msgpack_sbuffer sb;
    void *env;
    size_t len;

    /* SY_MSG_MAX_DEPTH nested maps are fine alone, one level too many inside the envelope. */
    msgpack_sbuffer_init(&sb);
    pack_nested_maps(&sb, SY_MSG_MAX_DEPTH);
    assert_int_equal(sy_mpscan(sb.data, sb.size, NULL, NULL, NULL, 0), 0);
    assert_int_equal(sy_msg_encode("a.b", NULL, "s", 0, sb.data, sb.size, &env, &len), -SY_EINVAL);
    msgpack_sbuffer_destroy(&sb);

    msgpack_sbuffer_init(&sb);
    pack_nested_maps(&sb, SY_MSG_MAX_DEPTH - 1);
    assert_int_equal(sy_msg_encode("a.b", NULL, "s", 0, sb.data, sb.size, &env, &len), 0);
    sy_msg_destroy(decode_ok(env, len));
    free(env);
    msgpack_sbuffer_destroy(&sb);
}

/* --- envelope field errors ------------------------------------------------------------- */

static void test_envelope_missing_fields_are_named(void **state)
{
    expect_env_error("v", NULL, V_NIL, "envelope.v: missing");
    expect_env_error("id", NULL, V_NIL, "envelope.id: missing");
    expect_env_error("type", NULL, V_NIL, "envelope.type: missing");
    expect_env_error("ts", NULL, V_NIL, "envelope.ts: missing");
    expect_env_error("source", NULL, V_NIL, "envelope.source: missing");
    expect_env_error("data", NULL, V_NIL, "envelope.data: missing");
}

static void test_envelope_wrong_types_are_named(void **state)
{
    expect_env_error(NULL, "v", V_STR, "envelope.v: expected an integer, got str");
    expect_env_error(NULL, "v", V_FLOAT, "envelope.v: expected an integer, got float");
    expect_env_error(NULL, "v", V_NEG, "envelope.v: -1, at least 1");
    expect_env_error(NULL, "v", V_BIG, "envelope.v: 18446744073709551615, at most 2147483647");
    expect_env_error(NULL, "id", V_INT, "envelope.id: expected a string, got int");
    expect_env_error(NULL, "id", V_EMPTY, "envelope.id: empty");
    expect_env_error(NULL, "id", V_LONG, "envelope.id: 199 bytes, at most 128");
    expect_env_error(NULL, "id", V_NULSTR, "envelope.id: contains a NUL byte");
    expect_env_error(NULL, "type", V_NIL, "envelope.type: expected a string, got nil");
    expect_env_error(NULL, "type", V_BADTYPE,
                     "envelope.type: not a routing key (words of a-z, 0-9 and _ joined by dots)");
    expect_env_error(NULL, "ts", V_STR, "envelope.ts: expected an integer, got str");
    expect_env_error(NULL, "ts", V_NEG, "envelope.ts: -1, at least 0");
    expect_env_error(NULL, "ts", V_BIG,
                     "envelope.ts: 18446744073709551615, at most 9223372036854775807");
    expect_env_error(NULL, "source", V_ARRAY, "envelope.source: expected a string, got array");
    expect_env_error(NULL, "data", V_ARRAY, "envelope.data: expected a map, got array");
    expect_env_error(NULL, "data", V_NIL, "envelope.data: expected a map, got nil");
}

static void test_envelope_not_a_map_and_duplicate_fields(void **state)
{
    static const unsigned char arr[] = {0x91, 0x01};
    /* {"v":1,"v":2, ...} is ambiguous: refused. */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    struct sy_msg *msg = NULL;
    char err[256];

    assert_int_equal(sy_msg_decode(arr, sizeof arr, &msg, err, sizeof err), -SY_ESCHEMA);
    assert_string_equal(err, "envelope: expected a map, got array");

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    pk_str(&pk, "id");
    pk_str(&pk, "a");
    pk_str(&pk, "id");
    pk_str(&pk, "b");
    assert_int_equal(sy_msg_decode(sb.data, sb.size, &msg, err, sizeof err), -SY_ESCHEMA);
    assert_string_equal(err, "envelope.id: given twice");
    assert_null(msg);
    msgpack_sbuffer_destroy(&sb);
}

static void test_envelope_keys_in_any_order_and_unknown_keys_ignored(void **state)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    struct sy_msg *msg;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 8);
    pk_str(&pk, "data");
    msgpack_pack_map(&pk, 0);
    msgpack_pack_int(&pk, 42); /* a non-string key */
    pk_str(&pk, "whatever");
    pk_str(&pk, "source");
    pk_str(&pk, "s");
    pk_str(&pk, "ts");
    msgpack_pack_int(&pk, 0);
    pk_str(&pk, "type");
    pk_str(&pk, "x_1.y2");
    pk_str(&pk, "future");
    msgpack_pack_array(&pk, 0);
    pk_str(&pk, "id");
    pk_str(&pk, "i");
    pk_str(&pk, "v");
    msgpack_pack_int(&pk, 3);
    msg = decode_ok(sb.data, sb.size);
    assert_int_equal(sy_msg_version(msg), 3);
    assert_string_equal(sy_msg_type(msg), "x_1.y2");
    assert_int_equal(sy_msg_ts_ms(msg), 0);
    sy_msg_destroy(msg);
    msgpack_sbuffer_destroy(&sb);
}

/* --- the scan -------------------------------------------------------------------------- */

static void test_scan_rejects_claimed_huge_containers_and_lengths(void **state)
{
    static const unsigned char arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x00};
    static const unsigned char map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0x00};
    static const unsigned char arr16[] = {0xdc, 0x00, 0x03, 0x01, 0x02};
    static const unsigned char map16[] = {0xde, 0x00, 0x02, 0xa1, 'k', 0x01};
    static const unsigned char str32[] = {0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'};
    static const unsigned char bin32[] = {0xc6, 0xff, 0xff, 0xff, 0xff, 'a'};
    static const unsigned char ext32[] = {0xc9, 0xff, 0xff, 0xff, 0xff, 0xff, 'a'};
    static const unsigned char env_arr[] = {0x81, 0xa4, 'd',  'a',  't', 'a',
                                            0xdd, 0xff, 0xff, 0xff, 0xff};

    expect_scan_fails(arr32, sizeof arr32, "array of 4294967295 elements");
    expect_scan_fails(map32, sizeof map32, "map of 4294967295 entries");
    expect_scan_fails(arr16, sizeof arr16, "array of 3 elements");
    expect_scan_fails(map16, sizeof map16, "map of 2 entries");
    expect_scan_fails(str32, sizeof str32, "length 2147483647 claims more");
    expect_scan_fails(bin32, sizeof bin32, "length 4294967295 claims more");
    expect_scan_fails(ext32, sizeof ext32, "length 4294967295 claims more");
    expect_scan_fails(env_arr, sizeof env_arr, "claims more than the 0 bytes left");
}

static void test_scan_rejects_truncated_trailing_reserved_and_empty(void **state)
{
    static const unsigned char trunc_map[] = {0x82, 0xa1, 'a', 0x01, 0xa1};
    static const unsigned char trunc_nested[] = {0x92, 0x91, 0xc0};
    static const unsigned char trunc_u32[] = {0xce, 0x00, 0x01};
    static const unsigned char trunc_hdr[] = {0xdc, 0x00};
    static const unsigned char trunc_str[] = {0xa5, 'a', 'b'};
    static const unsigned char trailing[] = {0x80, 0xc0};
    static const unsigned char reserved[] = {0x91, 0xc1};
    static const unsigned char text[] = "{\"v\": 1}";

    expect_scan_fails(trunc_map, sizeof trunc_map, "length 1 claims more than the 0 bytes");
    expect_scan_fails(trunc_map, 4, "map of 2 entries claims more than the 3 bytes left");
    expect_scan_fails(trunc_nested, sizeof trunc_nested, "truncated: another object expected");
    expect_scan_fails(trunc_u32, sizeof trunc_u32, "truncated value");
    expect_scan_fails(trunc_hdr, sizeof trunc_hdr, "truncated header");
    expect_scan_fails(trunc_str, sizeof trunc_str, "length 5 claims more than the 2 bytes");
    expect_scan_fails(trailing, sizeof trailing, "1 trailing bytes");
    expect_scan_fails(reserved, sizeof reserved, "reserved byte 0xc1");
    expect_scan_fails(text, sizeof text - 1, "trailing bytes");
    expect_scan_fails("", 0, "empty body");
}

static void test_scan_rejects_ext_types_but_timestamps(void **state)
{
    static const unsigned char ext5[] = {0xd4, 0x05, 0x00};
    static const unsigned char ts32[] = {0xd6, 0xff, 0x65, 0x00, 0x00, 0x00};
    static const unsigned char ts64[] = {0xd7, 0xff, 0, 0, 0, 0, 0x65, 0, 0, 0};
    static const unsigned char ts96[] = {0xc7, 12, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char ts_bad_size[] = {0xd4, 0xff, 0x00};
    static const unsigned char ts_bad_nsec[] = {0xc7, 12, 0xff, 0xff, 0xff, 0xff, 0xff, 0,
                                                0,    0,  0,    0,    0,    0,    1};
    char err[128];

    expect_scan_fails(ext5, sizeof ext5, "ext type 5 not accepted");
    expect_scan_fails(ts_bad_size, sizeof ts_bad_size, "malformed timestamp of 1 bytes");
    expect_scan_fails(ts_bad_nsec, sizeof ts_bad_nsec, "malformed timestamp of 12 bytes");
    assert_int_equal(scan(ts32, sizeof ts32, err, sizeof err), 0);
    assert_int_equal(scan(ts64, sizeof ts64, err, sizeof err), 0);
    assert_int_equal(scan(ts96, sizeof ts96, err, sizeof err), 0);
}

static void test_scan_rejects_invalid_utf8(void **state)
{
    static const unsigned char lone_cont[] = {0xa1, 0x80};
    static const unsigned char overlong[] = {0xa2, 0xc0, 0xaf};
    static const unsigned char surrogate[] = {0xa3, 0xed, 0xa0, 0x80};
    static const unsigned char as_key[] = {0x81, 0xa1, 0xff, 0x01};
    static const unsigned char fine[] = {0xa4, 0xf0, 0x9f, 0x98, 0x80};

    expect_scan_fails(lone_cont, sizeof lone_cont, "not valid UTF-8");
    expect_scan_fails(overlong, sizeof overlong, "not valid UTF-8");
    expect_scan_fails(surrogate, sizeof surrogate, "not valid UTF-8");
    expect_scan_fails(as_key, sizeof as_key, "not valid UTF-8");
    assert_int_equal(scan(fine, sizeof fine, NULL, 0), 0);
}

static void test_scan_depth_limit_is_exact(void **state)
{
    unsigned char buf[SY_MSG_MAX_DEPTH + 2];
    struct sy_mpscan_info info;

    /* SY_MSG_MAX_DEPTH nested arrays [[[...[]...]]] pass, one more fails. */
    memset(buf, 0x91, sizeof buf);
    buf[SY_MSG_MAX_DEPTH - 1] = 0x90;
    assert_int_equal(sy_mpscan(buf, SY_MSG_MAX_DEPTH, NULL, &info, NULL, 0), 0);
    assert_int_equal(info.depth, SY_MSG_MAX_DEPTH);
    assert_false(info.top_map);
    buf[SY_MSG_MAX_DEPTH - 1] = 0x91;
    buf[SY_MSG_MAX_DEPTH] = 0x90;
    expect_scan_fails(buf, SY_MSG_MAX_DEPTH + 1, "nested deeper than 16");
}

static void test_scan_item_limit_is_exact(void **state)
{
    size_t n = SY_MSG_MAX_ITEMS;
    unsigned char *buf = malloc(5 + n + 1);
    struct sy_mpscan_info info;

    assert_non_null(buf);
    buf[0] = 0xdd;
    buf[1] = (unsigned char)(n >> 24);
    buf[2] = (unsigned char)(n >> 16);
    buf[3] = (unsigned char)(n >> 8);
    buf[4] = (unsigned char)n;
    memset(buf + 5, 0xc0, n + 1);
    assert_int_equal(sy_mpscan(buf, 5 + n, NULL, &info, NULL, 0), 0);
    assert_int_equal(info.items, SY_MSG_MAX_ITEMS);
    n++;
    buf[1] = (unsigned char)(n >> 24);
    buf[2] = (unsigned char)(n >> 16);
    buf[3] = (unsigned char)(n >> 8);
    buf[4] = (unsigned char)n;
    expect_scan_fails(buf, 5 + n, "more than 100000 items");
    free(buf);
}

static void test_scan_rejects_oversized_body(void **state)
{
    size_t len = SY_MSG_MAX_BYTES + 1;
    unsigned char *buf = calloc(1, len);

    assert_non_null(buf);
    expect_scan_fails(buf, len, "8388609 bytes, at most 8388608");
    free(buf);
}

/* --- path access ----------------------------------------------------------------------- */

static void test_path_getters_read_nested_maps_and_arrays(void **state)
{
    struct sy_msg *msg = sample_msg();
    const char *s;
    size_t len;
    int64_t i;
    double d;
    bool b;
    const void *p;

    assert_int_equal(sy_msg_get_str(msg, "name", &s, &len), 0);
    assert_int_equal(len, 4);
    assert_memory_equal(s, "Asha", 4);
    assert_int_equal(sy_msg_get_str(msg, "files.1.file_id", &s, &len), 0);
    assert_memory_equal(s, "f1", 2);
    assert_int_equal(sy_msg_get_int(msg, "files.1.size", &i), 0);
    assert_int_equal(i, 10);
    assert_int_equal(sy_msg_get_str(msg, "nested.a.b", &s, &len), 0);
    assert_memory_equal(s, "deep", 4);
    assert_int_equal(sy_msg_get_int(msg, "n", &i), 0);
    assert_int_equal(i, 5);
    assert_int_equal(sy_msg_get_int(msg, "neg", &i), 0);
    assert_int_equal(i, -3);
    assert_int_equal(sy_msg_get_double(msg, "f", &d), 0);
    assert_true(d == 1.5);
    assert_int_equal(sy_msg_get_double(msg, "n", &d), 0);
    assert_true(d == 5.0);
    assert_int_equal(sy_msg_get_double(msg, "neg", &d), 0);
    assert_true(d == -3.0);
    assert_int_equal(sy_msg_get_bool(msg, "ok", &b), 0);
    assert_true(b);
    assert_int_equal(sy_msg_get_bin(msg, "raw", &p, &len), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(p, "\x00\x01\x02", 3);
    assert_int_equal(sy_msg_get_len(msg, "files", &len), 0);
    assert_int_equal(len, 2);
    assert_int_equal(sy_msg_get_len(msg, "files.1", &len), 0);
    assert_int_equal(len, 2);
    assert_int_equal(sy_msg_get_len(msg, "", &len), 0);
    assert_int_equal(len, 11);
    assert_true(sy_msg_has(msg, "files.0.file_id"));
    assert_false(sy_msg_has(msg, "files.2"));
    assert_false(sy_msg_has(msg, "none"));
    sy_msg_destroy(msg);
}

static void test_path_getters_report_missing_and_wrong_types(void **state)
{
    struct sy_msg *msg = sample_msg();
    const char *s;
    size_t len;
    int64_t i;
    double d;
    bool b;
    const void *p;

    assert_int_equal(sy_msg_get_str(msg, "nope", &s, &len), -SY_ENOTFOUND);
    assert_int_equal(sy_msg_get_str(msg, "none", &s, &len), -SY_ENOTFOUND);
    assert_int_equal(sy_msg_get_str(msg, "files.2.file_id", &s, &len), -SY_ENOTFOUND);
    assert_int_equal(sy_msg_get_str(msg, "files.01.file_id", &s, &len), -SY_ENOTFOUND);
    assert_int_equal(sy_msg_get_str(msg, "files.-1.file_id", &s, &len), -SY_ENOTFOUND);
    assert_int_equal(sy_msg_get_str(msg, "files.x", &s, &len), -SY_ENOTFOUND);
    assert_int_equal(sy_msg_get_str(msg, "files.99999999999999999999", &s, &len), -SY_ENOTFOUND);
    assert_int_equal(sy_msg_get_str(msg, "name.first", &s, &len), -SY_ENOTFOUND);
    assert_int_equal(sy_msg_get_str(msg, "files..0", &s, &len), -SY_EINVAL);
    assert_int_equal(sy_msg_get_str(msg, "name.", &s, &len), -SY_EINVAL);
    assert_int_equal(sy_msg_get_str(msg, ".name", &s, &len), -SY_EINVAL);
    assert_int_equal(sy_msg_get_str(msg, "nope..x", &s, &len), -SY_EINVAL);
    assert_int_equal(sy_msg_get_str(msg, "n", &s, &len), -SY_EINVAL);
    assert_int_equal(sy_msg_get_str(msg, "raw", &s, &len), -SY_EINVAL);
    assert_int_equal(sy_msg_get_int(msg, "name", &i), -SY_EINVAL);
    assert_int_equal(sy_msg_get_int(msg, "f", &i), -SY_EINVAL);
    assert_int_equal(sy_msg_get_int(msg, "big", &i), -SY_EINVAL);
    assert_int_equal(sy_msg_get_int(msg, "none", &i), -SY_ENOTFOUND);
    assert_int_equal(sy_msg_get_double(msg, "ok", &d), -SY_EINVAL);
    assert_int_equal(sy_msg_get_bool(msg, "n", &b), -SY_EINVAL);
    assert_int_equal(sy_msg_get_bin(msg, "name", &p, &len), -SY_EINVAL);
    assert_int_equal(sy_msg_get_len(msg, "name", &len), -SY_EINVAL);
    assert_int_equal(sy_msg_get_len(msg, "gone", &len), -SY_ENOTFOUND);
    sy_msg_destroy(msg);
}

static void test_copy_str_terminates_and_refuses_what_does_not_fit(void **state)
{
    struct sy_msg *msg = sample_msg();
    char buf[8];

    assert_int_equal(sy_msg_copy_str(msg, "name", buf, sizeof buf), 0);
    assert_string_equal(buf, "Asha");
    assert_int_equal(sy_msg_copy_str(msg, "name", buf, 5), 0); /* exactly fits with its NUL */
    assert_string_equal(buf, "Asha");
    assert_int_equal(sy_msg_copy_str(msg, "name", buf, 4), -SY_ETOOBIG);
    assert_string_equal(buf, "");
    assert_int_equal(sy_msg_copy_str(msg, "nul", buf, sizeof buf), -SY_EINVAL);
    assert_int_equal(sy_msg_copy_str(msg, "n", buf, sizeof buf), -SY_EINVAL);
    assert_int_equal(sy_msg_copy_str(msg, "missing", buf, sizeof buf), -SY_ENOTFOUND);
    sy_msg_destroy(msg);
}

/* --- verdicts and ids ------------------------------------------------------------------ */

static void test_fail_records_verdict_and_formatted_reason(void **state)
{
    struct sy_msg *msg = sample_msg();
    char big[3000];

    assert_int_equal(sy_msg_verdict(msg), SY_ACK);
    assert_string_equal(sy_msg_reason(msg), "");
    assert_int_equal(sy_msg_fail(msg, SY_REJECT, "field %s: %d", "priority", 12), SY_REJECT);
    assert_int_equal(sy_msg_verdict(msg), SY_REJECT);
    assert_string_equal(sy_msg_reason(msg), "field priority: 12");
    assert_int_equal(sy_msg_fail(msg, SY_RETRY, "db down"), SY_RETRY);
    assert_string_equal(sy_msg_reason(msg), "db down");

    memset(big, 'r', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sy_msg_fail(msg, SY_REJECT, "%s", big);
    assert_int_equal(strlen(sy_msg_reason(msg)), 1023);

    sy_msg_set_verdict(msg, SY_ACK);
    assert_int_equal(sy_msg_verdict(msg), SY_ACK);
    sy_msg_set_attempt(msg, 4);
    assert_int_equal(sy_msg_attempt(msg), 4);
    sy_msg_destroy(msg);
}

static void test_uuid4_is_canonical_and_fresh(void **state)
{
    char a[37], b[37];

    sy_uuid4(a);
    sy_uuid4(b);
    assert_int_equal(strlen(a), 36);
    assert_string_not_equal(a, b);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(a[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", a[i]));
    }
    assert_int_equal(a[14], '4');
}

static void test_decode_refuses_null_output(void **state)
{
    static const unsigned char m[] = {0x80};
    char err[64];

    assert_int_equal(sy_msg_decode(m, 1, NULL, err, sizeof err), -SY_EINVAL);
    sy_msg_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_decode_round_trip_keeps_every_field),
        cmocka_unit_test(test_encode_fills_fresh_id_and_now),
        cmocka_unit_test(test_encode_refuses_bad_arguments),
        cmocka_unit_test(test_encode_refuses_data_that_would_nest_too_deep_once_wrapped),
        cmocka_unit_test(test_envelope_missing_fields_are_named),
        cmocka_unit_test(test_envelope_wrong_types_are_named),
        cmocka_unit_test(test_envelope_not_a_map_and_duplicate_fields),
        cmocka_unit_test(test_envelope_keys_in_any_order_and_unknown_keys_ignored),
        cmocka_unit_test(test_scan_rejects_claimed_huge_containers_and_lengths),
        cmocka_unit_test(test_scan_rejects_truncated_trailing_reserved_and_empty),
        cmocka_unit_test(test_scan_rejects_ext_types_but_timestamps),
        cmocka_unit_test(test_scan_rejects_invalid_utf8),
        cmocka_unit_test(test_scan_depth_limit_is_exact),
        cmocka_unit_test(test_scan_item_limit_is_exact),
        cmocka_unit_test(test_scan_rejects_oversized_body),
        cmocka_unit_test(test_path_getters_read_nested_maps_and_arrays),
        cmocka_unit_test(test_path_getters_report_missing_and_wrong_types),
        cmocka_unit_test(test_copy_str_terminates_and_refuses_what_does_not_fit),
        cmocka_unit_test(test_fail_records_verdict_and_formatted_reason),
        cmocka_unit_test(test_uuid4_is_canonical_and_fresh),
        cmocka_unit_test(test_decode_refuses_null_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
