/* store.h - one handler thread's work: its PostgreSQL and GRM connections, and how a batch of
 * messages is applied to both (see grievance.h for the rules). */
#ifndef GRIEVANCE_STORE_H
#define GRIEVANCE_STORE_H

#include <stddef.h>

struct sy_worker;
struct sy_msg;
struct grm_map;
struct gr_store;

/* Connections are opened when first needed and reopened after a failure. w may be NULL (then
 * nothing is announced: for tests of the store alone). mysql_url may be NULL when the map
 * disables the GRM. NULL when out of memory. */
struct gr_store *gr_store_new(struct sy_worker *w, const struct grm_map *map, const char *pg_url,
                              const char *mysql_url, const char *files_root, int pull_rounds);
void gr_store_free(struct gr_store *s);

/* Applies msgs (any mix of grievance.submitted, .updated, .status_update, .user_upsert,
 * .file_attached and grm.pull) and sets each one's verdict: ACK when everything it asks is
 * done (or was done by an earlier delivery), RETRY with the reason when a store is away or
 * the grievance it changes does not exist yet, REJECT with the reason for data that can never
 * be stored. */
void gr_store_batch(struct gr_store *s, struct sy_msg **msgs, size_t n);

#endif
