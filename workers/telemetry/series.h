/* series.h - the numbers of series (plant, device, metric) in telemetry_series, cached in memory:
 * a name is registered once, by whichever replica sees it first, and looked up in memory after. */
#ifndef TELEMETRY_SERIES_H
#define TELEMETRY_SERIES_H

#include <stdint.h>

#include "telemetry/batch.h"

struct sy_pg;
struct tm_series;

struct tm_series *tm_series_new(void);    /* NULL: out of memory */
void tm_series_free(struct tm_series *s); /* accepts NULL */

/* ids[i] for every good reading i of b (0 for rejected ones): from the cache, registering the
 * names it does not know in PostgreSQL first (statements of their own, committed at once, so the
 * numbers hold whatever becomes of the batch). Call it outside a transaction. 0, or the error of
 * sy_pg_exec. */
int tm_series_resolve(struct tm_series *s, struct sy_pg *pg, const struct tm_batch *b,
                      int32_t *ids);

#endif
