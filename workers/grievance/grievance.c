/* grievance.c - sy-grievance's handler: a batch of grievance.* messages into PostgreSQL and
 * the GRM (see grievance.h). */
#include "grievance/grievance.h"

#include <stdint.h>
#include <stdlib.h>

#include "grievance/grm_map.h"
#include "grievance/store.h"
#include "sy/err.h"
#include "sy/log.h"
#include "sy/pg.h"
#include "sy/worker.h"

#define BATCH_MAX     500
#define BATCH_WAIT_MS 20

#define C_(field) offsetof(struct gr_conf, field)
static const struct sy_conf_key gr_conf_keys[] = {
    {"SY_GRM_MAP", SY_CONF_STR, SY_DEFAULT_ROOT "/deploy/config/grm.yaml", 0, 0, C_(grm_map), 0,
     "the GRM field and status map (table, columns, status values, enabled)"},
    {"SY_FILES_ROOT", SY_CONF_STR, "/var/lib/switchyard/files", 0, 0, C_(files), 0,
     "root of the content-addressed file store that attachments go to"},
    {"SY_GRM_PULL_ROUNDS", SY_CONF_INT, "20", 1, 1000, C_(pull_rounds), 0,
     "GRM batches (grm.yaml pull_batch rows each) one grm.pull reads at most"},
    {NULL, SY_CONF_STR, NULL, 0, 0, 0, 0, NULL},
};
#undef C_

#define READY_EVERY_MS 5000 /* how often /readyz asks PostgreSQL again */

struct gr {
    struct sy_worker *w;
    const struct gr_conf *conf;
    struct grm_map *map;
    const char *pg_url, *mysql_url;
    struct sy_pg_probe *ready; /* the health thread's own connection and its last answer */
};

static void gr_exit(void *state)
{
    struct gr *g = state;

    if (!g)
        return;
    grm_map_free(g->map);
    sy_pg_probe_free(g->ready);
    free(g);
}

static int gr_init(struct sy_worker *w, void **state)
{
    struct gr *g = calloc(1, sizeof *g);
    char err[512];

    if (!g)
        return -SY_ENOMEM;
    g->w = w;
    g->conf = sy_worker_conf(w);
    g->pg_url = sy_worker_url(w, "pg");
    g->mysql_url = sy_worker_url(w, "mysql");
    if (!g->pg_url) {
        sy_log_error("worker.config", "SY_PG_URL: required (PostgreSQL is the system of record)");
        goto fail;
    }
    g->map = grm_map_load(g->conf->grm_map, err, sizeof err);
    if (!g->map) {
        sy_log_write(SY_LOG_ERROR, "worker.config", -1, err, "SY_GRM_MAP: bad file");
        goto fail;
    }
    if (!(g->ready = sy_pg_probe_new(g->pg_url, READY_EVERY_MS))) {
        gr_exit(g);
        return -SY_ENOMEM;
    }
    if (grm_map_enabled(g->map) && !g->mysql_url) {
        sy_log_error("worker.config", "SY_GRM_MYSQL_URL: required while the GRM integration is "
                                      "enabled (GRM_INTEGRATION_ENABLED=false turns it off)");
        goto fail;
    }
    sy_log_info("grievance.start", "GRM integration %s (table %s), files in %s",
                grm_map_enabled(g->map) ? "enabled" : "disabled", grm_map_table(g->map),
                g->conf->files);
    *state = g;
    return 0;
fail:
    gr_exit(g);
    return -SY_ECONFIG;
}

static int gr_thread_init(void *state, void **tstate)
{
    struct gr *g = state;
    struct gr_store *s = gr_store_new(g->w, g->map, g->pg_url, g->mysql_url, g->conf->files,
                                      (int)g->conf->pull_rounds);

    if (!s)
        return -SY_ENOMEM;
    *tstate = s;
    return 0;
}

static void gr_thread_exit(void *state, void *tstate)
{
    (void)state;
    gr_store_free(tstate);
}

static void gr_handle_batch(void *tstate, struct sy_msg **msgs, size_t n)
{
    gr_store_batch(tstate, msgs, n);
}

/* Ready while PostgreSQL answers: without it nothing can be stored. A GRM that is away only
 * delays the copies, so it does not make the worker unready. */
static int gr_ready(void *state)
{
    return sy_pg_probe_check(((struct gr *)state)->ready);
}

const struct sy_handler grievance_handler = {
    .name = "grievance",
    .conf = gr_conf_keys,
    .conf_size = sizeof(struct gr_conf),
    .init = gr_init,
    .thread_init = gr_thread_init,
    .thread_exit = gr_thread_exit,
    .handle_batch = gr_handle_batch,
    .batch_max = BATCH_MAX,
    .batch_wait_ms = BATCH_WAIT_MS,
    .ready = gr_ready,
    .exit = gr_exit,
};
