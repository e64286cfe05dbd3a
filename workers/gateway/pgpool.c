/* pgpool.c - the gateway's PostgreSQL connection pool (see pgpool.h). */
#include "gateway/pgpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sy/err.h"
#include "sy/log.h"
#include "sy/pg.h"

#define POOL_MAX 256

struct gw_pg_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *url;
    const char *what;
    size_t size;
    size_t nidle, nopen; /* nopen: idle plus taken */
    atomic_bool down;    /* the last connect failed: logged once until one succeeds */
    struct sy_pg *idle[];
};

struct gw_pg_pool *gw_pg_pool_new(const char *url, size_t size, const char *what)
{
    struct gw_pg_pool *p;

    if (!url || size == 0 || size > POOL_MAX)
        return NULL;
    p = calloc(1, sizeof *p + size * sizeof p->idle[0]);
    if (!p)
        return NULL;
    p->url = strdup(url);
    if (!p->url)
        goto fail;
    if (pthread_mutex_init(&p->mu, NULL) != 0)
        goto fail;
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        goto fail;
    }
    p->what = what ? what : "gateway";
    p->size = size;
    atomic_init(&p->down, false);
    return p;
fail:
    free(p->url);
    free(p);
    return NULL;
}

void gw_pg_pool_destroy(struct gw_pg_pool *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nidle; i++)
        sy_pg_destroy(p->idle[i]);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->url);
    free(p);
}

struct sy_pg *gw_pg_take(struct gw_pg_pool *p)
{
    struct sy_pg *pg;
    char err[256];

    pthread_mutex_lock(&p->mu);
    while (p->nidle == 0 && p->nopen == p->size)
        pthread_cond_wait(&p->cv, &p->mu);
    if (p->nidle > 0) {
        pg = p->idle[--p->nidle];
        pthread_mutex_unlock(&p->mu);
        return pg;
    }
    p->nopen++;
    pthread_mutex_unlock(&p->mu);

    pg = sy_pg_connect(p->url, err, sizeof err);
    if (!pg) {
        if (!atomic_exchange(&p->down, true))
            sy_log_write(SY_LOG_WARN, "gateway.pg", -1, err, "PostgreSQL is unreachable (%s)",
                         p->what);
        pthread_mutex_lock(&p->mu);
        p->nopen--;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
    } else if (atomic_exchange(&p->down, false)) {
        sy_log_info("gateway.pg", "PostgreSQL is reachable again (%s)", p->what);
    }
    return pg;
}

void gw_pg_put(struct gw_pg_pool *p, struct sy_pg *pg, int rc)
{
    pthread_mutex_lock(&p->mu);
    if (rc == -SY_ECONN) {
        sy_pg_destroy(pg);
        p->nopen--;
    } else {
        p->idle[p->nidle++] = pg;
    }
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}
