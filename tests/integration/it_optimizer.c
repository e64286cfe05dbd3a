/* it_optimizer.c - sy-optimizer end to end against the real broker and PostgreSQL:
 *  - a small hand-checkable scenario (one IU, one GU, a per-tonne road route and a rail route of
 *    one 500 t lot) comes back optimal at exactly 1313000 in optimizer.result and optimizer_runs;
 *  - a scenario naming an unknown node is dead-lettered with the sheet and row in the reason;
 *  - a closing-stock floor no production can reach is reported infeasible;
 *  - a long search stopped by optimizer.cancel (published separately) ends cancelled with its
 *    best plan, after progress messages;
 *  - a solver over its memory limit ends as a clean error naming memory;
 *  - a CPLEX LP and a free MPS model through optimizer.solve_model come back at their optimum;
 *  - a solve message delivered again is answered from the stored run, not solved twice;
 *  - `syctl optimizer load` reads CSV sheets (and refuses a bad one naming file and line), a
 *    solve names the dataset, and `runs`, `show` and `export --csv` show and write its plan;
 *  - SIGTERM mid-solve records nothing final and gives the run back: the next process solves it.
 * Isolation on shared services: run ids, the dataset name and the CSV folder are the run's
 * own; sy.optimizer and sy.planner are purged before and after. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm_worker.h"
#include "harness.h"
#include "op_scenario.h"
#include "sy/amqp.h"
#include "sy/err.h"
#include "sy/json.h"
#include "sy/pg.h"
#include "sy/topology.h"

#define EXCHANGE     "sy.events"
#define PLANNER      "planner"
#define START_MAX_MS 20000
#define WAIT_MS      60000
#define MAX_MSGS     4096

struct fixture {
    struct sy_amqp *amqp;
    struct sy_topology *topo;
    struct sy_pg *pg;
    char queue[256], dead[256], planner[256], run[17], dir[1200];
    struct th_proc proc;
    bool running;
    int port;
    struct th_got msgs[MAX_MSGS];
    size_t n;
};

static struct fixture F;

/* --- helpers -------------------------------------------------------------------------------- */

static void publish(const char *type, const char *id, json_t *data)
{
    void *mp = NULL;
    size_t len = 0;
    int rc;

    assert_int_equal(sy_json_to_msgpack(data, &mp, &len), 0);
    json_decref(data);
    rc = th_publish_body(F.amqp, EXCHANGE, type, id, mp, len, NULL);
    if (rc == 0)
        rc = sy_amqp_wait_confirms(F.amqp, 10000);
    free(mp);
    if (rc != 0)
        fail_msg("publishing %s: %s", type, sy_strerror(rc));
}

/* A run id of this test run's own. */
static void run_id(char *buf, size_t len, const char *what)
{
    snprintf(buf, len, "it%s-%s", F.run, what);
}

static void check_alive(void)
{
    if (th_proc_wait(&F.proc, 0) == 0) {
        F.running = false;
        th_proc_dump_log(&F.proc, 40);
        fail_msg("sy-optimizer exited with %d", F.proc.exit_status);
    }
}

/* The data of the n-th (from 1) message with this id read from sy.planner, waiting for it. */
static json_t *wait_msg(const char *id, int nth, int max_ms)
{
    int64_t end = th_now_ms() + max_ms;

    for (;;) {
        json_t *env = NULL;

        th_drain(F.amqp, F.planner, F.msgs, MAX_MSGS, &F.n);
        if (th_got_count(F.msgs, F.n, id, &env) >= nth)
            return json_object_get(env, "data");
        check_alive();
        if (th_now_ms() > end) {
            th_proc_dump_log(&F.proc, 40);
            fail_msg("no message %s after %d ms", id, max_ms);
        }
        th_sleep_ms(100);
    }
}

static json_t *wait_result(const char *run, int max_ms)
{
    char id[160];

    snprintf(id, sizeof id, "optimizer.result:%s", run);
    return wait_msg(id, 1, max_ms);
}

/* optimizer.progress messages of run read so far; the last one into *last (borrowed). */
static int progress_seen(const char *run, json_t **last)
{
    char prefix[160];
    int k = 0;

    snprintf(prefix, sizeof prefix, "optimizer.progress:%s:", run);
    th_drain(F.amqp, F.planner, F.msgs, MAX_MSGS, &F.n);
    for (size_t i = 0; i < F.n; i++)
        if (strncmp(F.msgs[i].id, prefix, strlen(prefix)) == 0) {
            k++;
            *last = json_object_get(F.msgs[i].env, "data");
        }
    return k;
}

