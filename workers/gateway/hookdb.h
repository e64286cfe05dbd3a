/* hookdb.h - Chatwoot hooks kept in PostgreSQL (glpi_hooks, managed with `syctl glpi hook
 * add`), for deliveries to a hook that webhooks.yaml does not name. An answer is remembered for
 * a while, so a burst of deliveries costs one query, and a remembered hook keeps being served
 * while PostgreSQL is away (Chatwoot never retries an account webhook). */
#ifndef GW_HOOKDB_H
#define GW_HOOKDB_H

#include <stddef.h>

struct gw_pg_pool;
struct gw_hookdb;

/* pg is borrowed and must outlive the store. NULL when out of memory. */
struct gw_hookdb *gw_hookdb_new(struct gw_pg_pool *pg);
void gw_hookdb_destroy(struct gw_hookdb *d); /* accepts NULL */

/* Whether hook `id` is stored: 1 with its webhook secret copied into *secret (NULL when it
 * was stored without one: the gateway then refuses its deliveries; the caller wipes and frees
 * it), 0 when it is not (or id
 * cannot be a hook id), -SY_ECONN when PostgreSQL cannot say and nothing is remembered. */
int gw_hookdb_find(struct gw_hookdb *d, const char *id, char **secret, size_t *secret_len);

#endif
