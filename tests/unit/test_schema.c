/* test_schema.c - schema loading (errors with file and line) and every check, with the exact
 * reason a dead-lettered message would carry. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sy/err.h"
#include "sy/json.h"
#include "sy/msg.h"
#include "sy/schema.h"

static char g_data_dir[1024];

static const char *data_dir(const char *sub, char *buf, size_t sz)
{
    snprintf(buf, sz, "%s/%s", g_data_dir, sub);
    return buf;
}

static struct sy_schemas *load_good(void)
{
    char dir[1200], err[512];
    struct sy_schemas *s = sy_schemas_load(data_dir("schemas", dir, sizeof dir), err, sizeof err);

    if (!s)
        fail_msg("loading the good schemas failed: %s", err);
    return s;
}

/* An envelope of `type` and version `v` around packed data. */
static struct sy_msg *msg_from_packed(const char *type, int v, const void *data, size_t len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    struct sy_msg *msg = NULL;
    char err[256];

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 6);
    msgpack_pack_str_with_body(&pk, "v", 1);
    msgpack_pack_int(&pk, v);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_str_with_body(&pk, "m-1", 3);
    msgpack_pack_str_with_body(&pk, "type", 4);
    msgpack_pack_str_with_body(&pk, type, strlen(type));
    msgpack_pack_str_with_body(&pk, "ts", 2);
    msgpack_pack_int64(&pk, 1700000000000);
    msgpack_pack_str_with_body(&pk, "source", 6);
    msgpack_pack_str_with_body(&pk, "test", 4);
    msgpack_pack_str_with_body(&pk, "data", 4);
    msgpack_sbuffer_write(&sb, data, len);
    if (sy_msg_decode(sb.data, sb.size, &msg, err, sizeof err) != 0)
        fail_msg("decode failed: %s", err);
    msgpack_sbuffer_destroy(&sb);
    return msg;
}

static struct sy_msg *msg_from_json(const char *type, int v, const char *json)
{
    json_error_t jerr;
    json_t *j = json_loads(json, 0, &jerr);
    void *data;
    size_t len;
    struct sy_msg *msg;

    if (!j)
        fail_msg("bad JSON in test: %s", jerr.text);
    assert_int_equal(sy_json_to_msgpack(j, &data, &len), 0);
    json_decref(j);
    msg = msg_from_packed(type, v, data, len);
    free(data);
    return msg;
}

/* A valid grievance with `patch` merged over it (null values in the patch delete keys unless
 * keep_nulls). */
static const char *const base_grievance =
    "{\"grievance_id\": \"G-1\", \"status\": \"pending\", \"priority\": 3, \"score\": 0.5,"
    " \"description\": \"water\", \"anonymous\": false, \"extra\": {\"x\": [1]},"
    " \"user_info\": {\"phone_number\": \"555\", \"name\": \"Asha\"},"
    " \"files\": [{\"file_id\": \"a\"}, {\"file_id\": \"b\", \"file_type\": \"pdf\"}],"
    " \"tags\": [\"t1\"], \"counts\": [1, \"two\"], \"unknown_field\": {\"ignored\": true}}";

static struct sy_msg *grievance(const char *patch_json, bool keep_nulls)
{
    json_error_t jerr;
    json_t *base = json_loads(base_grievance, 0, &jerr), *patch;
    const char *key;
    json_t *val;
    char *text;
    struct sy_msg *msg;

    assert_non_null(base);
    patch = json_loads(patch_json, 0, &jerr);
    if (!patch)
        fail_msg("bad JSON in test: %s", jerr.text);
    json_object_foreach(patch, key, val)
    {
        if (json_is_null(val) && !keep_nulls)
            json_object_del(base, key);
        else
            json_object_set(base, key, val);
    }
    text = json_dumps(base, 0);
    msg = msg_from_json("grievance.submitted", 1, text);
    free(text);
    json_decref(base);
    json_decref(patch);
    return msg;
}

