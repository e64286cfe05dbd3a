/* test_grm_map.c - grm.yaml: the defaults, a site's own map, the status words both ways, every
 * refusal with its line, ${} values, the row parameters and the exact SQL the GRM is sent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grievance/grm_map.h"

#define ERR_LEN 512

static const char *source_dir(void)
{
    const char *d = getenv("SY_SOURCE_DIR");
    return d && *d ? d : ".";
}

/* Loads `yaml` from a temporary file (removed again); its path into path. */
static struct grm_map *load_text(const char *yaml, char *path, size_t pathsz, char *err)
{
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : P_tmpdir;
    struct grm_map *m;
    size_t len = strlen(yaml);
    int fd;

    snprintf(path, pathsz, "%s/test_grm_map_XXXXXX", dir);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, len), (ssize_t)len);
    close(fd);
    err[0] = '\0';
    m = grm_map_load(path, err, ERR_LEN);
    unlink(path);
    return m;
}

static struct grm_map *load_ok(const char *yaml)
{
    char path[512], err[ERR_LEN];
    struct grm_map *m = load_text(yaml, path, sizeof path, err);

    if (!m)
        fail_msg("expected the map to load, got: %s", err);
    return m;
}

/* The map is refused with "path:line: " and then text holding `why`. */
static void expect_refused(const char *yaml, int line, const char *why)
{
    char path[512], err[ERR_LEN], prefix[600];
    struct grm_map *m = load_text(yaml, path, sizeof path, err);

    if (m) {
        grm_map_free(m);
        fail_msg("accepted, expected line %d: %s\n%s", line, why, yaml);
    }
    snprintf(prefix, sizeof prefix, "%s:%d: ", path, line);
    if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err + strlen(prefix), why))
        fail_msg("expected '%s...%s', got '%s'", prefix, why, err);
}

#define HEAD "table: grievances\nkey: chatbot_ref\nupdated: updated_at\n" /* lines 1-3 */

static const char *const default_columns[][2] = {
    {"grievance_id", "chatbot_ref"},         {"user_full_name", "complainant_name"},
    {"user_contact_phone", "contact_phone"}, {"grievance_details", "grievance_description"},
    {"grievance_location", "location"},      {"classification_status", "status"},
    {"project_type", "project_type"},        {"submitted_at", "submitted_at"},
};
static const char *const statuses[] = {"pending", "submitted", "under_evaluation", "resolved",
                                       "denied"};

static void defaults_apply_when_fields_status_and_custom_are_absent(void **state)
{
    struct grm_map *m = load_ok(HEAD);

    assert_true(grm_map_enabled(m));
    assert_int_equal(grm_map_pull_batch(m), 500);
    assert_string_equal(grm_map_table(m), "grievances");
    assert_int_equal(grm_map_ncols(m), 8);
    for (size_t i = 0; i < 8; i++)
        assert_string_equal(grm_map_column(m, default_columns[i][0]), default_columns[i][1]);
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(grm_status_to_grm(m, statuses[i]), statuses[i]);
        assert_string_equal(grm_status_from_grm(m, statuses[i]), statuses[i]);
    }
    assert_null(grm_map_column(m, "custom.ward_no"));
    grm_map_free(m);

    /* Sections written with no value count as absent. */
    m = load_ok(HEAD "fields:\ncustom: ~\nstatus:\n");
    assert_int_equal(grm_map_ncols(m), 8);
    assert_string_equal(grm_status_to_grm(m, "denied"), "denied");
    grm_map_free(m);
}

static const char site_map[] = HEAD       /* 1-3 */
    "fields:\n"                           /* 4 */
    "  classification_status: estado\n"   /* 5 */
    "  grievance_details: queja\n"        /* 6 */
    "  user_full_name: nombre\n"          /* 7 */
    "custom:\n"                           /* 8 */
    "  ward_no: ward_number\n"            /* 9 */
    "  Zone_2: zone\n"                    /* 10 */
    "status:\n"                           /* 11 */
    "  pending: Nuevo\n"                  /* 12 */
    "  submitted: 'Recibido'\n"           /* 13 */
    "  under_evaluation: En evaluación\n" /* 14 */
    "  resolved: Resuelto\n"              /* 15 */
    "  denied: Rechazado\n"               /* 16 */
    "pull_batch: 25\n"                    /* 17 */
    "enabled: no\n";                      /* 18 */

