/* it_mysql.c - the MySQL/MariaDB wrapper against a real server (SY_GRM_MYSQL_URL): parameters
 * and NULLs, UTF-8, DATETIME as UTC text, strict mode's refusals, transactions, the statement
 * cache, reconnects after a killed session, timeouts, and connect errors without passwords. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"
#include "sy/err.h"
#include "sy/mysql.h"

static char run[17];
static char table[64]; /* this run's table, quoted */

static struct sy_mysql *connect_url(const char *url)
{
    char err[512] = "";
    struct sy_mysql *m = sy_mysql_connect(url, err, sizeof err);
    if (!m)
        fprintf(stderr, "sy_mysql_connect: %s\n", err);
    assert_non_null(m);
    return m;
}

static struct sy_mysql *connect_my(void)
{
    return connect_url(th_need_env("SY_GRM_MYSQL_URL"));
}

/* The test URL with "?opts" (or "&opts") added. */
static void url_with(char *out, size_t outlen, const char *opts)
{
    const char *url = th_need_env("SY_GRM_MYSQL_URL");
    snprintf(out, outlen, "%s%c%s", url, strchr(url, '?') ? '&' : '?', opts);
}

static void exec_ok(struct sy_mysql *m, const char *sql, int n, const char *const *params)
{
    int rc = sy_mysql_exec(m, sql, n, params, NULL);
    if (rc)
        fprintf(stderr, "%s: %s\n", sql, sy_mysql_error(m));
    assert_int_equal(rc, 0);
}

/* sql with its one %s replaced by this run's table (in one of a few static buffers, so a test
 * can hold a statement while it builds others). */
static const char *on_table(const char *sql)
{
    static char bufs[8][1024];
    static unsigned next;
    char *out = bufs[next++ % 8];
    const char *hole = strstr(sql, "%s");
    assert_non_null(hole);
    snprintf(out, sizeof bufs[0], "%.*s%s%s", (int)(hole - sql), sql, table, hole + 2);
    return out;
}

/* A single-value query as text (caller frees), NULL for SQL NULL. */
static char *query_one(struct sy_mysql *m, const char *sql, int n, const char *const *params)
{
    struct sy_mysql_res *res = NULL;
    int rc = sy_mysql_exec(m, sql, n, params, &res);
    if (rc)
        fprintf(stderr, "%s: %s\n", sql, sy_mysql_error(m));
    assert_int_equal(rc, 0);
    assert_int_equal(sy_mysql_res_rows(res), 1);
    const char *v = sy_mysql_res_get(res, 0, 0);
    char *copy = v ? strdup(v) : NULL;
    sy_mysql_res_free(res);
    return copy;
}

static long long query_int(struct sy_mysql *m, const char *sql, int n, const char *const *params)
{
    char *v = query_one(m, sql, n, params);
    assert_non_null(v);
    long long x = atoll(v);
    free(v);
    return x;
}

static int setup(void **state)
{
    th_run_id(run);
    char name[48];
    snprintf(name, sizeof name, "it_mysql_%s", run);
    assert_int_equal(sy_mysql_quote_ident(name, table, sizeof table), 0);
    struct sy_mysql *m = connect_my();
    exec_ok(m,
            on_table("CREATE TABLE %s (id INT PRIMARY KEY, code VARCHAR(10) UNIQUE, "
                     "body MEDIUMTEXT, at DATETIME(6) NULL, stamp TIMESTAMP(6) NULL, "
                     "hits INT NOT NULL DEFAULT 0) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"),
            0, NULL);
    sy_mysql_destroy(m);
    return 0;
}

static int teardown(void **state)
{
    struct sy_mysql *m = connect_my();
    exec_ok(m, on_table("DROP TABLE IF EXISTS %s"), 0, NULL);
    sy_mysql_destroy(m);
    return 0;
}

static void clear_table(struct sy_mysql *m)
{
    exec_ok(m, on_table("DELETE FROM %s"), 0, NULL);
}

/* --- Values ----------------------------------------------------------------------------- */

