/* alerts.h - threshold alerts (rules in telemetry.yaml, state machine in model.h) kept in
 * PostgreSQL: the state of each rule and device is locked and advanced inside the batch's own
 * transaction, so replicas sharing the stream act as one and a batch stored twice (redelivery)
 * changes nothing twice; every raise and clear is recorded there and then published as
 * telemetry.alert.<severity> from that record (an outbox). */
#ifndef TELEMETRY_ALERTS_H
#define TELEMETRY_ALERTS_H

#include <stddef.h>

#include "telemetry/batch.h"

struct sy_pg;
struct sy_worker;

/* Inside the batch's open transaction: feeds every good numeric reading a rule watches, oldest
 * first per device, to that rule's state, and records the raises and clears (*changes). 0, or
 * the error of sy_pg_exec (the caller rolls back; a deadlock between replicas is -SY_EDB and
 * worth running the batch again). */
int tm_alerts_apply(struct sy_pg *pg, const struct tm_model *m, const struct tm_batch *b,
                    size_t *changes);

/* Publishes recorded changes not yet published, oldest first, up to 100 per call, each marked
 * once the broker confirmed it. Rows another replica is publishing are skipped. 0 with
 * *published, or a negative error (PostgreSQL or the broker; the rest waits for the next call). */
int tm_alerts_publish(struct sy_pg *pg, struct sy_worker *w, size_t *published);

#endif
