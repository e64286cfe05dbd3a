/* cm_ingest.h - what sy-ingest's integration tests share: a worker started on a settings file
 * of the test's own, polls published, the ledger of one source counted and waited on, the
 * documents it announced, and the source's rows removed at the end. Checks fail the running
 * cmocka test. */
#ifndef SY_TEST_CM_INGEST_H
#define SY_TEST_CM_INGEST_H

#include <errno.h>
#include <sys/stat.h>

#include "cm_worker.h"
#include "sy/pg.h"
#include "sy/topology.h"

#define TH_INGEST_START_MAX_MS 20000

/* A test group's stores: the fleet's topology with sy.ingest and sy.knowledge declared and
 * purged (connection named name), PostgreSQL migrated, and a folder of the run's own,
 * $SY_BUILD_DIR/Testing/<name>-<run>, for the settings file (conf) and the file store (files).
 * dir, files and conf hold 1200 bytes or more; queue and dead 256. */
static inline void th_ingest_prepare(const char *name, const char *run, struct sy_amqp **a,
                                     struct sy_topology **topo, char *queue, char *dead,
                                     struct sy_pg **pg, char *dir, char *files, char *conf)
{
    const char *build = th_need_env("SY_BUILD_DIR");
    char err[512] = "", path[1200];

    *a = th_fleet_amqp("ingest", name, topo, queue, dead);
    if (sy_amqp_declare(*a, *topo, "knowledge") != 0)
        fail_msg("declare: %s", sy_amqp_error(*a));
    th_purge_worker(*a, *topo, "knowledge");
    if (!(*pg = sy_pg_connect(th_need_env("SY_PG_URL"), err, sizeof err)))
        fail_msg("pg: %s", err);
    snprintf(path, sizeof path, "%s/schemas/sql/postgres", th_need_env("SY_SOURCE_DIR"));
    if (sy_pg_migrate(*pg, path, NULL, NULL, err, sizeof err) != 0)
        fail_msg("migrate: %s", err);
    snprintf(path, sizeof path, "%s/Testing", build);
    mkdir(path, 0755);
    snprintf(dir, 1150, "%.1000s/Testing/%.64s-%.16s", build, name, run);
    if (mkdir(dir, 0755) != 0)
        fail_msg("mkdir %s: %s", dir, strerror(errno));
    snprintf(files, 1200, "%.1150s/files", dir);
    snprintf(conf, 1200, "%.1150s/ingest.yaml", dir);
}

/* Starts sy-ingest (SY_INGEST_BIN) on the settings file conf and file store files, with extra
 * "K=V" settings (NULL-terminated, may be NULL); waits until it is ready. */