static void parameters_nulls_and_utf8_round_trip_as_text(void **state)
{
    struct sy_mysql *m = connect_my();
    clear_table(m);
    /* Longer than the biggest first fetch buffer (1 MiB), so the value must be fetched again
     * whole into a bigger one. */
    size_t big_len = 1200000;
    char *big = malloc(big_len + 1);
    assert_non_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)('a' + i % 26);
    big[big_len] = '\0';

    const char *row1[] = {"1", "മലയാളം", "it's \"quoted\" \\ ? -- ; 'x'); DROP TABLE x;",
                          "2024-03-01 10:20:30.123456"};
    const char *row2[] = {"2", NULL, NULL, NULL};
    const char *row3[] = {"3", "", big, "1999-12-31 23:59:59"};
    const char *ins = on_table("INSERT INTO %s (id, code, body, at) VALUES (?, ?, ?, ?)");
    struct sy_mysql_res *res = NULL;
    assert_int_equal(sy_mysql_exec(m, ins, 4, row1, &res), 0);
    assert_int_equal(sy_mysql_res_affected(res), 1);
    assert_int_equal(sy_mysql_res_rows(res), 0);
    assert_int_equal(sy_mysql_res_cols(res), 0);
    sy_mysql_res_free(res);
    exec_ok(m, ins, 4, row2);
    exec_ok(m, ins, 4, row3);

    res = NULL;
    int rc = sy_mysql_exec(m,
                           on_table("SELECT id, code, body, at, CHAR_LENGTH(code) AS chars, "
                                    "1.5 AS num FROM %s ORDER BY id"),
                           0, NULL, &res);
    if (rc)
        fprintf(stderr, "select: %s\n", sy_mysql_error(m));
    assert_int_equal(rc, 0);
    assert_int_equal(sy_mysql_res_rows(res), 3);
    assert_int_equal(sy_mysql_res_cols(res), 6);
    assert_string_equal(sy_mysql_res_name(res, 0), "id");
    assert_string_equal(sy_mysql_res_name(res, 3), "at");
    assert_string_equal(sy_mysql_res_name(res, 4), "chars");
    assert_null(sy_mysql_res_name(res, 6));

    assert_string_equal(sy_mysql_res_get(res, 0, 0), "1");
    assert_string_equal(sy_mysql_res_get(res, 0, 1), "മലയാളം");
    assert_string_equal(sy_mysql_res_get(res, 0, 2), row1[2]);
    assert_string_equal(sy_mysql_res_get(res, 0, 3), "2024-03-01 10:20:30.123456");
    assert_string_equal(sy_mysql_res_get(res, 0, 4), "6"); /* characters, not bytes */
    assert_string_equal(sy_mysql_res_get(res, 0, 5), "1.5");

    assert_string_equal(sy_mysql_res_get(res, 1, 0), "2");
    assert_null(sy_mysql_res_get(res, 1, 1));
    assert_null(sy_mysql_res_get(res, 1, 2));
    assert_null(sy_mysql_res_get(res, 1, 3));

    assert_non_null(sy_mysql_res_get(res, 2, 1)); /* empty is not NULL */
    assert_string_equal(sy_mysql_res_get(res, 2, 1), "");
    assert_string_equal(sy_mysql_res_get(res, 2, 2), big);
    /* DATETIME(6) always shows its six digits. */
    assert_string_equal(sy_mysql_res_get(res, 2, 3), "1999-12-31 23:59:59.000000");

    assert_null(sy_mysql_res_get(res, 3, 0)); /* out of range */
    assert_null(sy_mysql_res_get(res, 0, 6));
    assert_null(sy_mysql_res_get(res, -1, 0));
    sy_mysql_res_free(res);

    /* A plain DATETIME has no fraction. */
    char *v = query_one(m, "SELECT CAST('2024-02-29 01:02:03' AS DATETIME)", 0, NULL);
    assert_string_equal(v, "2024-02-29 01:02:03");
    free(v);
    free(big);
    sy_mysql_destroy(m);
}

