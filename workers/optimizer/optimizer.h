/* optimizer.h - sy-optimizer: supply-chain scenarios and generic models solved with GLPK, each
 * in a child process, runs recorded in PostgreSQL (optimizer_runs).
 *
 * optimizer.solve / optimizer.solve_model: checked first (a bad scenario, model format or
 * option is REJECTed naming the sheet and row or the field); then the run (data.run_id, else
 * the message id) is claimed in optimizer_runs. A run that already ended publishes its stored
 * result again and is acked; one another replica is solving (its heartbeat moves) is retried
 * later; one whose replica died (heartbeat older than SY_OPTIMIZER_STALE) is solved again. While
 * the child solves, optimizer.progress goes out at most every SY_OPTIMIZER_PROGRESS_EVERY, the
 * heartbeat moves and cancel_requested is read every second. The end is stored, then
 * optimizer.result (id "optimizer.result:<run id>") is published, then the message acked.
 *
 * optimizer.cancel (any replica): sets cancel_requested for the run (recording a placeholder
 * when the solve has not been seen yet, so it ends cancelled when it comes) and acks.
 *
 * SIGTERM mid-solve: the child is killed, the run goes back to queued with nothing final
 * recorded, and the message is RETRYed so another replica (or this one, restarted) solves it
 * from the start.
 *
 * Each solve blocks a handler thread for its whole length: main() makes SY_HANDLER_THREADS and
 * SY_PREFETCH default to 2 (unless set), so a busy replica holds no deliveries it cannot start
 * and a cancel reaches a replica with a free thread. */
#ifndef OPTIMIZER_OPTIMIZER_H
#define OPTIMIZER_OPTIMIZER_H

#include "sy/worker.h"

extern const struct sy_handler optimizer_handler;

#endif