static inline void th_ingest_start(struct th_proc *p, bool *running, int *port, const char *run,
                                   const char *conf, const char *files, const char *const *extra)
{
    char addr[64], inst[96], sources[1400], store[1400];
    const char *env[16] = {addr, inst, sources, store, "SY_HANDLER_THREADS=2", "SY_LOG_LEVEL=info"};
    size_t n = 6;

    *port = th_free_port();
    snprintf(addr, sizeof addr, "SY_HTTP_ADDR=127.0.0.1:%d", *port);
    snprintf(inst, sizeof inst, "SY_INSTANCE=it-ingest-%s", run);
    snprintf(sources, sizeof sources, "SY_INGEST_SOURCES=%s", conf);
    snprintf(store, sizeof store, "SY_FILES_ROOT=%s", files);
    for (size_t i = 0; extra && extra[i] && n < 15; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    assert_int_equal(th_proc_spawn(p, th_need_env("SY_INGEST_BIN"), env), 0);
    *running = true;
    th_wait_answer(p, running, "sy-ingest", *port, "/readyz", 200, TH_INGEST_START_MAX_MS);
}

/* Publishes a message of type with data (packed msgpack; NULL: an empty map) and waits for the
 * broker's confirm. */
static inline void th_ingest_publish(struct sy_amqp *a, const char *exchange, const char *type,
                                     const char *id, const void *data, size_t len)
{
    int rc = th_publish_body(a, exchange, type, id, data ? data : "\x80", data ? len : 1, NULL);

    if (rc == 0)
        rc = sy_amqp_wait_confirms(a, 10000);
    if (rc != 0)
        fail_msg("publishing %s: %s", type, sy_strerror(rc));
}

/* The first column of the first row of sql over $1 = source, as a number (0 for none). */
static inline long long th_ingest_count(struct sy_pg *pg, const char *source, const char *sql)
{
    struct sy_pg_res *res = NULL;
    long long n;

    if (sy_pg_exec(pg, sql, 1, &source, &res) != 0)
        fail_msg("%s: %s", sql, sy_pg_error(pg));
    n = sy_pg_res_rows(res) && sy_pg_res_get(res, 0, 0) ? atoll(sy_pg_res_get(res, 0, 0)) : 0;
    sy_pg_res_free(res);
    return n;
}

/* Items of source with this status (stored, duplicate, rejected, expanded). */
static inline long long th_ingest_items(struct sy_pg *pg, const char *source, const char *status)
{
    char sql[200];

    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM document_items WHERE source = $1 AND status = '%s'", status);
    return th_ingest_count(pg, source, sql);
}

/* Waits until source has want items of status and queue is empty, then that they stay so;
 * fails (with the worker's log) when the worker exits or max_ms pass first. */
static inline void th_ingest_wait_items(struct sy_amqp *a, const char *queue, struct sy_pg *pg,
                                        const char *source, const char *status, long long want,
                                        struct th_proc *p, bool *running, int max_ms)
{
    int64_t end = th_now_ms() + max_ms;

    for (;;) {
        long long n = th_ingest_items(pg, source, status);

        if (n >= want && th_queue_depth(a, queue) == 0) {
            th_sleep_ms(500); /* anything still in flight settles */
            if ((n = th_ingest_items(pg, source, status)) != want)
                fail_msg("%lld %s items, expected %lld", n, status, want);
            return;
        }
        if (th_proc_wait(p, 0) == 0) {
            *running = false;
            th_proc_dump_log(p, 40);
            fail_msg("sy-ingest exited with %d", p->exit_status);
        }
        if (th_now_ms() > end) {
            th_proc_dump_log(p, 40);
            fail_msg("%lld %s items after %d ms, expected %lld", n, status, max_ms, want);
        }
        th_sleep_ms(100);
    }
}

/* document.ingested messages of source read so far from queue (moved into msgs). */
static inline size_t th_ingest_announced(struct sy_amqp *a, const char *queue, struct th_got *msgs,
                                         size_t max, size_t *n, const char *source)
{
    size_t k = 0;

    th_drain(a, queue, msgs, max, n);
    for (size_t i = 0; i < *n; i++) {
        const char *s =
            json_string_value(json_object_get(json_object_get(msgs[i].env, "data"), "source"));

        k += s && strcmp(s, source) == 0;
    }
    return k;
}

/* Removes what source left: its items, documents, ledger row and poller's fence, then the
 * folder dir (the settings file and the file store), unless NULL. */
static inline void th_ingest_forget(struct sy_pg *pg, const char *source, const char *dir)
{
    char fence[128], cmd[1400];
    const char *p[1] = {source}, *l[1] = {fence};

    snprintf(fence, sizeof fence, "ingest:%s", source);
    sy_pg_exec(pg, "DELETE FROM document_items WHERE source = $1", 1, p, NULL);
    sy_pg_exec(pg, "DELETE FROM documents WHERE source = $1", 1, p, NULL);
    sy_pg_exec(pg, "DELETE FROM ingest_sources WHERE source = $1", 1, p, NULL);
    sy_pg_exec(pg, "DELETE FROM sy_fences WHERE resource = $1", 1, l, NULL);
    if (!dir)
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* Everything a test's group leaves behind: the worker stopped, the source forgotten (rows and
 * dir), the messages read freed, the worker's queues purged, the connections closed. */
static inline void th_ingest_teardown(struct th_proc *p, bool *running, struct sy_amqp *a,
                                      struct sy_topology *topo, struct sy_pg *pg,
                                      const char *source, const char *dir, struct th_got *msgs,
                                      size_t n)
{
    if (*running)
        th_stop(p, running);
    th_proc_cleanup(p);
    th_ingest_forget(pg, source, dir);
    for (size_t i = 0; i < n; i++) {
        free(msgs[i].id);
        json_decref(msgs[i].env);
    }
    th_purge_worker(a, topo, "ingest");
    sy_amqp_destroy(a);
    sy_topology_destroy(topo);
    sy_pg_destroy(pg);
}

#endif