static const char *str_of(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static double num_of(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void expect_status(const json_t *res, const char *status)
{
    if (strcmp(str_of(res, "status"), status) != 0) {
        char *t = json_dumps(res, JSON_COMPACT);
        fail_msg("status %s, expected %s: %.2000s", str_of(res, "status"), status, t ? t : "");
    }
}

/* The run's row as "status|objective|cancel_requested" into buf. */
static void db_run(const char *run, char *buf, size_t len)
{
    struct sy_pg_res *res = NULL;
    const char *p[1] = {run};

    if (sy_pg_exec(F.pg,
                   "SELECT status, COALESCE(objective::text, '-'), cancel_requested,"
                   " result IS NOT NULL FROM optimizer_runs WHERE run_id = $1",
                   1, p, &res) != 0)
        fail_msg("optimizer_runs: %s", sy_pg_error(F.pg));
    if (sy_pg_res_rows(res) != 1)
        snprintf(buf, len, "none");
    else
        snprintf(buf, len, "%s|%s|%s|%s", sy_pg_res_get(res, 0, 0), sy_pg_res_get(res, 0, 1),
                 sy_pg_res_get(res, 0, 2), sy_pg_res_get(res, 0, 3));
    sy_pg_res_free(res);
}

/* The small scenario: IU_001 makes up to 1000 t at 1500/t; GU_001 needs 800 t. Road (T1)
 * costs 210/t, rail (T2) 100/t in lots of 500 t, at most one trip. Best: one rail lot and 300 t
 * by road: 800 * 1500 + 500 * 100 + 300 * 210 = 1200000 + 113000 = 1313000, nothing stocked. */
static json_t *small_scenario(void)
{
    json_t *j = json_loads(
        "{\"IUGUType\": [{\"IUGU CODE\": \"IU_001\", \"PLANT TYPE\": \"IU\"},"
        "                {\"IUGU CODE\": \"GU_001\", \"PLANT TYPE\": \"GU\"}],"
        " \"ClinkerCapacity\": [{\"IU CODE\": \"IU_001\", \"TIME PERIOD\": 1, \"CAPACITY\": 1000}],"
        " \"ProductionCost\": [{\"IU CODE\": \"IU_001\", \"TIME PERIOD\": 1,"
        "                       \"PRODUCTION COST\": 1500}],"
        " \"ClinkerDemand\": [{\"IUGU CODE\": \"GU_001\", \"TIME PERIOD\": 1, \"DEMAND\": 800}],"
        " \"LogisticsIUGU\": [{\"FROM IU CODE\": \"IU_001\", \"TO IUGU CODE\": \"GU_001\","
        "   \"TRANSPORT CODE\": \"T1\", \"TIME PERIOD\": 1, \"FREIGHT COST\": 200,"
        "   \"HANDLING COST\": 10},"
        "  {\"FROM IU CODE\": \"IU_001\", \"TO IUGU CODE\": \"GU_001\", \"TRANSPORT CODE\": \"T2\","
        "   \"TIME PERIOD\": 1, \"FREIGHT COST\": 100, \"QUANTITY MULTIPLIER\": 500,"
        "   \"MAX TRIPS\": 1}],"
        " \"Settings\": {\"periods\": 1, \"holding_cost\": 1}}",
        0, NULL);
    assert_non_null(j);
    return j;
}

static json_t *solve_data(const char *run, json_t *scenario, json_t *options)
{
    json_t *d = json_pack("{s:s, s:o}", "run_id", run, "scenario", scenario);
    if (options)
        json_object_set_new(d, "options", options);
    return d;
}

/* The shipment of mode in the first period of a result. */
static const json_t *shipment(const json_t *res, const char *mode)
{
    const json_t *per = json_array_get(json_object_get(res, "plan"), 0), *s;
    size_t i;

    json_array_foreach(json_object_get(per, "shipments"), i,
                       s) if (strcmp(str_of(s, "mode"), mode) == 0) return s;
    return NULL;
}

static void expect_small_optimum(const json_t *res)
{
    expect_status(res, "optimal");
    assert_true(fabs(num_of(res, "objective") - 1313000) < 1e-6);
    const json_t *costs = json_object_get(res, "costs");
    assert_true(fabs(num_of(costs, "production") - 1200000) < 1e-6);
    assert_true(fabs(num_of(costs, "transport") - 113000) < 1e-6);
    const json_t *rail = shipment(res, "T2"), *road = shipment(res, "T1");
    assert_non_null(rail);
    assert_non_null(road);
    assert_true(fabs(num_of(rail, "tonnes") - 500) < 1e-6);
    assert_true(fabs(num_of(rail, "trips") - 1) < 1e-9);
    assert_true(fabs(num_of(road, "tonnes") - 300) < 1e-6);
    const json_t *per = json_array_get(json_object_get(res, "plan"), 0);
    assert_true(fabs(num_of(json_object_get(per, "production"), "IU_001") - 800) < 1e-6);
}

/* Runs syctl with args; its exit status, stdout and stderr (caller frees). */
static int syctl(const char *const *args, char **out, char **err)
{
    int rc = th_run(th_need_env("SYCTL_BIN"), args, NULL, 60000, out, err);
    assert_true(rc >= 0);
    return rc;
}

/* Starts sy-optimizer (again) and waits until it is ready. */
static void start_worker(void)
{
    char addr[64], inst[96];
    const char *env[] = {addr,
                         inst,
                         "SY_HANDLER_THREADS=2",
                         "SY_PREFETCH=2",
                         "SY_OPTIMIZER_PROGRESS_EVERY=300ms",
                         "SY_OPTIMIZER_STALE=3s",
                         "SY_LOG_LEVEL=info",
                         NULL};

    F.port = th_free_port();
    snprintf(addr, sizeof addr, "SY_HTTP_ADDR=127.0.0.1:%d", F.port);
    snprintf(inst, sizeof inst, "SY_INSTANCE=it-optimizer-%s", F.run);
    assert_int_equal(th_proc_spawn(&F.proc, th_need_env("SY_OPTIMIZER_BIN"), env), 0);
    F.running = true;
    th_wait_answer(&F.proc, &F.running, "sy-optimizer", F.port, "/readyz", 200, START_MAX_MS);
}

/* --- setup ---------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    const char *build = th_need_env("SY_BUILD_DIR");
    char err[512] = "", path[1200];
    (void)state;

    th_need_env("SY_OPTIMIZER_BIN");
    th_need_env("SY_PG_URL");
    th_run_id(F.run);
    F.amqp = th_fleet_amqp("optimizer", "it_optimizer", &F.topo, F.queue, F.dead);
    if (sy_amqp_declare(F.amqp, F.topo, PLANNER) != 0)
        fail_msg("declare: %s", sy_amqp_error(F.amqp));
    th_purge_worker(F.amqp, F.topo, PLANNER);
    sy_topo_queue_name(sy_topology_worker(F.topo, PLANNER), F.planner, sizeof F.planner);
    if (!(F.pg = sy_pg_connect(th_need_env("SY_PG_URL"), err, sizeof err)))
        fail_msg("pg: %s", err);
    snprintf(path, sizeof path, "%s/schemas/sql/postgres", th_need_env("SY_SOURCE_DIR"));
    if (sy_pg_migrate(F.pg, path, NULL, NULL, err, sizeof err) != 0)
        fail_msg("migrate: %s", err);
    snprintf(path, sizeof path, "%s/Testing", build);
    mkdir(path, 0755);
    snprintf(F.dir, sizeof F.dir, "%.1000s/Testing/it_optimizer-%.16s", build, F.run);
    if (mkdir(F.dir, 0755) != 0)
        fail_msg("mkdir %s: %s", F.dir, strerror(errno));
    start_worker();
    return 0;
}

static int group_teardown(void **state)
{
    char like[64], cmd[1400];
    const char *p[1] = {like};
    (void)state;

    if (F.running)
        th_stop(&F.proc, &F.running);
    th_proc_cleanup(&F.proc);
    snprintf(like, sizeof like, "it%s-%%", F.run);
    sy_pg_exec(F.pg, "DELETE FROM optimizer_runs WHERE run_id LIKE $1", 1, p, NULL);
    sy_pg_exec(F.pg, "DELETE FROM optimizer_datasets WHERE name LIKE $1", 1, p, NULL);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", F.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", F.dir);
    for (size_t i = 0; i < F.n; i++) {
        free(F.msgs[i].id);
        json_decref(F.msgs[i].env);
    }
    th_purge_worker(F.amqp, F.topo, "optimizer");
    th_purge_worker(F.amqp, F.topo, PLANNER);
    sy_amqp_destroy(F.amqp);
    sy_topology_destroy(F.topo);
    sy_pg_destroy(F.pg);
    return 0;
}

/* --- tests ---------------------------------------------------------------------------------- */

static void small_scenario_comes_back_at_its_exact_optimum(void **state)
{
    char run[64], row[256];
    (void)state;

    run_id(run, sizeof run, "small");
    publish("optimizer.solve", NULL, solve_data(run, small_scenario(), NULL));
    expect_small_optimum(wait_result(run, WAIT_MS));
    db_run(run, row, sizeof row);
    assert_string_equal(row, "optimal|1313000|f|t");
}

static void bad_scenario_is_dead_lettered_naming_the_row(void **state)
{
    char run[64];
    json_t *sc = small_scenario();
    struct sy_amqp_msg *m = NULL;
    int64_t end = th_now_ms() + WAIT_MS;
    (void)state;

    run_id(run, sizeof run, "bad");
    json_object_set_new(json_array_get(json_object_get(sc, "LogisticsIUGU"), 1), "TO IUGU CODE",
                        json_string("GU_999"));
    publish("optimizer.solve", NULL, solve_data(run, sc, NULL));
    while (sy_amqp_get(F.amqp, F.dead, &m) == -SY_ENOTFOUND) {
        check_alive();
        if (th_now_ms() > end)
            fail_msg("nothing dead-lettered");
        th_sleep_ms(100);
    }
    const char *why = json_string_value(json_object_get(m->headers, "x-sy-reason"));
    if (!why || !strstr(why, "LogisticsIUGU[1]") || !strstr(why, "GU_999"))
        fail_msg("reason: %s", why ? why : "(none)");
    sy_amqp_settle(F.amqp, m, 1, 0);
    sy_amqp_msg_free(m);
    char row[256];
    db_run(run, row, sizeof row);
    assert_string_equal(row, "none"); /* refused before any run was recorded */
}

static void unreachable_closing_stock_is_infeasible(void **state)
{
    char run[64], row[256];
    json_t *sc = small_scenario(), *res;
    (void)state;

    run_id(run, sizeof run, "infeasible");
    json_object_set_new(sc, "IUGUClosingStock",
                        json_pack("[{s:s, s:i, s:i}]", "IUGU CODE", "GU_001", "TIME PERIOD", 1,
                                  "MIN CLOSE STOCK", 5000));
    publish("optimizer.solve", NULL, solve_data(run, sc, NULL));
    res = wait_result(run, WAIT_MS);
    expect_status(res, "infeasible");
    assert_true(json_is_null(json_object_get(res, "objective")));
    assert_null(json_object_get(res, "plan"));
    db_run(run, row, sizeof row);
    assert_string_equal(row, "infeasible|-|f|t");
}

static void long_search_cancelled_keeps_its_best_plan(void **state)
{
    char run[64], row[256];
    json_t *last = NULL, *res;
    int64_t end = th_now_ms() + WAIT_MS;
    (void)state;

    run_id(run, sizeof run, "cancel");
    publish(
        "optimizer.solve", NULL,
        solve_data(run, th_op_hard_scenario(6, 30, 6), json_pack("{s:f}", "time_limit_s", 600.0)));
    /* A first plan, seen in the progress, then the cancel, as a message of its own. */
    while (progress_seen(run, &last) == 0 || !json_is_number(json_object_get(last, "incumbent"))) {
        check_alive();
        if (th_now_ms() > end) {
            th_proc_dump_log(&F.proc, 40);
            fail_msg("no progress with an incumbent");
        }
        char id[160];
        snprintf(id, sizeof id, "optimizer.result:%s", run);
        if (th_got_count(F.msgs, F.n, id, NULL))
            fail_msg("the search ended before it could be cancelled: make the instance harder");
        th_sleep_ms(100);
    }
    double incumbent = num_of(last, "incumbent");
    publish("optimizer.cancel", NULL, json_pack("{s:s}", "run_id", run));
    res = wait_result(run, WAIT_MS);
    expect_status(res, "cancelled");
    assert_true(json_is_number(json_object_get(res, "objective")));
    assert_true(num_of(res, "objective") <= incumbent * (1 + 1e-9));
    assert_int_equal(json_array_size(json_object_get(res, "plan")), 6);
    assert_true(progress_seen(run, &last) >= 1);
    db_run(run, row, sizeof row);
    assert_true(strncmp(row, "cancelled|", 10) == 0);
    assert_non_null(strstr(row, "|t|t"));
}

static void memory_limit_breach_is_a_clean_error(void **state)
{
    char run[64], row[256];
    json_t *res;
    (void)state;

    run_id(run, sizeof run, "memory");
    publish("optimizer.solve", NULL,
            solve_data(run, th_op_hard_scenario(10, 80, 6),
                       json_pack("{s:i, s:f}", "mem_limit_mb", 1, "time_limit_s", 60.0)));
    res = wait_result(run, WAIT_MS);
    expect_status(res, "error");
    if (!strstr(str_of(res, "reason"), "memory"))
        fail_msg("reason: %s", str_of(res, "reason"));
    assert_true(json_is_null(json_object_get(res, "objective")));
    db_run(run, row, sizeof row);
    assert_string_equal(row, "error|-|f|t");
    check_alive(); /* the worker itself is untouched */
}

static void lp_and_mps_models_come_back_at_their_optimum(void **state)
{
    char run[64], run2[64], row[256];
    json_t *res, *vars;
    (void)state;

    /* max 3x + 2y, x + y <= 4, x + 3y <= 6, x <= 3: x = 3, y = 1, 11. */
    run_id(run, sizeof run, "lp");
    publish("optimizer.solve_model", NULL,
            json_pack("{s:s, s:s, s:s}", "run_id", run, "format", "lp", "text",
                      "Maximize\n obj: 3 x + 2 y\nSubject To\n c1: x + y <= 4\n"
                      " c2: x + 3 y <= 6\nBounds\n x <= 3\nEnd\n"));
    res = wait_result(run, WAIT_MS);
    expect_status(res, "optimal");
    assert_string_equal(str_of(res, "kind"), "model");
    assert_true(fabs(num_of(res, "objective") - 11) < 1e-9);
    vars = json_object_get(res, "variables");
    assert_true(fabs(num_of(vars, "x") - 3) < 1e-9);
    assert_true(fabs(num_of(vars, "y") - 1) < 1e-9);
    db_run(run, row, sizeof row);
    assert_string_equal(row, "optimal|11|f|t");

    /* min x + 2y, x + y >= 2, y integer in [0, 10], x <= 1.5: y >= 0.5 so y = 1 (0.5 would
     * do without the marker), then x = 1: 3. */
    run_id(run2, sizeof run2, "mps");
    publish("optimizer.solve_model", NULL,
            json_pack("{s:s, s:s, s:s}", "run_id", run2, "format", "free_mps", "text",
                      "NAME small\nROWS\n N obj\n G c1\nCOLUMNS\n x obj 1 c1 1\n"
                      " M1 'MARKER' 'INTORG'\n y obj 2 c1 1\n M2 'MARKER' 'INTEND'\n"
                      "RHS\n rhs c1 2\nBOUNDS\n UP bnd x 1.5\n UP bnd y 10\nENDATA\n"));
    res = wait_result(run2, WAIT_MS);
    expect_status(res, "optimal");
    assert_true(fabs(num_of(res, "objective") - 3) < 1e-9);
    assert_true(fabs(num_of(json_object_get(res, "variables"), "x") - 1) < 1e-9);
    assert_true(fabs(num_of(json_object_get(res, "variables"), "y") - 1) < 1e-9);
}

static void redelivered_solve_is_not_solved_twice(void **state)
{
    char run[64], id[160], mid[80], needle[120];
    (void)state;

    run_id(run, sizeof run, "again");
    snprintf(mid, sizeof mid, "it%s-again-msg", F.run);
    publish("optimizer.solve", mid, solve_data(run, small_scenario(), NULL));
    expect_small_optimum(wait_result(run, WAIT_MS));
    publish("optimizer.solve", mid, solve_data(run, small_scenario(), NULL));
    snprintf(id, sizeof id, "optimizer.result:%s", run);
    expect_small_optimum(wait_msg(id, 2, WAIT_MS));
    snprintf(needle, sizeof needle, "%s: solving", run);
    assert_int_equal(th_log_count(&F.proc, needle), 1);
    snprintf(needle, sizeof needle, "%s: ended before", run);
    assert_int_equal(th_log_count(&F.proc, needle), 1);
}

static void syctl_loads_csv_and_shows_and_exports_runs(void **state)
{
    char csv[1300], path[1600], name[64], run[64], out[1400];
    char *o = NULL, *e = NULL;
    (void)state;

    snprintf(csv, sizeof csv, "%s/dataset", F.dir);
    assert_int_equal(mkdir(csv, 0755), 0);
#define SHEET(file, text)                                                                          \
    do {                                                                                           \
        snprintf(path, sizeof path, "%s/%s", csv, file);                                           \
        assert_int_equal(th_write_file(path, text), 0);                                            \
    } while (0)
    SHEET("IUGUType.csv", "\xEF\xBB\xBFIUGU CODE,PLANT TYPE\r\nIU_001,IU\r\nGU_001,GU\r\n");
    SHEET("ClinkerCapacity.csv", "IU CODE,TIME PERIOD,CAPACITY\nIU_001,1,1000\n");
    SHEET("ProductionCost.csv", "IU CODE,TIME PERIOD,PRODUCTION COST\nIU_001,1,1500\n");
    SHEET("ClinkerDemand.csv", "IUGU CODE,TIME PERIOD,DEMAND,MIN FULFILLMENT (%)\nGU_001,1,800,\n");
    SHEET("LogisticsIUGU.csv",
          "FROM IU CODE,TO IUGU CODE,TRANSPORT CODE,TIME PERIOD,FREIGHT COST,HANDLING COST,"
          "QUANTITY MULTIPLIER,MAX TRIPS\n"
          "IU_001,GU_001,T1,1,200,10,,\n\"IU_001\",GU_001,T2,1,100,0,500,1\n\n");
    SHEET("Settings.csv", "periods,holding_cost\n1,1\n");
    snprintf(name, sizeof name, "it%s-ds", F.run);

    const char *load[] = {"optimizer", "load", csv, "--name", name, NULL};
    if (syctl(load, &o, &e) != 0)
        fail_msg("load: %s%s", o, e);
    assert_non_null(strstr(o, "2 nodes, 1 periods, 2 routes"));
    free(o), free(e);

    /* A bad node code: refused naming the sheet, the row and the file's line. */
    char bad[1300];
    snprintf(bad, sizeof bad, "%s/bad", F.dir);
    assert_int_equal(mkdir(bad, 0755), 0);
    snprintf(path, sizeof path, "%s/IUGUType.csv", bad);
    assert_int_equal(th_write_file(path, "IUGU CODE,PLANT TYPE\nIU_001,IU\n"), 0);
    snprintf(path, sizeof path, "%s/ClinkerDemand.csv", bad);
    assert_int_equal(th_write_file(path, "IUGU CODE,TIME PERIOD,DEMAND\nIU_001,1,5\nGU_9,1,5\n"),
                     0);
    const char *loadbad[] = {"optimizer", "load", bad, "--name", name, NULL};
    assert_int_equal(syctl(loadbad, &o, &e), 3);
    if (!strstr(e, "ClinkerDemand[1]") || !strstr(e, "ClinkerDemand.csv line 3"))
        fail_msg("stderr: %s", e);
    free(o), free(e);

    run_id(run, sizeof run, "dataset");
    publish("optimizer.solve", NULL, json_pack("{s:s, s:s}", "run_id", run, "dataset", name));
    expect_small_optimum(wait_result(run, WAIT_MS));

    const char *runs[] = {"optimizer", "runs", "--json", NULL};
    assert_int_equal(syctl(runs, &o, &e), 0);
    json_t *list = json_loads(o, 0, NULL), *it;
    size_t i;
    bool found = false;
    assert_non_null(list);
    json_array_foreach(list, i, it) if (strcmp(str_of(it, "run_id"), run) == 0)
    {
        found = true;
        assert_string_equal(str_of(it, "status"), "optimal");
        assert_string_equal(str_of(it, "dataset"), name);
        assert_true(fabs(num_of(it, "objective") - 1313000) < 1e-6);
    }
    assert_true(found);
    json_decref(list);
    free(o), free(e);

    const char *show[] = {"optimizer", "show", run, "--json", NULL};
    assert_int_equal(syctl(show, &o, &e), 0);
    json_t *s = json_loads(o, 0, NULL);
    assert_non_null(s);
    expect_small_optimum(json_object_get(s, "result"));
    json_decref(s);
    free(o), free(e);
    const char *showtext[] = {"optimizer", "show", run, NULL};
    assert_int_equal(syctl(showtext, &o, &e), 0);
    assert_non_null(strstr(o, "status     optimal"));
    free(o), free(e);
    const char *missing[] = {"optimizer", "show", "no-such-run", NULL};
    assert_int_equal(syctl(missing, &o, &e), 4);
    free(o), free(e);

    snprintf(out, sizeof out, "%s/export", F.dir);
    const char *exp[] = {"optimizer", "export", run, "--csv", out, NULL};
    if (syctl(exp, &o, &e) != 0)
        fail_msg("export: %s", e);
    free(o), free(e);
    snprintf(path, sizeof path, "%s/shipments.csv", out);
    char *text = th_read_file(path);
    assert_non_null(text);
    assert_non_null(strstr(text, "period,row,from,to,mode,tonnes,trips\n"));
    assert_non_null(strstr(text, "1,1,IU_001,GU_001,T2,500,1\n"));
    assert_non_null(strstr(text, "1,0,IU_001,GU_001,T1,300,"));
    free(text);
    snprintf(path, sizeof path, "%s/production.csv", out);
    text = th_read_file(path);
    assert_non_null(text);
    assert_non_null(strstr(text, "1,IU_001,800\n"));
    free(text);
    snprintf(path, sizeof path, "%s/costs.csv", out);
    text = th_read_file(path);
    assert_non_null(text);
    assert_non_null(strstr(text, "transport,113000\n"));
    free(text);
    const char *files[] = {"stock.csv", "unmet.csv"};
    for (int k = 0; k < 2; k++) {
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", out, files[k]);
        assert_int_equal(stat(path, &st), 0);
    }
#undef SHEET
}

static void sigterm_mid_solve_gives_the_run_back_for_a_rerun(void **state)
{
    char run[64], row[256], needle[120], id[160];
    json_t *last = NULL, *res;
    int64_t end = th_now_ms() + WAIT_MS;
    (void)state;

    run_id(run, sizeof run, "sigterm");
    snprintf(id, sizeof id, "optimizer.result:%s", run);
    publish(
        "optimizer.solve", NULL,
        solve_data(run, th_op_hard_scenario(6, 30, 6), json_pack("{s:f}", "time_limit_s", 6.0)));
    while (progress_seen(run, &last) == 0) {
        check_alive();
        if (th_now_ms() > end)
            fail_msg("no progress");
        th_sleep_ms(100);
    }
    assert_int_equal(th_stop(&F.proc, &F.running), 0);
    th_drain(F.amqp, F.planner, F.msgs, MAX_MSGS, &F.n);
    assert_int_equal(th_got_count(F.msgs, F.n, id, NULL), 0);
    db_run(run, row, sizeof row);
    assert_string_equal(row, "queued|-|f|f"); /* nothing final recorded */
    th_proc_cleanup(&F.proc);
    start_worker();
    res = wait_result(run, WAIT_MS);
    if (strcmp(str_of(res, "status"), "feasible") != 0)
        expect_status(res, "optimal");
    assert_true(json_is_number(json_object_get(res, "objective")));
    snprintf(needle, sizeof needle, "%s: solving", run);
    assert_int_equal(th_log_count(&F.proc, needle), 1); /* the new process solved it */
    db_run(run, row, sizeof row);
    assert_null(strstr(row, "queued"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(small_scenario_comes_back_at_its_exact_optimum),
        cmocka_unit_test(bad_scenario_is_dead_lettered_naming_the_row),
        cmocka_unit_test(unreachable_closing_stock_is_infeasible),
        cmocka_unit_test(long_search_cancelled_keeps_its_best_plan),
        cmocka_unit_test(memory_limit_breach_is_a_clean_error),
        cmocka_unit_test(lp_and_mps_models_come_back_at_their_optimum),
        cmocka_unit_test(redelivered_solve_is_not_solved_twice),
        cmocka_unit_test(syctl_loads_csv_and_shows_and_exports_runs),
        cmocka_unit_test(sigterm_mid_solve_gives_the_run_back_for_a_rerun),
    };
    if (!getenv("SY_AMQP_URL") || !getenv("SY_PG_URL") || !getenv("SY_OPTIMIZER_BIN"))
        return 77;
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