static void datetimes_are_utc_text_whatever_the_process_time_zone(void **state)
{
    /* The client's own zone must not leak into the session. */
    setenv("TZ", "Asia/Kolkata", 1);
    tzset();
    struct sy_mysql *m = connect_my();
    clear_table(m);
    assert_int_equal(query_int(m, "SELECT NOW(6) = UTC_TIMESTAMP(6)", 0, NULL), 1);
    char *tz = query_one(m, "SELECT @@session.time_zone", 0, NULL);
    assert_string_equal(tz, "+00:00");
    free(tz);

    /* The server's clock read as text matches UTC within a few seconds. */
    char *now = query_one(m, "SELECT NOW()", 0, NULL);
    struct tm tm = {0};
    assert_non_null(strptime(now, "%Y-%m-%d %H:%M:%S", &tm));
    long long diff = (long long)timegm(&tm) - (long long)time(NULL);
    assert_true(diff > -10 && diff < 10);
    free(now);

    /* A TIMESTAMP is stored in UTC and shown in the session's zone: what went in comes out. */
    const char *p[] = {"10", "2024-06-30 18:45:00.5", "2024-06-30 18:45:00.5"};
    exec_ok(m, on_table("INSERT INTO %s (id, at, stamp) VALUES (?, ?, ?)"), 3, p);
    struct sy_mysql_res *res = NULL;
    assert_int_equal(sy_mysql_exec(m,
                                   on_table("SELECT at, stamp, UNIX_TIMESTAMP(stamp) FROM %s "
                                            "WHERE id = 10"),
                                   0, NULL, &res),
                     0);
    assert_string_equal(sy_mysql_res_get(res, 0, 0), "2024-06-30 18:45:00.500000");
    assert_string_equal(sy_mysql_res_get(res, 0, 1), "2024-06-30 18:45:00.500000");
    assert_string_equal(sy_mysql_res_get(res, 0, 2), "1719773100.500000");
    sy_mysql_res_free(res);
    sy_mysql_destroy(m);
    unsetenv("TZ");
    tzset();
}

/* --- Errors ----------------------------------------------------------------------------- */

static void strict_mode_refuses_bad_data_with_the_server_errno(void **state)
{
    struct sy_mysql *m = connect_my();
    clear_table(m);
    const char *ins = on_table("INSERT INTO %s (id, code) VALUES (?, ?)");
    const char *ok[] = {"1", "ten chars!"};
    exec_ok(m, ins, 2, ok);

    /* Eleven characters into VARCHAR(10): an error, never cut short. */
    const char *too_long[] = {"2", "elevenchars"};
    assert_int_equal(sy_mysql_exec(m, ins, 2, too_long, NULL), -SY_EDBDATA);
    assert_int_equal(sy_mysql_errno(m), 1406);
    assert_non_null(strstr(sy_mysql_error(m), "errno 1406"));
    assert_null(strstr(sy_mysql_error(m), "elevenchars"));
    assert_int_equal(query_int(m, on_table("SELECT COUNT(*) FROM %s WHERE id = 2"), 0, NULL), 0);

    /* Same key twice. The message names the key value (the server's text), not our SQL. */
    const char *dup[] = {"1", "other"};
    assert_int_equal(sy_mysql_exec(m, ins, 2, dup, NULL), -SY_EDBDATA);
    assert_int_equal(sy_mysql_errno(m), 1062);
    assert_non_null(strstr(sy_mysql_error(m), "SQLSTATE 23000"));
    assert_false(sy_err_retriable(-SY_EDBDATA));

    const char *bad_int[] = {"not a number", "x"};
    assert_int_equal(sy_mysql_exec(m, ins, 2, bad_int, NULL), -SY_EDBDATA);
    assert_int_equal(sy_mysql_errno(m), 1366);

    const char *null_id[] = {"5", NULL};
    assert_int_equal(
        sy_mysql_exec(m, on_table("INSERT INTO %s (id, hits) VALUES (?, ?)"), 2, null_id, NULL),
        -SY_EDBDATA);
    assert_int_equal(sy_mysql_errno(m), 1048);

    assert_int_equal(sy_mysql_exec(m, "SELEC 1", 0, NULL, NULL), -SY_EDBDATA);
    assert_int_equal(sy_mysql_errno(m), 1064);
    assert_int_equal(sy_mysql_exec(m, on_table("SELECT no_such_column FROM %s"), 0, NULL, NULL),
                     -SY_EDBDATA);
    assert_int_equal(sy_mysql_errno(m), 1054);
    assert_int_equal(sy_mysql_exec(m, "SELECT * FROM it_mysql_no_such_table", 0, NULL, NULL),
                     -SY_EDBDATA);
    assert_int_equal(sy_mysql_errno(m), 1146);

    /* A deadlock or lock wait is worth retrying. */
    assert_int_equal(
        sy_mysql_exec(m, "SIGNAL SQLSTATE '40001' SET MYSQL_ERRNO = 1213", 0, NULL, NULL), -SY_EDB);
    assert_int_equal(sy_mysql_errno(m), 1213);
    assert_true(sy_err_retriable(-SY_EDB));

    /* Placeholders and parameters must agree. */
    assert_int_equal(sy_mysql_exec(m, ins, 1, ok, NULL), -SY_EINVAL);
    assert_int_equal(sy_mysql_exec(m, NULL, 0, NULL, NULL), -SY_EINVAL);
    assert_int_equal(sy_mysql_exec(m, "", 0, NULL, NULL), -SY_EINVAL);

    /* The connection stays usable and a later success clears the error number. */
    assert_int_equal(query_int(m, on_table("SELECT COUNT(*) FROM %s"), 0, NULL), 1);
    assert_int_equal(sy_mysql_errno(m), 0);
    assert_int_equal(sy_mysql_ping(m), 0);
    sy_mysql_destroy(m);
}