static void expect_reason(const struct sy_schemas *s, struct sy_msg *msg, const char *reason)
{
    char err[512];
    int rc = sy_schemas_check(s, msg, err, sizeof err);

    if (!reason) {
        if (rc != 0)
            fail_msg("expected the message to pass, got: %s", err);
    } else {
        assert_int_equal(rc, -SY_ESCHEMA);
        assert_string_equal(err, reason);
    }
    sy_msg_destroy(msg);
}

#define PATCH(s, patch, reason)       expect_reason(s, grievance(patch, false), reason)
#define PATCH_NULLS(s, patch, reason) expect_reason(s, grievance(patch, true), reason)

/* --- loading --------------------------------------------------------------------------- */

static void test_load_reads_every_yaml_file_and_only_those(void **state)
{
    struct sy_schemas *s = load_good();
    char dir[1200], err[256];
    struct sy_schemas *empty;

    assert_int_equal(sy_schemas_count(s), 3);
    assert_true(sy_schemas_has(s, "grievance.submitted"));
    assert_true(sy_schemas_has(s, "ping"));
    assert_true(sy_schemas_has(s, "probe.empty_data"));
    assert_false(sy_schemas_has(s, "README"));
    assert_false(sy_schemas_has(s, "grievance"));
    sy_schemas_destroy(s);

    empty = sy_schemas_load(data_dir("schemas_empty", dir, sizeof dir), err, sizeof err);
    assert_non_null(empty);
    assert_int_equal(sy_schemas_count(empty), 0);
    sy_schemas_destroy(empty);
    sy_schemas_destroy(NULL);
}

static void expect_load_error(const char *sub, const char *file, const char *why)
{
    char dir[1200], err[1024], want[2048];
    struct sy_schemas *s = sy_schemas_load(data_dir(sub, dir, sizeof dir), err, sizeof err);

    assert_null(s);
    snprintf(want, sizeof want, "%s/%s:%s", dir, file, why);
    assert_string_equal(err, want);
}

static void test_load_errors_name_file_and_line(void **state)
{
    expect_load_error("schemas_bad_key", "a.b.yaml",
                      "8: unknown key 'maxlen' (allowed: type, required, nullable, description, "
                      "min_len, max_len, min, max, enum, fields, items, min_items, max_items)");
    expect_load_error("schemas_bad_top_key", "a.b.yaml",
                      "2: unknown key 'versoins' (allowed: type, versions, description, data)");
    expect_load_error("schemas_bad_type_name", "wrong.yaml",
                      "1: type 'other.name' does not match the file name (expected 'wrong')");
    expect_load_error("schemas_bad_enum", "e.yaml", "5: enum is only for str (this field is int)");
    expect_load_error("schemas_bad_enum_empty", "e.yaml",
                      "7: enum: expected a non-empty list of strings");
    expect_load_error("schemas_bad_versions", "v.yaml",
                      "2: versions[1]: expected an integer from 1 to 2147483647, got '0'");
    expect_load_error("schemas_bad_versions_empty", "v.yaml",
                      "2: versions: expected a non-empty list of integers >= 1");
    expect_load_error(
        "schemas_bad_field_type", "t.yaml",
        "5: type: 'string' is not one of str, int, float, bool, bin, map, array, any");
    expect_load_error("schemas_bad_minmax", "m.yaml",
                      "5: min is only for int and float (this field is str)");
    expect_load_error("schemas_bad_items", "i.yaml",
                      "7: items is only for array (this field is map)");
    expect_load_error("schemas_bad_fields", "f.yaml",
                      "7: fields is only for map (this field is array)");
    expect_load_error("schemas_bad_range", "r.yaml", "5: max 5 is less than min 10");
    expect_load_error("schemas_bad_missing_type", "t.yaml", "8: type: missing");
    /* a.yaml is fine; the whole load still fails on b.yaml. */
    expect_load_error("schemas_bad_second_file", "b.yaml", "4: type: data is always a map");
}

static void test_load_of_missing_directory_fails(void **state)
{
    char dir[1200], err[1024], want[1300];

    assert_null(sy_schemas_load(data_dir("no_such_dir", dir, sizeof dir), err, sizeof err));
    snprintf(want, sizeof want, "%s: cannot open the schema directory", dir);
    assert_string_equal(err, want);
}

