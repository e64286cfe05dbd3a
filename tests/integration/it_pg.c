/* it_pg.c - the PostgreSQL wrapper against a real server (SY_PG_URL): parameters, error
 * translation, transactions, reconnects, and migrations (idempotent, concurrent, failing). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "sy/err.h"
#include "sy/pg.h"

static char run[17];

static struct sy_pg *connect_pg(void)
{
    char err[512] = "";
    struct sy_pg *pg = sy_pg_connect(th_need_env("SY_PG_URL"), err, sizeof err);
    if (!pg)
        fprintf(stderr, "sy_pg_connect: %s\n", err);
    assert_non_null(pg);
    return pg;
}

static void exec_ok(struct sy_pg *pg, const char *sql)
{
    int rc = sy_pg_exec(pg, sql, 0, NULL, NULL);
    if (rc)
        fprintf(stderr, "%s: %s\n", sql, sy_pg_error(pg));
    assert_int_equal(rc, 0);
}

/* A single-value query as text (caller frees), NULL for SQL NULL. */
static char *query_one(struct sy_pg *pg, const char *sql, const char *param)
{
    struct sy_pg_res *res = NULL;
    const char *params[] = {param};
    int rc = sy_pg_exec(pg, sql, param ? 1 : 0, params, &res);
    if (rc)
        fprintf(stderr, "%s: %s\n", sql, sy_pg_error(pg));
    assert_int_equal(rc, 0);
    assert_int_equal(sy_pg_res_rows(res), 1);
    const char *v = sy_pg_res_get(res, 0, 0);
    char *copy = v ? strdup(v) : NULL;
    sy_pg_res_free(res);
    return copy;
}

static long long query_int(struct sy_pg *pg, const char *sql, const char *param)
{
    char *v = query_one(pg, sql, param);
    assert_non_null(v);
    long long n = atoll(v);
    free(v);
    return n;
}

/* A schema of this run, made the connection's first search_path entry, so that migrations
 * and their sy_migrations table never touch the shared database's own. */
static void use_schema(struct sy_pg *pg, const char *schema, bool create)
{
    char sql[256];
    if (create) {
        snprintf(sql, sizeof sql, "CREATE SCHEMA %s", schema);
        exec_ok(pg, sql);
    }
    const char *params[] = {schema};
    assert_int_equal(sy_pg_exec(pg, "SELECT set_config('search_path', $1, false)", 1, params, NULL),
                     0);
}

static void drop_schema(struct sy_pg *pg, const char *schema)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
    exec_ok(pg, sql);
}

/* --- Migration directories -------------------------------------------------------------- */

struct tmpdir {
    char path[512];
    char files[8][64];
    size_t nfiles;
};

static void tmpdir_make(struct tmpdir *d)
{
    memset(d, 0, sizeof *d);
    const char *base = getenv("SY_BUILD_DIR");
    if (!base || !*base)
        base = getenv("TMPDIR");
    if (!base || !*base)
        base = P_tmpdir;
    snprintf(d->path, sizeof d->path, "%s/it_pg_XXXXXX", base);
    assert_non_null(mkdtemp(d->path));
}

