/* pgpool.h - a few PostgreSQL connections shared by the gateway's request threads: each is
 * opened when first needed, and one that lost its server is closed so the next user connects
 * afresh. */
#ifndef GW_PGPOOL_H
#define GW_PGPOOL_H

#include <stddef.h>

struct sy_pg;
struct gw_pg_pool;

/* url is copied; size: connections at most (1..256); what: who uses it, for log lines. NULL
 * when out of memory or size is out of range. */
struct gw_pg_pool *gw_pg_pool_new(const char *url, size_t size, const char *what);
/* Closes the idle connections; every taken one must have been put back. Accepts NULL. */
void gw_pg_pool_destroy(struct gw_pg_pool *p);

/* A connection for this thread alone, waiting while all are taken; NULL (logged once per
 * outage) when PostgreSQL cannot be reached. */
struct sy_pg *gw_pg_take(struct gw_pg_pool *p);
/* Gives pg back; rc is the last call's result: after -SY_ECONN the connection is closed. */
void gw_pg_put(struct gw_pg_pool *p, struct sy_pg *pg, int rc);

#endif