/* --- checks ---------------------------------------------------------------------------- */

static void test_valid_message_passes_and_unknown_fields_are_ignored(void **state)
{
    struct sy_schemas *s = load_good();

    PATCH(s, "{}", NULL);
    /* Optional fields may be absent. */
    PATCH(s, "{\"status\": null, \"priority\": null, \"files\": null, \"extra\": null}", NULL);
    PATCH(s, "{\"brand_new\": [1, 2, {\"deep\": null}]}", NULL);
    sy_schemas_destroy(s);
}

static void test_required_and_nullable(void **state)
{
    struct sy_schemas *s = load_good();

    PATCH(s, "{\"grievance_id\": null}", "data.grievance_id: required");
    PATCH_NULLS(s, "{\"grievance_id\": null}", "data.grievance_id: required, got nil");
    PATCH_NULLS(s, "{\"description\": null}", NULL);
    PATCH_NULLS(s, "{\"status\": null}", "data.status: expected str, got nil");
    PATCH_NULLS(s, "{\"extra\": null}", NULL); /* any accepts nil */
    PATCH(s, "{\"user_info\": {\"name\": \"x\"}}", "data.user_info.phone_number: required");
    sy_schemas_destroy(s);
}

static void test_type_mismatches_name_both_types(void **state)
{
    struct sy_schemas *s = load_good();

    PATCH(s, "{\"priority\": \"high\"}", "data.priority: expected int, got str");
    PATCH(s, "{\"priority\": 1.0}", "data.priority: expected int, got float");
    PATCH(s, "{\"grievance_id\": 7}", "data.grievance_id: expected str, got int");
    PATCH(s, "{\"anonymous\": 1}", "data.anonymous: expected bool, got int");
    PATCH(s, "{\"score\": \"x\"}", "data.score: expected float, got str");
    PATCH(s, "{\"photo\": \"not bin\"}", "data.photo: expected bin, got str");
    PATCH(s, "{\"user_info\": [1]}", "data.user_info: expected map, got array");
    PATCH(s, "{\"files\": {}}", "data.files: expected array, got map");
    sy_schemas_destroy(s);
}

static void test_numbers_and_their_bounds(void **state)
{
    struct sy_schemas *s = load_good();

    PATCH(s, "{\"priority\": 12}", "data.priority: 12, at most 9");
    PATCH(s, "{\"priority\": -1}", "data.priority: -1, at least 0");
    PATCH(s, "{\"priority\": 9}", NULL);
    PATCH(s, "{\"priority\": 0}", NULL);
    PATCH(s, "{\"score\": 1}", NULL); /* floats accept ints */
    PATCH(s, "{\"score\": 1.5}", NULL);
    PATCH(s, "{\"score\": 2}", "data.score: 2, at most 1.5");
    PATCH(s, "{\"score\": -0.25}", "data.score: -0.25, at least 0");
    sy_schemas_destroy(s);
}

static void test_int_field_refuses_what_does_not_fit_int64(void **state)
{
    struct sy_schemas *s = load_good();
    msgpack_sbuffer sb;
    msgpack_packer pk;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "grievance_id", 12);
    msgpack_pack_str_with_body(&pk, "g", 1);
    msgpack_pack_str_with_body(&pk, "user_info", 9);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "phone_number", 12);
    msgpack_pack_str_with_body(&pk, "1", 1);
    msgpack_pack_str_with_body(&pk, "priority", 8);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    expect_reason(s, msg_from_packed("grievance.submitted", 1, sb.data, sb.size),
                  "data.priority: 18446744073709551615 does not fit a 64-bit signed int");
    msgpack_sbuffer_destroy(&sb);
    sy_schemas_destroy(s);
}

