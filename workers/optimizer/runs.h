/* runs.h - sy-optimizer's ledger of runs in PostgreSQL (optimizer_runs, migration 0009): claim,
 * heartbeat and cancel flag, progress, the end, and the datasets syctl loaded. */
#ifndef OPTIMIZER_RUNS_H
#define OPTIMIZER_RUNS_H

#include <jansson.h>
#include <stdbool.h>

#include "optimizer/solve.h"

struct sy_pg;

#define RUNS_ID_MAX 96 /* the result's id "optimizer.result:<run id>" fits SY_MSG_ID_MAX */

/* Whether id may name a run: [A-Za-z0-9_.:@-]{1,RUNS_ID_MAX}. */
bool runs_id_ok(const char *id);

enum runs_claim {
    RUNS_CLAIMED, /* this instance solves it now; *cancel says whether a cancel came first */
    RUNS_DONE,    /* ended before: *result holds its stored result (caller decrefs) */
    RUNS_BUSY,    /* another instance is solving it and its heartbeat moves */
};

/* Records the run (once) and claims it for instance when it is queued, or running with a
 * heartbeat older than stale_s. 0 with *out, or a negative SY_E code (PostgreSQL's). */
int runs_claim(struct sy_pg *pg, const char *run_id, const char *kind, const char *dataset,
               const json_t *options, const char *instance, long long stale_s, enum runs_claim *out,
               bool *cancel, json_t **result);

/* Moves the heartbeat of a run instance holds; *cancel: whether a cancel was asked. */
int runs_heartbeat(struct sy_pg *pg, const char *run_id, const char *instance, bool *cancel);

/* The last progress of the run. */
int runs_progress(struct sy_pg *pg, const char *run_id, const struct op_progress *p);

/* Stores the end: status, reason, objective, bound, gap, seconds and the whole result. */
int runs_finish(struct sy_pg *pg, const char *run_id, const char *instance, const json_t *result);

/* Gives the run back (queued, nothing final) when this instance stops mid-solve. */
int runs_release(struct sy_pg *pg, const char *run_id, const char *instance);

/* Asks for the run's cancel; records a placeholder when the run is not known yet. */
int runs_cancel(struct sy_pg *pg, const char *run_id);

/* The scenario JSON of dataset name: 0 with *out (caller decrefs), -SY_ENOTFOUND, or
 * PostgreSQL's error. */
int runs_dataset(struct sy_pg *pg, const char *name, json_t **out);

#endif
