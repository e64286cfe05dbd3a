/* hookdb.c - Chatwoot hooks looked up in PostgreSQL, remembered for a while (see hookdb.h). */
#include "gateway/hookdb.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/pgpool.h"
#include "sy/clock.h"
#include "sy/err.h"
#include "sy/log.h"
#include "sy/pg.h"

#define ID_MAX      64    /* glpi_hooks.hook_id: [A-Za-z0-9_-]{1,64} */
#define ENTRIES     128   /* hooks remembered; the one that expires first makes room */
#define KNOWN_TTL   30000 /* ms a stored hook is trusted: removal and a new secret take this */
#define UNKNOWN_TTL 5000  /* ms a missing one stays missing: a hook just added waits this */

static const char sql_find[] = "SELECT webhook_secret FROM glpi_hooks WHERE hook_id = $1";

struct entry {
    char id[ID_MAX + 1]; /* "" when free */
    bool known;
    char *secret; /* NULL: unsigned */
    size_t secret_len;
    int64_t expires; /* sy_mono_ms */
};

struct gw_hookdb {
    struct gw_pg_pool *pg;
    pthread_mutex_t mu;
    struct entry e[ENTRIES];
};

static void wipe(char *s, size_t n)
{
    if (s) {
        explicit_bzero(s, n);
        free(s);
    }
}

static void entry_clear(struct entry *x)
{
    wipe(x->secret, x->secret_len);
    memset(x, 0, sizeof *x);
}

struct gw_hookdb *gw_hookdb_new(struct gw_pg_pool *pg)
{
    struct gw_hookdb *d = calloc(1, sizeof *d);

    if (!d)
        return NULL;
    d->pg = pg;
    pthread_mutex_init(&d->mu, NULL);
    return d;
}

void gw_hookdb_destroy(struct gw_hookdb *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < ENTRIES; i++)
        entry_clear(&d->e[i]);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

static bool id_ok(const char *s)
{
    size_t n = 0;

    for (; s[n]; n++) {
        char c = s[n];

        if (n >= ID_MAX || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                             (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return n > 0;
}

static struct entry *lookup(struct gw_hookdb *d, const char *id)
{
    for (size_t i = 0; i < ENTRIES; i++)
        if (strcmp(d->e[i].id, id) == 0)
            return &d->e[i];
    return NULL;
}

/* The entry's answer, copied out under d->mu. */
static int answer(const struct entry *x, char **secret, size_t *len)
{
    *secret = NULL;
    *len = 0;
    if (!x->known)
        return 0;
    if (x->secret) {
        if (!(*secret = malloc(x->secret_len + 1)))
            return -SY_ENOMEM;
        memcpy(*secret, x->secret, x->secret_len + 1);
        *len = x->secret_len;
    }
    return 1;
}

/* Asks PostgreSQL: 1 known (secret set, or NULL), 0 not stored, negative when it cannot say. */
static int ask(struct gw_hookdb *d, const char *id, char **secret)
{
    struct sy_pg *pg = gw_pg_take(d->pg);
    struct sy_pg_res *res = NULL;
    int rc;

    *secret = NULL;
    if (!pg)
        return -SY_ECONN;
    rc = sy_pg_exec(pg, sql_find, 1, &id, &res);
    if (rc != 0 && strcmp(sy_pg_sqlstate(pg), "42P01") == 0) {
        rc = 0; /* no glpi_hooks table: nothing is stored */
    } else if (rc == 0 && sy_pg_res_rows(res) == 1) {
        const char *s = sy_pg_res_get(res, 0, 0);

        if (s && *s && !(*secret = strdup(s)))
            rc = -SY_ENOMEM;
        else
            rc = 1;
    } else if (rc != 0) {
        sy_log_write(SY_LOG_WARN, "gateway.hooks", -1, sy_pg_error(pg),
                     "cannot read Chatwoot hooks from the database");
    }
    gw_pg_put(d->pg, pg, rc < 0 ? rc : 0);
    sy_pg_res_free(res);
    return rc;
}

int gw_hookdb_find(struct gw_hookdb *d, const char *id, char **secret, size_t *secret_len)
{
    int64_t now = sy_mono_ms();
    struct entry *x;
    char *fresh = NULL;
    int rc;

    *secret = NULL;
    *secret_len = 0;
    if (!d || !id_ok(id))
        return 0;
    pthread_mutex_lock(&d->mu);
    x = lookup(d, id);
    if (x && x->expires > now) {
        rc = answer(x, secret, secret_len);
        pthread_mutex_unlock(&d->mu);
        return rc;
    }
    pthread_mutex_unlock(&d->mu);

    rc = ask(d, id, &fresh);
    pthread_mutex_lock(&d->mu);
    x = lookup(d, id);
    if (rc < 0) {
        /* What was known stays good while the database is away. */
        rc = x ? answer(x, secret, secret_len) : rc;
        pthread_mutex_unlock(&d->mu);
        return rc;
    }
    if (!x) {
        x = &d->e[0];
        for (size_t i = 1; i < ENTRIES && x->id[0]; i++)
            if (!d->e[i].id[0] || d->e[i].expires < x->expires)
                x = &d->e[i];
    }
    entry_clear(x);
    memcpy(x->id, id, strlen(id) + 1);
    x->known = rc == 1;
    if (fresh) {
        x->secret = fresh;
        x->secret_len = strlen(fresh);
        sy_log_add_secret(fresh);
    }
    x->expires = now + (x->known ? KNOWN_TTL : UNKNOWN_TTL);
    rc = answer(x, secret, secret_len);
    pthread_mutex_unlock(&d->mu);
    return rc;
}