static void tmpdir_add(struct tmpdir *d, const char *name, const char *content)
{
    char p[640];
    snprintf(p, sizeof p, "%s/%s", d->path, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(content, f);
    assert_int_equal(fclose(f), 0);
    assert_true(d->nfiles < 8);
    snprintf(d->files[d->nfiles++], sizeof d->files[0], "%s", name);
}

static void tmpdir_remove(struct tmpdir *d)
{
    char p[640];
    for (size_t i = 0; i < d->nfiles; i++) {
        snprintf(p, sizeof p, "%s/%s", d->path, d->files[i]);
        unlink(p);
    }
    rmdir(d->path);
}

struct applied {
    atomic_int count;
    char names[8][64];
};

static void on_applied(const char *name, void *ud)
{
    struct applied *a = ud;
    int i = atomic_fetch_add(&a->count, 1);
    if (i < 8)
        snprintf(a->names[i], sizeof a->names[0], "%s", name);
}

/* --- Statements ------------------------------------------------------------------------- */

static void parameters_with_quotes_and_nulls_round_trip(void **state)
{
    struct sy_pg *pg = connect_pg();
    const char *tricky = "it's \"quoted\" \\ back; -- not a comment $1 'x'); DROP TABLE x;";
    const char *params[] = {tricky, NULL, "", "grüße ☃"};
    struct sy_pg_res *res = NULL;
    assert_int_equal(sy_pg_exec(pg, "SELECT $1::text, $2::text, $3::text, $4::text, $2 IS NULL", 4,
                                params, &res),
                     0);
    assert_int_equal(sy_pg_res_rows(res), 1);
    assert_int_equal(sy_pg_res_cols(res), 5);
    assert_string_equal(sy_pg_res_get(res, 0, 0), tricky);
    assert_null(sy_pg_res_get(res, 0, 1));
    assert_non_null(sy_pg_res_get(res, 0, 2)); /* empty is not NULL */
    assert_string_equal(sy_pg_res_get(res, 0, 2), "");
    assert_string_equal(sy_pg_res_get(res, 0, 3), "grüße ☃");
    assert_string_equal(sy_pg_res_get(res, 0, 4), "t");
    assert_null(sy_pg_res_get(res, 1, 0)); /* out of range */
    assert_null(sy_pg_res_get(res, 0, 5));
    sy_pg_res_free(res);
    sy_pg_destroy(pg);
}

static void errors_are_translated_and_the_connection_stays_usable(void **state)
{
    struct sy_pg *pg = connect_pg();
    exec_ok(pg, "CREATE TEMP TABLE it_pg_unique (id int PRIMARY KEY, note text)");
    const char *params[] = {"1", "first"};
    struct sy_pg_res *res = NULL;
    assert_int_equal(sy_pg_exec(pg, "INSERT INTO it_pg_unique VALUES ($1, $2)", 2, params, &res),
                     0);
    assert_int_equal(sy_pg_res_affected(res), 1);
    sy_pg_res_free(res);

    /* unique_violation (23505) is the data's fault: not worth retrying. */
    assert_int_equal(sy_pg_exec(pg, "INSERT INTO it_pg_unique VALUES ($1, $2)", 2, params, NULL),
                     -SY_EDBDATA);
    assert_non_null(strstr(sy_pg_error(pg), "23505"));
    assert_false(sy_err_retriable(-SY_EDBDATA));

    const char *bad_int[] = {"not a number"};
    assert_int_equal(sy_pg_exec(pg, "SELECT $1::int", 1, bad_int, NULL), -SY_EDBDATA); /* 22P02 */
    assert_int_equal(sy_pg_exec(pg, "SELEC 1", 0, NULL, NULL), -SY_EDBDATA);           /* 42601 */
    assert_int_equal(sy_pg_exec(pg, "SELECT * FROM it_pg_no_such_table", 0, NULL, NULL),
                     -SY_EDBDATA); /* 42P01 */
    /* A lock timeout (55P03) is worth retrying. */
    assert_int_equal(sy_pg_exec(pg,
                                "DO $$ BEGIN RAISE EXCEPTION 'busy' USING ERRCODE = '55P03'; "
                                "END $$",
                                0, NULL, NULL),
                     -SY_EDB);
    assert_true(sy_err_retriable(-SY_EDB));
    assert_int_equal(sy_pg_exec(pg,
                                "DO $$ BEGIN RAISE EXCEPTION 'retry' USING ERRCODE = '40001'; "
                                "END $$",
                                0, NULL, NULL),
                     -SY_EDB);

    assert_int_equal(query_int(pg, "SELECT count(*) FROM it_pg_unique", NULL), 1);
    assert_int_equal(sy_pg_exec(pg, NULL, 0, NULL, NULL), -SY_EINVAL);
    sy_pg_destroy(pg);
}

static void transactions_commit_roll_back_and_report_aborts(void **state)
{
    struct sy_pg *pg = connect_pg();
    exec_ok(pg, "CREATE TEMP TABLE it_pg_tx (v text)");
    const char *a[] = {"rolled back"}, *b[] = {"kept"};

    assert_int_equal(sy_pg_begin(pg), 0);
    assert_int_equal(sy_pg_begin(pg), -SY_EINVAL); /* no nesting */
    assert_int_equal(sy_pg_exec(pg, "INSERT INTO it_pg_tx VALUES ($1)", 1, a, NULL), 0);
    assert_int_equal(sy_pg_rollback(pg), 0);

    assert_int_equal(sy_pg_begin(pg), 0);
    assert_int_equal(sy_pg_exec(pg, "INSERT INTO it_pg_tx VALUES ($1)", 1, b, NULL), 0);
    assert_int_equal(sy_pg_commit(pg), 0);

    /* A failed statement aborts the transaction; COMMIT must not pretend it worked. */
    assert_int_equal(sy_pg_begin(pg), 0);
    assert_int_equal(sy_pg_exec(pg, "INSERT INTO it_pg_tx VALUES ($1)", 1, a, NULL), 0);
    assert_int_equal(sy_pg_exec(pg, "SELECT 1/0", 0, NULL, NULL), -SY_EDBDATA);
    assert_int_equal(sy_pg_commit(pg), -SY_EDB);

    char *v = query_one(pg, "SELECT string_agg(v, ',') FROM it_pg_tx", NULL);
    assert_string_equal(v, "kept");
    free(v);
    sy_pg_destroy(pg);
}

/* sy_pg_exec_fenced: a write commits with its fence in one round trip, a stale fence writes
 * nothing, a failing write leaves no fence behind, and the connection stays usable. A temporary
 * sy_fences of the migration's shape stands in for the shared one. */
static void fenced_writes_commit_with_their_fence_or_not_at_all(void **state)
{
    struct sy_pg *pg = connect_pg();
    struct sy_pg_res *res = NULL;
    exec_ok(pg, "CREATE TEMP TABLE sy_fences (resource text PRIMARY KEY,"
                " fence bigint NOT NULL CHECK (fence > 0),"
                " updated_at timestamptz NOT NULL DEFAULT now())");
    exec_ok(pg, "CREATE TEMP TABLE it_pg_fenced (k text PRIMARY KEY, v int NOT NULL)");
    const char *put = "INSERT INTO it_pg_fenced VALUES ($1, $2::int) ON CONFLICT (k)"
                      " DO UPDATE SET v = EXCLUDED.v RETURNING v";
    const char *five[] = {"a", "5"}, *three[] = {"a", "3"}, *seven[] = {"a", "7"};

    assert_int_equal(sy_pg_exec_fenced(pg, "res:a", 5, put, 2, five, &res), 0);
    assert_int_equal(sy_pg_res_rows(res), 1);
    assert_string_equal(sy_pg_res_get(res, 0, 0), "5");
    sy_pg_res_free(res);
    /* The same holder writes again; an older one is refused and writes nothing. */
    assert_int_equal(sy_pg_exec_fenced(pg, "res:a", 5, put, 2, five, NULL), 0);
    assert_int_equal(sy_pg_exec_fenced(pg, "res:a", 4, put, 2, three, &res), -SY_ESTALE);
    assert_null(res);
    assert_int_equal(query_int(pg, "SELECT v FROM it_pg_fenced WHERE k = 'a'", NULL), 5);
    assert_int_equal(query_int(pg, "SELECT fence FROM sy_fences WHERE resource = 'res:a'", NULL),
                     5);
    /* A write that fails takes its fence with it: the newer fence is not recorded. */
    const char *bad[] = {"a", "seven"};
    assert_int_equal(sy_pg_exec_fenced(pg, "res:a", 9, put, 2, bad, NULL), -SY_EDBDATA);
    assert_int_equal(query_int(pg, "SELECT fence FROM sy_fences WHERE resource = 'res:a'", NULL),
                     5);
    assert_int_equal(sy_pg_exec_fenced(pg, "res:a", 6, put, 2, seven, NULL), 0);
    assert_int_equal(query_int(pg, "SELECT v FROM it_pg_fenced WHERE k = 'a'", NULL), 7);
    /* Not inside a transaction of the caller's, and not without a fence. */
    assert_int_equal(sy_pg_begin(pg), 0);
    assert_int_equal(sy_pg_exec_fenced(pg, "res:a", 6, put, 2, seven, NULL), -SY_EINVAL);
    assert_int_equal(sy_pg_rollback(pg), 0);
    assert_int_equal(sy_pg_exec_fenced(pg, "res:a", 0, put, 2, seven, NULL), -SY_EINVAL);
    assert_int_equal(query_int(pg, "SELECT count(*) FROM it_pg_fenced", NULL), 1);
    sy_pg_destroy(pg);
}

static void terminate(struct sy_pg *victim)
{
    char *pid = query_one(victim, "SELECT pg_backend_pid()::text", NULL);
    struct sy_pg *killer = connect_pg();
    char *killed = query_one(killer, "SELECT pg_terminate_backend($1::int)::text", pid);
    assert_string_equal(killed, "true");
    free(killed);
    sy_pg_destroy(killer);
    free(pid);
    th_sleep_ms(50); /* let the backend go before the victim's next statement */
}

static void lost_connection_is_reset_and_retried_outside_a_transaction(void **state)
{
    struct sy_pg *pg = connect_pg();
    char *before = query_one(pg, "SELECT pg_backend_pid()::text", NULL);
    terminate(pg);
    /* The next statement fails on the dead session, reconnects once, and runs again. */
    char *after = query_one(pg, "SELECT pg_backend_pid()::text", NULL);
    assert_string_not_equal(before, after);
    free(before);
    free(after);
    sy_pg_destroy(pg);
}

static void lost_connection_inside_a_transaction_is_not_retried(void **state)
{
    struct sy_pg *pg = connect_pg();
    assert_int_equal(sy_pg_begin(pg), 0);
    exec_ok(pg, "CREATE TEMP TABLE it_pg_lost (v int)");
    terminate(pg);
    /* Retrying would run the rest of the transaction in autocommit mode on a new session. */
    assert_int_equal(sy_pg_exec(pg, "INSERT INTO it_pg_lost VALUES (1)", 0, NULL, NULL), -SY_ECONN);
    assert_true(sy_err_retriable(-SY_ECONN));
    assert_int_equal(sy_pg_exec(pg, "SELECT 1", 0, NULL, NULL), -SY_ECONN);
    assert_int_equal(sy_pg_rollback(pg), 0);
    /* After the rollback the handle is usable again, on a fresh session. */
    assert_int_equal(query_int(pg, "SELECT 41 + 1", NULL), 42);
    assert_int_equal(sy_pg_exec(pg, "SELECT * FROM it_pg_lost", 0, NULL, NULL), -SY_EDBDATA);
    sy_pg_destroy(pg);
}

static void connect_errors_never_show_the_password(void **state)
{
    char err[512] = "";
    assert_null(
        sy_pg_connect("postgresql://postgres:pw-s3cret-x@127.0.0.1:1/none", err, sizeof err));
    assert_true(err[0] != '\0');
    assert_null(strstr(err, "pw-s3cret-x"));
    assert_null(sy_pg_connect("postgresql://[broken", err, sizeof err));
    assert_true(err[0] != '\0');
}

/* --- Migrations ------------------------------------------------------------------------- */

static void repository_migrations_apply_once(void **state)
{
    char dir[1024], err[512] = "";
    snprintf(dir, sizeof dir, "%s/schemas/sql/postgres", th_need_env("SY_SOURCE_DIR"));
    struct sy_pg *pg = connect_pg();
    struct applied first = {0}, second = {0};
    int rc = sy_pg_migrate(pg, dir, on_applied, &first, err, sizeof err);
    if (rc)
        fprintf(stderr, "migrate: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(sy_pg_migrate(pg, dir, on_applied, &second, err, sizeof err), 0);
    assert_int_equal(atomic_load(&second.count), 0);
    assert_int_equal(
        query_int(pg, "SELECT count(*) FROM sy_migrations WHERE name = $1", "0001_runtime.sql"), 1);
    assert_int_equal(query_int(pg, "SELECT count(*) FROM sy_fences WHERE false", NULL), 0);
    sy_pg_destroy(pg);
}

static const char m1[] = "CREATE TABLE applied_log (name text NOT NULL);\n"
                         "CREATE TABLE widgets (id int PRIMARY KEY, label text);\n";
static const char m2[] = "-- two statements in one file\n"
                         "INSERT INTO applied_log VALUES ('0002');\n"
                         "INSERT INTO widgets VALUES (1, 'it''s one');\n";
static const char m3[] = "SELECT pg_sleep(0.3);\nINSERT INTO applied_log VALUES ('0003');\n";

static void migrations_apply_in_order_once(void **state)
{
    char schema[64], err[512] = "";
    snprintf(schema, sizeof schema, "it_pg_%s_order", run);
    struct tmpdir d;
    tmpdir_make(&d);
    /* Written out of order: the run sorts by name. Non-migration files are left alone. */
    tmpdir_add(&d, "0003_slow.sql", m3);
    tmpdir_add(&d, "0001_tables.sql", m1);
    tmpdir_add(&d, "0002_rows.sql", m2);
    tmpdir_add(&d, "README.md", "not a migration");

    struct sy_pg *pg = connect_pg();
    use_schema(pg, schema, true);
    struct applied first = {0}, second = {0};
    int rc = sy_pg_migrate(pg, d.path, on_applied, &first, err, sizeof err);
    if (rc)
        fprintf(stderr, "migrate: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(atomic_load(&first.count), 3);
    assert_string_equal(first.names[0], "0001_tables.sql");
    assert_string_equal(first.names[1], "0002_rows.sql");
    assert_string_equal(first.names[2], "0003_slow.sql");

    assert_int_equal(sy_pg_migrate(pg, d.path, on_applied, &second, err, sizeof err), 0);
    assert_int_equal(atomic_load(&second.count), 0);
    assert_int_equal(query_int(pg, "SELECT count(*) FROM applied_log", NULL), 2);
    assert_int_equal(query_int(pg, "SELECT count(*) FROM sy_migrations", NULL), 3);
    char *label = query_one(pg, "SELECT label FROM widgets WHERE id = 1", NULL);
    assert_string_equal(label, "it's one");
    free(label);

    drop_schema(pg, schema);
    sy_pg_destroy(pg);
    tmpdir_remove(&d);
}

struct migrator {
    const char *schema;
    const char *dir;
    struct applied *applied;
    int rc;
    char err[512];
};

static void *migrator_main(void *arg)
{
    struct migrator *m = arg;
    m->rc = -SY_ECONN;
    struct sy_pg *pg = sy_pg_connect(getenv("SY_PG_URL"), m->err, sizeof m->err);
    if (!pg)
        return NULL;
    const char *params[] = {m->schema};
    m->rc = sy_pg_exec(pg, "SELECT set_config('search_path', $1, false)", 1, params, NULL);
    if (m->rc == 0)
        m->rc = sy_pg_migrate(pg, m->dir, on_applied, m->applied, m->err, sizeof m->err);
    sy_pg_destroy(pg);
    return NULL;
}

static void concurrent_migrators_apply_each_file_once(void **state)
{
    char schema[64];
    snprintf(schema, sizeof schema, "it_pg_%s_race", run);
    struct tmpdir d;
    tmpdir_make(&d);
    tmpdir_add(&d, "0001_tables.sql", m1);
    tmpdir_add(&d, "0002_rows.sql", m2);
    tmpdir_add(&d, "0003_slow.sql", m3);
    struct sy_pg *pg = connect_pg();
    use_schema(pg, schema, true);

    struct applied applied = {0};
    struct migrator m[2];
    pthread_t tid[2];
    for (int i = 0; i < 2; i++) {
        m[i] = (struct migrator){.schema = schema, .dir = d.path, .applied = &applied};
        assert_int_equal(pthread_create(&tid[i], NULL, migrator_main, &m[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(tid[i], NULL);
        if (m[i].rc)
            fprintf(stderr, "migrator %d: %s\n", i, m[i].err);
        assert_int_equal(m[i].rc, 0);
    }
    assert_int_equal(atomic_load(&applied.count), 3);
    assert_int_equal(query_int(pg, "SELECT count(*) FROM applied_log", NULL), 2);
    assert_int_equal(query_int(pg, "SELECT count(DISTINCT name) FROM applied_log", NULL), 2);
    assert_int_equal(query_int(pg, "SELECT count(*) FROM sy_migrations", NULL), 3);

    drop_schema(pg, schema);
    sy_pg_destroy(pg);
    tmpdir_remove(&d);
}

static void failing_migration_names_the_file_and_keeps_earlier_ones(void **state)
{
    char schema[64], err[512] = "";
    snprintf(schema, sizeof schema, "it_pg_%s_bad", run);
    struct tmpdir d;
    tmpdir_make(&d);
    tmpdir_add(&d, "0001_tables.sql", m1);
    tmpdir_add(&d, "0002_broken.sql",
               "CREATE TABLE half_done (id int);\nCREATE TABLEE oops (id int);\n");
    tmpdir_add(&d, "0003_never.sql", "CREATE TABLE never_reached (id int);\n");
    struct sy_pg *pg = connect_pg();
    use_schema(pg, schema, true);

    struct applied applied = {0};
    int rc = sy_pg_migrate(pg, d.path, on_applied, &applied, err, sizeof err);
    assert_int_equal(rc, -SY_EDBDATA);
    assert_non_null(strstr(err, "0002_broken.sql"));
    assert_non_null(strstr(err, "syntax error"));
    assert_int_equal(atomic_load(&applied.count), 1);

    /* 0001 stays applied; 0002 left nothing behind; 0003 never ran. */
    assert_int_equal(query_int(pg, "SELECT count(*) FROM sy_migrations", NULL), 1);
    assert_int_equal(
        query_int(pg, "SELECT count(*) FROM sy_migrations WHERE name = $1", "0001_tables.sql"), 1);
    assert_int_equal(query_int(pg, "SELECT count(*) FROM applied_log", NULL), 0);
    char *t = query_one(pg, "SELECT to_regclass($1)::text", "half_done");
    assert_null(t);
    t = query_one(pg, "SELECT to_regclass($1)::text", "never_reached");
    assert_null(t);

    /* The same handle keeps working after the failed run. */
    assert_int_equal(query_int(pg, "SELECT 1", NULL), 1);
    drop_schema(pg, schema);
    sy_pg_destroy(pg);
    tmpdir_remove(&d);
}

static void migration_that_commits_itself_is_refused(void **state)
{
    char schema[64], err[512] = "";
    snprintf(schema, sizeof schema, "it_pg_%s_commit", run);
    struct tmpdir d;
    tmpdir_make(&d);
    tmpdir_add(&d, "0001_sneaky.sql", "CREATE TABLE sneaky (id int);\nCOMMIT;\n");
    struct sy_pg *pg = connect_pg();
    use_schema(pg, schema, true);
    int rc = sy_pg_migrate(pg, d.path, NULL, NULL, err, sizeof err);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(err, "0001_sneaky.sql"));
    assert_int_equal(query_int(pg, "SELECT count(*) FROM sy_migrations", NULL), 0);
    drop_schema(pg, schema);
    sy_pg_destroy(pg);
    tmpdir_remove(&d);
}

static void missing_directory_is_an_error(void **state)
{
    char err[512] = "";
    struct sy_pg *pg = connect_pg();
    assert_int_equal(sy_pg_migrate(pg, "no-such-migrations-dir", NULL, NULL, err, sizeof err),
                     -SY_EIO);
    assert_non_null(strstr(err, "no-such-migrations-dir"));
    sy_pg_destroy(pg);
}

int main(void)
{
    th_need_env("SY_PG_URL");
    th_run_id(run);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parameters_with_quotes_and_nulls_round_trip),
        cmocka_unit_test(errors_are_translated_and_the_connection_stays_usable),
        cmocka_unit_test(transactions_commit_roll_back_and_report_aborts),
        cmocka_unit_test(fenced_writes_commit_with_their_fence_or_not_at_all),
        cmocka_unit_test(lost_connection_is_reset_and_retried_outside_a_transaction),
        cmocka_unit_test(lost_connection_inside_a_transaction_is_not_retried),
        cmocka_unit_test(connect_errors_never_show_the_password),
        cmocka_unit_test(repository_migrations_apply_once),
        cmocka_unit_test(migrations_apply_in_order_once),
        cmocka_unit_test(concurrent_migrators_apply_each_file_once),
        cmocka_unit_test(failing_migration_names_the_file_and_keeps_earlier_ones),
        cmocka_unit_test(migration_that_commits_itself_is_refused),
        cmocka_unit_test(missing_directory_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