static void on_duplicate_key_update_reports_the_servers_counts(void **state)
{
    struct sy_mysql *m = connect_my();
    clear_table(m);
    const char *upsert = on_table("INSERT INTO %s (id, code) VALUES (?, ?) "
                                  "ON DUPLICATE KEY UPDATE code = VALUES(code)");
    const char *first[] = {"7", "a"}, *changed[] = {"7", "b"};
    long long counts[3];
    const char *const *rows[] = {first, changed, changed};
    for (int i = 0; i < 3; i++) {
        struct sy_mysql_res *res = NULL;
        assert_int_equal(sy_mysql_exec(m, upsert, 2, rows[i], &res), 0);
        counts[i] = sy_mysql_res_affected(res);
        sy_mysql_res_free(res);
    }
    assert_int_equal(counts[0], 1); /* inserted */
    assert_int_equal(counts[1], 2); /* changed */
    assert_int_equal(counts[2], 0); /* unchanged */
    sy_mysql_destroy(m);
}

/* --- Transactions and the cache --------------------------------------------------------- */

static void transactions_commit_and_roll_back(void **state)
{
    struct sy_mysql *m = connect_my();
    clear_table(m);
    const char *ins = on_table("INSERT INTO %s (id, code) VALUES (?, ?)");
    const char *a[] = {"1", "rolledback"}, *b[] = {"2", "kept"};

    assert_int_equal(sy_mysql_begin(m), 0);
    assert_int_equal(sy_mysql_begin(m), -SY_EINVAL); /* no nesting */
    exec_ok(m, ins, 2, a);
    assert_int_equal(sy_mysql_rollback(m), 0);

    assert_int_equal(sy_mysql_begin(m), 0);
    exec_ok(m, ins, 2, b);
    /* A refused statement inside leaves the transaction open for the caller to decide. */
    assert_int_equal(sy_mysql_exec(m, ins, 2, b, NULL), -SY_EDBDATA);
    assert_int_equal(sy_mysql_commit(m), 0);

    char *v = query_one(m, on_table("SELECT GROUP_CONCAT(code ORDER BY id) FROM %s"), 0, NULL);
    assert_string_equal(v, "kept");
    free(v);
    sy_mysql_destroy(m);
}

static void statement_cache_serves_repeats_and_evicts_past_its_size(void **state)
{
    struct sy_mysql *m = connect_my();
    for (int i = 0; i < 100; i++) {
        char n[16];
        snprintf(n, sizeof n, "%d", i);
        const char *p[] = {n};
        assert_int_equal(query_int(m, "SELECT ? + 1", 1, p), i + 1);
    }
    /* More distinct statements than the cache holds, twice over, each still right. */
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 80; i++) {
            char sql[64];
            snprintf(sql, sizeof sql, "SELECT %d + ?", i);
            const char *p[] = {"1000"};
            assert_int_equal(query_int(m, sql, 1, p), 1000 + i);
        }
    sy_mysql_destroy(m);
}

