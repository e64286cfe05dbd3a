/* store_int.h - what store.c, push.c and pull.c share: the thread's connections and the
 * messages of a batch on their way through. */
#ifndef GRIEVANCE_STORE_INT_H
#define GRIEVANCE_STORE_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sy/msg.h"

struct sy_pg;
struct sy_pg_res;
struct sy_mysql;
struct sy_counter;
struct grm_map;

struct gr_store {
    struct sy_worker *w;
    const struct grm_map *map;
    char *pg_url, *mysql_url, *files_root;
    int pull_rounds;
    struct sy_pg *pg;    /* NULL until connected, and after a lost connection */
    struct sy_mysql *my; /* the same, for the GRM */
    char pg_err[512], my_err[512];
    struct sy_counter *stored, *pushed, *push_failed, *pulled, *conflicts;
    int mon_connected; /* what system_monitoring should say: -1 unknown, 0 or 1 */
    char mon_error[512];
    bool mon_dirty;
    int64_t mon_push_ms;
};

#define MONITOR_EVERY_MS 10000 /* how often last_push is refreshed while pushes succeed */

enum gr_kind { K_USER, K_SUBMITTED, K_UPDATED, K_FILE, K_STATUS, K_PULL, K_OTHER };

enum gr_state {
    S_NEW,    /* not stored yet */
    S_STORED, /* an earlier delivery stored its effects; GRM copy or announcement due */
    S_DONE,   /* an earlier delivery did everything */
};

/* One message of a batch. */
struct gr_item {
    struct sy_msg *msg;
    enum gr_kind kind;
    json_t *data;
    const char *id, *gid;
    enum gr_state state;
    bool stored;        /* its PostgreSQL effects are in this transaction (or an earlier one) */
    bool push;          /* its grievance's GRM copy must be written */
    json_t *announce;   /* grievance.status_changed data to publish, owned */
    enum sy_verdict v;  /* decided so far (ACK until something fails) */
    enum sy_verdict v0; /* decided before the transaction (checks, file store) */
    char why[512];
};

/* Sets its verdict and reason; a REJECT is never turned into a RETRY. */
void gr_verdict(struct gr_item *it, enum sy_verdict v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Connect when not connected: 0, or -SY_ECONN with the reason in pg_err / my_err. */
int gr_pg(struct gr_store *s);
int gr_mysql(struct gr_store *s);
/* Records the GRM's last error in my_err, and closes a connection that rc says is broken. */
void gr_mysql_drop(struct gr_store *s, int rc);
/* Runs sql with one parameter, rows as JSON text; res may be NULL. */
int gr_exec_json(struct gr_store *s, const char *sql, json_t *rows, struct sy_pg_res **res);
/* Notes the GRM's state (reachable or not, the last error) for system_monitoring;
 * gr_monitor_flush writes what changed, outside any transaction (best effort). */
void gr_monitor(struct gr_store *s, bool grm_ok, const char *err);
void gr_monitor_flush(struct gr_store *s);

/* Writes the GRM copy of every grievance an item of the batch touched (inside the batch's
 * PostgreSQL transaction), and records the outcome in grm_sync and sync_history. A GRM that is
 * away or refuses sets the items' verdicts (RETRY, or REJECT for refused data) and returns 0;
 * non-zero only for a PostgreSQL failure, which ends the batch. */
int gr_push(struct gr_store *s, struct gr_item *items, size_t n);
/* Writes the GRM copy of the given grievances (sorted, unique ids) in the current transaction;
 * bad[i] is set for each the GRM refused, with its reason. 0, a PostgreSQL error, or a GRM
 * error (then nothing was written) in *grm_rc. */
int gr_push_ids(struct gr_store *s, const char *const *ids, size_t n, bool *bad, char **why,
                int *grm_rc);

/* Copies to the GRM the grievances pending for longer than age (an interval, "60 seconds"),
 * at most max, in a transaction of its own. 0, or 1 with why. */
int gr_push_pending(struct gr_store *s, const char *age, int max, char *why, size_t whylen);

/* Handles one grm.pull and sets its verdict. */
void gr_pull(struct gr_store *s, struct sy_msg *msg);

#endif