static void a_sites_own_field_map_replaces_the_defaults(void **state)
{
    struct grm_map *m = load_ok(site_map);

    assert_false(grm_map_enabled(m));
    assert_int_equal(grm_map_pull_batch(m), 25);
    assert_int_equal(grm_map_ncols(m), 6);
    assert_string_equal(grm_map_column(m, "grievance_id"), "chatbot_ref");
    assert_string_equal(grm_map_column(m, "classification_status"), "estado");
    assert_string_equal(grm_map_column(m, "grievance_details"), "queja");
    assert_string_equal(grm_map_column(m, "user_full_name"), "nombre");
    assert_string_equal(grm_map_column(m, "custom.ward_no"), "ward_number");
    assert_string_equal(grm_map_column(m, "custom.Zone_2"), "zone");
    /* Left out: not written, not defaulted. */
    assert_null(grm_map_column(m, "user_contact_phone"));
    assert_null(grm_map_column(m, "submitted_at"));
    assert_null(grm_map_column(m, "custom.nope"));
    assert_null(grm_map_column(m, "nope"));
    grm_map_free(m);
}

static void the_status_map_works_both_ways(void **state)
{
    static const char *const theirs[] = {"Nuevo", "Recibido", "En evaluación", "Resuelto",
                                         "Rechazado"};
    struct grm_map *m = load_ok(site_map);

    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(grm_status_to_grm(m, statuses[i]), theirs[i]);
        assert_string_equal(grm_status_from_grm(m, theirs[i]), statuses[i]);
    }
    /* The GRM's words in another case are the same words, as MySQL compares them. */
    assert_string_equal(grm_status_from_grm(m, "RESUELTO"), "resolved");
    assert_string_equal(grm_status_from_grm(m, "nuevo"), "pending");
    /* Ours are not theirs, and unknown words map to nothing. */
    assert_null(grm_status_from_grm(m, "resolved"));
    assert_null(grm_status_from_grm(m, "Closed"));
    assert_null(grm_status_from_grm(m, ""));
    assert_null(grm_status_from_grm(m, NULL));
    assert_null(grm_status_to_grm(m, "Resuelto"));
    assert_null(grm_status_to_grm(m, "closed"));
    assert_null(grm_status_to_grm(m, NULL));
    grm_map_free(m);
}

static void the_shipped_grm_yaml_loads_and_describes_the_reference_grm(void **state)
{
    char path[1024], err[ERR_LEN] = "";
    struct grm_map *m;

    snprintf(path, sizeof path, "%s/deploy/config/grm.yaml", source_dir());
    unsetenv("GRM_INTEGRATION_ENABLED");
    m = grm_map_load(path, err, sizeof err);
    if (!m)
        fail_msg("%s", err);
    assert_true(grm_map_enabled(m));
    assert_string_equal(grm_map_table(m), "grievances");
    /* The defaults are the reference GRM's columns, so the shipped file names the same. */
    for (size_t i = 0; i < 8; i++)
        assert_string_equal(grm_map_column(m, default_columns[i][0]), default_columns[i][1]);
    assert_string_equal(grm_map_column(m, "custom.ward_no"), "ward_number");
    assert_int_equal(grm_map_ncols(m), 9);
    assert_string_equal(grm_status_to_grm(m, "pending"), "Pending");
    assert_string_equal(grm_status_to_grm(m, "under_evaluation"), "Under Evaluation");
    assert_string_equal(grm_status_from_grm(m, "Denied"), "denied");
    assert_int_equal(grm_map_pull_batch(m), 500);
    grm_map_free(m);

    assert_int_equal(setenv("GRM_INTEGRATION_ENABLED", "false", 1), 0);
    m = grm_map_load(path, err, sizeof err);
    if (!m)
        fail_msg("%s", err);
    assert_false(grm_map_enabled(m));
    grm_map_free(m);
    unsetenv("GRM_INTEGRATION_ENABLED");
}