/* --- Lost sessions ---------------------------------------------------------------------- */

static void kill_session(struct sy_mysql *victim)
{
    char *id = query_one(victim, "SELECT CONNECTION_ID()", 0, NULL);
    assert_non_null(id);
    assert_true(strspn(id, "0123456789") == strlen(id));
    char sql[64];
    snprintf(sql, sizeof sql, "KILL CONNECTION %s", id);
    struct sy_mysql *killer = connect_my();
    exec_ok(killer, sql, 0, NULL);
    sy_mysql_destroy(killer);
    free(id);
    th_sleep_ms(100); /* let the server close the socket before the victim's next statement */
}

static void killed_session_is_reopened_and_the_statement_retried_outside_a_transaction(void **state)
{
    struct sy_mysql *m = connect_my();
    long long before = query_int(m, "SELECT CONNECTION_ID()", 0, NULL);
    const char *p[] = {"41"};
    assert_int_equal(query_int(m, "SELECT ? + 1", 1, p), 42); /* cached before the kill */
    kill_session(m);
    assert_int_equal(query_int(m, "SELECT ? + 1", 1, p), 42);
    long long after = query_int(m, "SELECT CONNECTION_ID()", 0, NULL);
    assert_true(before != after);
    /* The new session got the same settings. */
    char *mode = query_one(m, "SELECT @@session.sql_mode", 0, NULL);
    assert_non_null(strstr(mode, "STRICT_ALL_TABLES"));
    free(mode);
    char *tz = query_one(m, "SELECT @@session.time_zone", 0, NULL);
    assert_string_equal(tz, "+00:00");
    free(tz);
    sy_mysql_destroy(m);
}

static void killed_session_inside_a_transaction_is_refused_until_rolled_back(void **state)
{
    struct sy_mysql *m = connect_my();
    clear_table(m);
    const char *ins = on_table("INSERT INTO %s (id, code) VALUES (?, ?)");
    const char *a[] = {"1", "lost"}, *b[] = {"2", "after"};
    assert_int_equal(sy_mysql_begin(m), 0);
    exec_ok(m, ins, 2, a);
    kill_session(m);
    /* Retrying would run the rest of the transaction in autocommit on a new session. */
    assert_int_equal(sy_mysql_exec(m, ins, 2, b, NULL), -SY_ECONN);
    assert_true(sy_err_retriable(-SY_ECONN));
    assert_int_equal(sy_mysql_exec(m, "SELECT 1", 0, NULL, NULL), -SY_ECONN);
    assert_int_equal(sy_mysql_begin(m), -SY_EINVAL);
    assert_int_equal(sy_mysql_rollback(m), 0);
    /* Usable again, on a fresh session; nothing of the lost transaction stayed. */
    assert_int_equal(query_int(m, on_table("SELECT COUNT(*) FROM %s"), 0, NULL), 0);

    /* And commit after a loss reports it instead of pretending. */
    assert_int_equal(sy_mysql_begin(m), 0);
    exec_ok(m, ins, 2, a);
    kill_session(m);
    assert_int_equal(sy_mysql_exec(m, ins, 2, b, NULL), -SY_ECONN);
    assert_int_equal(sy_mysql_commit(m), -SY_ECONN);
    assert_int_equal(query_int(m, on_table("SELECT COUNT(*) FROM %s"), 0, NULL), 0);
    sy_mysql_destroy(m);
}

static void read_timeout_ends_a_slow_statement(void **state)
{
    char url[1024];
    url_with(url, sizeof url, "read_timeout=1");
    struct sy_mysql *m = connect_url(url);
    int64_t t0 = th_now_ms();
    assert_int_equal(sy_mysql_exec(m, "SELECT SLEEP(3)", 0, NULL, NULL), -SY_ETIMEOUT);
    int64_t took = th_now_ms() - t0;
    assert_true(took >= 900 && took < 2900);
    /* Not retried on its own; the next statement gets a new session. */
    assert_int_equal(query_int(m, "SELECT 2 * 21", 0, NULL), 42);
    sy_mysql_destroy(m);
}