static void test_strings_lengths_and_enums(void **state)
{
    struct sy_schemas *s = load_good();
    char patch[6000 + 64];
    char longv[101];

    PATCH(s, "{\"grievance_id\": \"\"}", "data.grievance_id: 0 bytes, at least 1");
    PATCH(s, "{\"status\": \"closed\"}", "data.status: 'closed' is not one of pending, submitted");
    PATCH(s, "{\"status\": \"submitted\"}", NULL);
    /* Lengths are bytes, not characters: five two-byte characters. */
    PATCH(s, "{\"grievance_id\": \"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\"}", NULL);

    memset(longv, 'x', 100);
    longv[100] = '\0';
    snprintf(patch, sizeof patch, "{\"status\": \"%s\"}", longv);
    PATCH(s, patch,
          "data.status: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' is "
          "not one of pending, submitted");

    {
        char *p = patch;
        p += sprintf(p, "{\"description\": \"");
        memset(p, 'd', 5001);
        p += 5001;
        sprintf(p, "\"}");
    }
    PATCH(s, patch, "data.description: 5001 bytes, at most 5000");
    patch[strlen(patch) - 3] = '"';
    patch[strlen(patch) - 2] = '}';
    patch[strlen(patch) - 1] = '\0'; /* now exactly 5000 bytes */
    PATCH(s, patch, NULL);
    sy_schemas_destroy(s);
}

static void test_bin_lengths(void **state)
{
    struct sy_schemas *s = load_good();
    static const size_t sizes[] = {0, 1, 16, 17};
    unsigned char bytes[17] = {0};

    for (size_t i = 0; i < 4; i++) {
        size_t n = sizes[i];
        msgpack_sbuffer sb;
        msgpack_packer pk;
        const char *want = NULL;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 3);
        msgpack_pack_str_with_body(&pk, "grievance_id", 12);
        msgpack_pack_str_with_body(&pk, "g", 1);
        msgpack_pack_str_with_body(&pk, "user_info", 9);
        msgpack_pack_map(&pk, 1);
        msgpack_pack_str_with_body(&pk, "phone_number", 12);
        msgpack_pack_str_with_body(&pk, "1", 1);
        msgpack_pack_str_with_body(&pk, "photo", 5);
        msgpack_pack_bin_with_body(&pk, bytes, n);
        if (n == 0)
            want = "data.photo: 0 bytes, at least 1";
        else if (n == 17)
            want = "data.photo: 17 bytes, at most 16";
        expect_reason(s, msg_from_packed("grievance.submitted", 1, sb.data, sb.size), want);
        msgpack_sbuffer_destroy(&sb);
    }
    sy_schemas_destroy(s);
}

static void test_arrays_and_nested_maps_name_the_full_path(void **state)
{
    struct sy_schemas *s = load_good();

    PATCH(s,
          "{\"files\": [{\"file_id\": \"a\"}, {\"file_id\": \"b\"},"
          " {\"file_id\": \"c\", \"file_type\": 3}]}",
          "data.files.2.file_type: expected str, got int");
    PATCH(s, "{\"files\": [{\"file_id\": \"a\"}, {\"file_type\": \"pdf\"}]}",
          "data.files.1.file_id: required");
    PATCH(s, "{\"files\": [{\"file_id\": \"a\"}, 5]}", "data.files.1: expected map, got int");
    PATCH(s, "{\"files\": [{}, {}, {}, {}]}", "data.files: 4 items, at most 3");
    PATCH(s, "{\"files\": []}", NULL);
    PATCH(s, "{\"tags\": []}", "data.tags: 0 items, at least 1");
    PATCH(s, "{\"tags\": [\"ok\", \"far too long\"]}", "data.tags.1: 12 bytes, at most 8");
    PATCH(s, "{\"counts\": [null, {}, [], 1.5]}", NULL); /* no items spec: anything */
    PATCH(s, "{\"user_info\": {\"phone_number\": 555}}",
          "data.user_info.phone_number: expected str, got int");
    sy_schemas_destroy(s);
}

static void test_first_failure_in_schema_order_wins(void **state)
{
    struct sy_schemas *s = load_good();

    /* grievance_id comes before priority in the schema, whatever the message's order. */
    PATCH(s, "{\"priority\": 99, \"grievance_id\": 5}", "data.grievance_id: expected str, got int");
    sy_schemas_destroy(s);
}