static void values_come_from_the_environment(void **state)
{
    const char *yaml = "enabled: ${GRM_INTEGRATION_ENABLED:-true}\n"
                       "table: ${GRMT_TABLE}\n"
                       "key: chatbot_ref\n"
                       "updated: updated_at\n"
                       "status:\n"
                       "  pending: ${GRMT_PENDING:-Pending}\n"
                       "  submitted: Submitted\n"
                       "  under_evaluation: Under Evaluation\n"
                       "  resolved: Resolved\n"
                       "  denied: Denied\n"
                       "pull_batch: ${GRMT_BATCH:-50}\n";
    struct grm_map *m;

    assert_int_equal(setenv("GRMT_TABLE", "site_grievances", 1), 0);
    unsetenv("GRMT_PENDING");
    unsetenv("GRMT_BATCH");
    unsetenv("GRM_INTEGRATION_ENABLED");
    m = load_ok(yaml);
    assert_true(grm_map_enabled(m));
    assert_string_equal(grm_map_table(m), "site_grievances");
    assert_string_equal(grm_status_to_grm(m, "pending"), "Pending");
    assert_int_equal(grm_map_pull_batch(m), 50);
    grm_map_free(m);

    assert_int_equal(setenv("GRM_INTEGRATION_ENABLED", "false", 1), 0);
    assert_int_equal(setenv("GRMT_PENDING", "Open", 1), 0);
    assert_int_equal(setenv("GRMT_BATCH", "7", 1), 0);
    m = load_ok(yaml);
    assert_false(grm_map_enabled(m));
    assert_string_equal(grm_status_to_grm(m, "pending"), "Open");
    assert_string_equal(grm_status_from_grm(m, "Open"), "pending");
    assert_int_equal(grm_map_pull_batch(m), 7);
    grm_map_free(m);

    /* Set but empty: the default, as in the shell. */
    assert_int_equal(setenv("GRM_INTEGRATION_ENABLED", "", 1), 0);
    m = load_ok(yaml);
    assert_true(grm_map_enabled(m));
    grm_map_free(m);

    assert_int_equal(setenv("GRM_INTEGRATION_ENABLED", "maybe", 1), 0);
    expect_refused(yaml, 1,
                   "enabled: expected true/false, yes/no or on/off, got 'maybe' (from "
                   "'${GRM_INTEGRATION_ENABLED:-true}')");
    unsetenv("GRM_INTEGRATION_ENABLED");
    assert_int_equal(setenv("GRMT_BATCH", "0", 1), 0);
    expect_refused(yaml, 11, "pull_batch: expected a whole number from 1 to 10000, got '0'");
    unsetenv("GRMT_BATCH");
    unsetenv("GRMT_TABLE");
    expect_refused(yaml, 2,
                   "table: environment variable GRMT_TABLE is not set (and has no "
                   "default)");
    unsetenv("GRMT_PENDING");
}

static const char long_name[] = "c234567890123456789012345678901234567890123456789012345678901234";