/* --- Connecting ------------------------------------------------------------------------- */

static void connect_errors_never_show_the_password(void **state)
{
    char err[512] = "";
    assert_null(sy_mysql_connect("mysql://root:s3cr3tPW@127.0.0.1:1/grm", err, sizeof err));
    assert_true(err[0] != '\0');
    assert_null(strstr(err, "s3cr3tPW"));

    /* A wrong password against the real server: refused, and not quoted either. */
    const char *url = th_need_env("SY_GRM_MYSQL_URL");
    const char *host = strchr(url + strlen("mysql://"), '@');
    if (host) {
        char bad[1024];
        snprintf(bad, sizeof bad, "mysql://it_mysql_nobody:wr0ngPassw0rd%s", host);
        assert_null(sy_mysql_connect(bad, err, sizeof err));
        assert_true(err[0] != '\0');
        assert_null(strstr(err, "wr0ngPassw0rd"));
    }
}

static void url_options_are_checked_and_unknown_ones_named(void **state)
{
    char url[1024], err[512] = "";
    url_with(url, sizeof url, "read_timeout=5&frobnicate=1");
    assert_null(sy_mysql_connect(url, err, sizeof err));
    assert_non_null(strstr(err, "frobnicate"));

    url_with(url, sizeof url, "connect_timeout=soon");
    assert_null(sy_mysql_connect(url, err, sizeof err));
    assert_non_null(strstr(err, "connect_timeout"));

    url_with(url, sizeof url, "ssl_mode=sometimes");
    assert_null(sy_mysql_connect(url, err, sizeof err));
    assert_non_null(strstr(err, "ssl_mode"));

    /* Known options are accepted; the server here offers no TLS, which preferred allows. */
    url_with(
        url, sizeof url,
        "connect_timeout=3&read_timeout=10&write_timeout=10&ssl_mode=preferred&charset=utf8mb4");
    struct sy_mysql *m = connect_url(url);
    char *cs = query_one(m, "SELECT @@session.character_set_client", 0, NULL);
    assert_string_equal(cs, "utf8mb4");
    free(cs);
    sy_mysql_destroy(m);

    /* ssl_mode=required holds whether or not the library would fall back to plain text. */
    m = connect_my();
    char *have_ssl = query_one(m, "SELECT @@have_ssl", 0, NULL);
    sy_mysql_destroy(m);
    url_with(url, sizeof url, "ssl_mode=required");
    if (strcmp(have_ssl, "YES") == 0) {
        m = connect_url(url);
        sy_mysql_destroy(m);
    } else {
        assert_null(sy_mysql_connect(url, err, sizeof err));
        assert_non_null(strstr(err, "TLS"));
    }
    free(have_ssl);

    assert_null(sy_mysql_connect("postgresql://root@127.0.0.1/grm", err, sizeof err));
    assert_non_null(strstr(err, "mysql://"));
}

int main(void)
{
    th_need_env("SY_GRM_MYSQL_URL");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parameters_nulls_and_utf8_round_trip_as_text),
        cmocka_unit_test(datetimes_are_utc_text_whatever_the_process_time_zone),
        cmocka_unit_test(strict_mode_refuses_bad_data_with_the_server_errno),
        cmocka_unit_test(on_duplicate_key_update_reports_the_servers_counts),
        cmocka_unit_test(transactions_commit_and_roll_back),
        cmocka_unit_test(statement_cache_serves_repeats_and_evicts_past_its_size),
        cmocka_unit_test(
            killed_session_is_reopened_and_the_statement_retried_outside_a_transaction),
        cmocka_unit_test(killed_session_inside_a_transaction_is_refused_until_rolled_back),
        cmocka_unit_test(read_timeout_ends_a_slow_statement),
        cmocka_unit_test(connect_errors_never_show_the_password),
        cmocka_unit_test(url_options_are_checked_and_unknown_ones_named),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