static void test_types_and_versions(void **state)
{
    struct sy_schemas *s = load_good();
    char err[256];
    struct sy_msg *msg;

    expect_reason(s, msg_from_json("nope.x", 1, "{}"), "unknown type 'nope.x'");
    expect_reason(s, msg_from_json("grievance.submitted", 3, base_grievance),
                  "version 3 not accepted for 'grievance.submitted' (accepts 1, 2)");
    expect_reason(s, msg_from_json("grievance.submitted", 2, base_grievance), NULL);
    expect_reason(s, msg_from_json("ping", 1, "{\"anything\": [1, {\"x\": null}]}"), NULL);
    expect_reason(s, msg_from_json("ping", 2, "{}"),
                  "version 2 not accepted for 'ping' (accepts 1)");
    expect_reason(s, msg_from_json("probe.empty_data", 4, "{\"a\": 1}"), NULL);

    msg = msg_from_json("ping", 1, "{}");
    assert_int_equal(sy_schemas_check(NULL, msg, err, sizeof err), -SY_EINVAL);
    sy_msg_destroy(msg);
    sy_schemas_destroy(s);
}

static void test_reason_is_cut_to_the_buffer(void **state)
{
    struct sy_schemas *s = load_good();
    struct sy_msg *msg = grievance("{\"status\": \"closed\"}", false);
    char err[16];

    assert_int_equal(sy_schemas_check(s, msg, err, sizeof err), -SY_ESCHEMA);
    assert_string_equal(err, "data.status: 'c");
    sy_msg_destroy(msg);
    sy_schemas_destroy(s);
}

struct race {
    const struct sy_schemas *s;
    struct sy_msg *good, *bad;
    int failures;
};

static void *race_main(void *arg)
{
    struct race *r = arg;
    char err[256];

    for (int i = 0; i < 2000; i++) {
        if (sy_schemas_check(r->s, r->good, err, sizeof err) != 0 ||
            sy_schemas_check(r->s, r->bad, err, sizeof err) != -SY_ESCHEMA ||
            strcmp(err, "data.status: 'closed' is not one of pending, submitted") != 0)
            r->failures++;
    }
    return NULL;
}

static void test_checks_run_concurrently(void **state)
{
    struct sy_schemas *s = load_good();
    struct race r[4];
    pthread_t th[4];

    for (int i = 0; i < 4; i++) {
        r[i] = (struct race){.s = s,
                             .good = grievance("{}", false),
                             .bad = grievance("{\"status\": \"closed\"}", false)};
        assert_int_equal(pthread_create(&th[i], NULL, race_main, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(r[i].failures, 0);
        sy_msg_destroy(r[i].good);
        sy_msg_destroy(r[i].bad);
    }
    sy_schemas_destroy(s);
}

int main(void)
{
    const char *src = getenv("SY_SOURCE_DIR");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_reads_every_yaml_file_and_only_those),
        cmocka_unit_test(test_load_errors_name_file_and_line),
        cmocka_unit_test(test_load_of_missing_directory_fails),
        cmocka_unit_test(test_valid_message_passes_and_unknown_fields_are_ignored),
        cmocka_unit_test(test_required_and_nullable),
        cmocka_unit_test(test_type_mismatches_name_both_types),
        cmocka_unit_test(test_numbers_and_their_bounds),
        cmocka_unit_test(test_int_field_refuses_what_does_not_fit_int64),
        cmocka_unit_test(test_strings_lengths_and_enums),
        cmocka_unit_test(test_bin_lengths),
        cmocka_unit_test(test_arrays_and_nested_maps_name_the_full_path),
        cmocka_unit_test(test_first_failure_in_schema_order_wins),
        cmocka_unit_test(test_types_and_versions),
        cmocka_unit_test(test_reason_is_cut_to_the_buffer),
        cmocka_unit_test(test_checks_run_concurrently),
    };

    if (!src) {
        fprintf(stderr, "SY_SOURCE_DIR is not set\n");
        return 1;
    }
    snprintf(g_data_dir, sizeof g_data_dir, "%s/tests/unit/data", src);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
