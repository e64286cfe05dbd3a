/* scheduler.h - sy-scheduler's handler: while this replica holds the leader lease, every due
 * tick of every job is claimed in the ledger, published with a broker confirm, and marked. */
#ifndef SCHED_SCHEDULER_H
#define SCHED_SCHEDULER_H

#include "sy/worker.h"

extern const struct sy_handler scheduler_handler;

#endif