static void bad_maps_are_refused_naming_the_line_and_key(void **state)
{
    static const struct {
        const char *yaml;
        int line;
        const char *why;
    } cases[] = {
        /* The status map. */
        {HEAD "status:\n  pending: P\n  submitted: S\n  under_evaluation: U\n  resolved: R\n", 5,
         "status: our status 'denied' has no GRM value"},
        {HEAD "status:\n  pending: P\n  submitted: S\n  under_evaluation: U\n  resolved: Done\n"
              "  denied: done\n",
         9, "status.denied: 'done' is already the GRM value of resolved (line 8)"},
        {HEAD "status:\n  pending: P\n  submitted: P\n", 6,
         "status.submitted: 'P' is already the GRM value of pending (line 5)"},
        {HEAD "status:\n  pending: P\n  closed: C\n", 6,
         "status: 'closed' is not one of our statuses"},
        {HEAD "status:\n  pending: ''\n", 5, "status.pending: the GRM's value is empty"},
        {HEAD "status:\n  pending:\n", 5, "status.pending: expected the GRM's value for it"},
        {HEAD "status: [pending]\n", 4, "status: expected a map"},
        /* Fields. */
        {HEAD "fields:\n  classification_status: status\n  user_name: name\n", 6,
         "fields: 'user_name' is not one of our fields (user_full_name, user_contact_phone, "
         "grievance_details, grievance_location, classification_status, project_type, "
         "submitted_at)"},
        {HEAD "fields:\n  classification_status: status\n  grievance_id: ref\n", 6,
         "fields.grievance_id: grievance_id is always written, to the column named by 'key'"},
        {HEAD "fields:\n  user_full_name: name\n", 1,
         "fields: classification_status must be mapped to a GRM column"},
        {HEAD "fields:\n  classification_status: status\n  grievance_location: ''\n", 6,
         "fields.grievance_location: a GRM name is 1 to 64 bytes, got 0"},
        {HEAD "fields:\n  classification_status: status\n  grievance_location: c2345678901234567890"
              "12345678901234567890123456789012345678901234a\n",
         6, "fields.grievance_location: a GRM name is 1 to 64 bytes, got 65"},
        {HEAD "fields:\n  classification_status: status\n  project_type:\n", 6,
         "fields.project_type: expected a GRM column name"},
        {HEAD "fields:\n  classification_status: status\n  project_type: {a: b}\n", 6,
         "fields.project_type: expected a GRM column name"},
        {HEAD "fields:\n  classification_status: status\n  project_type: STATUS\n", 6,
         "fields.project_type: column 'STATUS' is already written for "
         "fields.classification_status"},
        {HEAD "fields:\n  classification_status: status\n  submitted_at: updated_at\n", 6,
         "fields.submitted_at: 'updated_at' is the updated column, which the GRM sets itself"},
        {HEAD "fields:\n  classification_status: chatbot_ref\n", 5,
         "fields.classification_status: column 'chatbot_ref' is already written for key"},
        {"table: t\nkey: status\nupdated: u\n", 1,
         "fields.classification_status (a default): column 'status' is already written for key"},
        {"table: t\nkey: k\nupdated: status\n", 1,
         "fields.classification_status (a default): 'status' is the updated column"},
        {HEAD "fields: [a]\n", 4, "fields: expected a map"},
        /* Custom fields. */
        {HEAD "custom:\n  ward-no: ward_number\n", 5,
         "custom: 'ward-no' is not a custom field name (1 to 64 of A-Z, a-z, 0-9, _)"},
        {HEAD "custom:\n  ward no: ward_number\n", 5, "custom: 'ward no' is not a custom"},
        {HEAD "custom:\n  'wärd': ward_number\n", 5, "custom: 'wärd' is not a custom"},
        {HEAD "custom:\n  '': ward_number\n", 5, "custom: '' is not a custom"},
        {HEAD "custom:\n  c2345678901234567890123456789012345678901234567890123456789012345: x\n",
         5, "is not a custom field name"},
        {HEAD "custom:\n  ward_no: ''\n", 5, "custom.ward_no: a GRM name is 1 to 64 bytes, got 0"},
        {HEAD "custom:\n  ward_no: location\n", 5,
         "custom.ward_no: column 'location' is already written for fields.grievance_location"},
        {HEAD "custom:\n  a: x\n  b: X\n", 6,
         "custom.b: column 'X' is already written for custom.a"},
        /* table, key, updated. */
        {"key: chatbot_ref\nupdated: updated_at\n", 1, "table: missing"},
        {"# a comment\n\ntable: t\nupdated: updated_at\n", 3, "key: missing"},
        {"table: t\nkey: chatbot_ref\n", 1, "updated: missing"},
        {"table: ''\nkey: k\nupdated: u\n", 1, "table: a GRM name is 1 to 64 bytes, got 0"},
        {"table:\nkey: k\nupdated: u\n", 1, "table: expected a GRM column name"},
        {"table: t\nkey: k\nupdated: c23456789012345678901234567890123456789012345678901234567890"
         "12345\n",
         3, "updated: a GRM name is 1 to 64 bytes, got 65"},
        {"table: t\nkey: k\nupdated: k\n", 2, "key: 'k' is the updated column"},
        /* pull_batch and enabled. */
        {HEAD "pull_batch: 0\n", 4, "pull_batch: expected a whole number from 1 to 10000, got '0'"},
        {HEAD "pull_batch: 10001\n", 4, "got '10001'"},
        {HEAD "pull_batch: -5\n", 4, "got '-5'"},
        {HEAD "pull_batch: 5x\n", 4, "got '5x'"},
        {HEAD "pull_batch: 99999999999999999999999\n", 4, "expected a whole number"},
        {HEAD "enabled: 1\n", 4, "enabled: expected true/false, yes/no or on/off, got '1'"},
        /* The document. */
        {HEAD "tables: x\n", 4,
         "unknown key 'tables' (allowed: enabled, table, key, updated, "
         "fields, custom, status, pull_batch)"},
        {"- table: t\n", 1, "expected a map with table, key and updated"},
        {"", 1, "expected a map with table, key and updated"},
        {HEAD "table: again\n", 4, "duplicate key 'table'"},
        {HEAD "fields:\n  classification_status: [x\n", 6, ""},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_refused(cases[i].yaml, cases[i].line, cases[i].why);
}

static void names_of_64_bytes_are_accepted(void **state)
{
    char yaml[512];
    struct grm_map *m;

    assert_int_equal(strlen(long_name), 64);
    snprintf(yaml, sizeof yaml,
             "table: %s\nkey: k\nupdated: u\nfields:\n  classification_status: s\n"
             "custom:\n  %s: %s\n",
             long_name, long_name, long_name);
    m = load_ok(yaml);
    assert_string_equal(grm_map_table(m), long_name);
    snprintf(yaml, sizeof yaml, "custom.%s", long_name);
    assert_string_equal(grm_map_column(m, yaml), long_name);
    grm_map_free(m);
}

static void a_missing_file_is_an_error(void **state)
{
    char err[ERR_LEN] = "";

    assert_null(grm_map_load("/nonexistent/grm.yaml", err, sizeof err));
    assert_string_equal(err, "/nonexistent/grm.yaml: cannot read: No such file or directory");
}

/* A grievance's fields as the worker would give them. */
struct row {
    const char *values[16][2];
    int asked;
};

static const char *row_lookup(void *ud, const char *field)
{
    struct row *r = ud;

    r->asked++;
    for (size_t i = 0; i < 16 && r->values[i][0]; i++)
        if (strcmp(r->values[i][0], field) == 0)
            return r->values[i][1];
    return NULL;
}

static void a_row_is_the_key_then_the_fields_then_the_custom_ones(void **state)
{
    struct grm_map *m = load_ok(site_map);
    struct row r = {.values = {
                        {"grievance_id", "G-42"},
                        {"user_full_name", "Asha"},
                        {"user_contact_phone", "+919800000001"},
                        {"grievance_details", "No water"},
                        {"classification_status", "under_evaluation"},
                        {"custom.Zone_2", "north"},
                    }};
    const char *params[6] = {0};
    char err[256] = "";

    assert_int_equal(grm_map_row(m, row_lookup, &r, params, err, sizeof err), 0);
    /* The key, then fields in the file's order, then the custom ones in theirs. */
    assert_string_equal(params[0], "G-42");
    assert_string_equal(params[1], "En evaluación"); /* classification_status, mapped */
    assert_string_equal(params[2], "No water");      /* grievance_details */
    assert_string_equal(params[3], "Asha");          /* user_full_name */
    assert_null(params[4]);                          /* custom.ward_no: SQL NULL */
    assert_string_equal(params[5], "north");         /* custom.Zone_2 */
    assert_int_equal(r.asked, 6);

    /* A status with no GRM word names the field and the value. */
    r.values[4][1] = "closed";
    assert_int_equal(grm_map_row(m, row_lookup, &r, params, err, sizeof err), -1);
    assert_string_equal(err, "classification_status: 'closed' has no GRM value in the status map");
    r.values[4][1] = NULL;
    assert_int_equal(grm_map_row(m, row_lookup, &r, params, err, sizeof err), -1);
    assert_string_equal(err, "classification_status: missing");
    r.values[4][1] = "resolved";
    r.values[0][1] = NULL;
    assert_int_equal(grm_map_row(m, row_lookup, &r, params, err, sizeof err), -1);
    assert_string_equal(err, "grievance_id: missing");
    grm_map_free(m);

    /* With the defaults: every field of ours, in the documented order. */
    m = load_ok(HEAD);
    struct row d = {.values = {
                        {"submitted_at", "2025-01-02 03:04:05"},
                        {"project_type", "water"},
                        {"classification_status", "pending"},
                        {"grievance_location", "Ward 3"},
                        {"grievance_details", "Leak"},
                        {"user_contact_phone", "+919800000002"},
                        {"user_full_name", "Ravi"},
                        {"grievance_id", "G-1"},
                    }};
    const char *all[8];
    static const char *const want[8] = {"G-1",     "Ravi",  "+919800000002",      "Leak", "Ward 3",
                                        "pending", "water", "2025-01-02 03:04:05"};
    assert_int_equal(grm_map_row(m, row_lookup, &d, all, err, sizeof err), 0);
    for (size_t i = 0; i < 8; i++)
        assert_string_equal(all[i], want[i]);
    grm_map_free(m);
}

static void the_upsert_sql_is_exact(void **state)
{
    struct grm_map *m = load_ok(HEAD "fields:\n  classification_status: status\n"
                                     "  user_full_name: complainant_name\n"
                                     "custom:\n  ward_no: ward_number\n");
    char *sql = grm_map_upsert_sql(m, 1);

    assert_int_equal(grm_map_ncols(m), 4);
    assert_non_null(sql);
    assert_string_equal(sql, "INSERT INTO `grievances` (`chatbot_ref`, `status`, "
                             "`complainant_name`, `ward_number`) VALUES (?, ?, ?, ?) ON DUPLICATE "
                             "KEY UPDATE `status`=VALUES(`status`), "
                             "`complainant_name`=VALUES(`complainant_name`), "
                             "`ward_number`=VALUES(`ward_number`)");
    free(sql);
    sql = grm_map_upsert_sql(m, 3);
    assert_non_null(sql);
    assert_string_equal(sql, "INSERT INTO `grievances` (`chatbot_ref`, `status`, "
                             "`complainant_name`, `ward_number`) VALUES (?, ?, ?, ?), "
                             "(?, ?, ?, ?), (?, ?, ?, ?) ON DUPLICATE KEY UPDATE "
                             "`status`=VALUES(`status`), "
                             "`complainant_name`=VALUES(`complainant_name`), "
                             "`ward_number`=VALUES(`ward_number`)");
    free(sql);
    assert_null(grm_map_upsert_sql(m, 0));
    assert_null(grm_map_upsert_sql(m, 1001));
    sql = grm_map_upsert_sql(m, 1000);
    assert_non_null(sql);
    free(sql);
    grm_map_free(m);

    /* Names are quoted, backticks doubled: a name from the file never ends the identifier. */
    m = load_ok("table: 'my`table'\nkey: 'ref id'\nupdated: u\n"
                "fields:\n  classification_status: \"st`; DROP TABLE x; --\"\n");
    sql = grm_map_upsert_sql(m, 1);
    assert_string_equal(sql, "INSERT INTO `my``table` (`ref id`, `st``; DROP TABLE x; --`) VALUES "
                             "(?, ?) ON DUPLICATE KEY UPDATE "
                             "`st``; DROP TABLE x; --`=VALUES(`st``; DROP TABLE x; --`)");
    free(sql);
    grm_map_free(m);
}

static void the_pull_sql_is_exact(void **state)
{
    struct grm_map *m = load_ok(HEAD);
    char *sql = grm_map_pull_sql(m);

    assert_string_equal(sql, "SELECT `chatbot_ref`, DATE_FORMAT(`updated_at`, "
                             "'%Y-%m-%d %H:%i:%s.%f'), `status` FROM `grievances` WHERE "
                             "`updated_at` > ? OR (`updated_at` = ? AND `chatbot_ref` > ?) "
                             "ORDER BY `updated_at`, `chatbot_ref` LIMIT 500");
    free(sql);
    grm_map_free(m);

    m = load_ok("table: grm`t\nkey: \"ref`\"\nupdated: changed\npull_batch: 10000\n"
                "fields:\n  classification_status: '`state`'\n");
    sql = grm_map_pull_sql(m);
    assert_string_equal(sql, "SELECT `ref```, DATE_FORMAT(`changed`, '%Y-%m-%d %H:%i:%s.%f'), "
                             "```state``` FROM `grm``t` WHERE `changed` > ? OR (`changed` = ? "
                             "AND `ref``` > ?) ORDER BY `changed`, `ref``` LIMIT 10000");
    free(sql);
    assert_string_equal(grm_map_table(m), "grm`t");
    assert_string_equal(grm_map_column(m, "grievance_id"), "ref`");
    grm_map_free(m);
}

static void a_null_map_is_harmless(void **state)
{
    grm_map_free(NULL);
    assert_false(grm_map_enabled(NULL));
    assert_int_equal(grm_map_ncols(NULL), 0);
    assert_null(grm_map_upsert_sql(NULL, 1));
    assert_null(grm_map_pull_sql(NULL));
    assert_null(grm_map_table(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_apply_when_fields_status_and_custom_are_absent),
        cmocka_unit_test(a_sites_own_field_map_replaces_the_defaults),
        cmocka_unit_test(the_status_map_works_both_ways),
        cmocka_unit_test(the_shipped_grm_yaml_loads_and_describes_the_reference_grm),
        cmocka_unit_test(values_come_from_the_environment),
        cmocka_unit_test(bad_maps_are_refused_naming_the_line_and_key),
        cmocka_unit_test(names_of_64_bytes_are_accepted),
        cmocka_unit_test(a_missing_file_is_an_error),
        cmocka_unit_test(a_row_is_the_key_then_the_fields_then_the_custom_ones),
        cmocka_unit_test(the_upsert_sql_is_exact),
        cmocka_unit_test(the_pull_sql_is_exact),
        cmocka_unit_test(a_null_map_is_harmless),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
