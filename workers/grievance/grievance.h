/* grievance.h - sy-grievance: grievance.* messages into PostgreSQL (the system of record) and
 * into the legacy GRM's MySQL table, and GRM status changes pulled back.
 *
 * Each batch of messages runs in one PostgreSQL transaction: the messages' effects, then the
 * GRM copy of every grievance they touched (the current row, read under FOR UPDATE so two
 * replicas never write one grievance out of order), then a task row per message saying how
 * far it got. A message whose effects are stored but whose GRM copy or announcement failed
 * is retried, and its redelivery repeats only what is missing. GRM_INTEGRATION_ENABLED=false
 * (grm.yaml's enabled) leaves the GRM alone and keeps grm_sync.pending set, so the copies
 * catch up once it is enabled.
 *
 * grm.pull reads the GRM rows changed since a durable watermark and applies their status to
 * PostgreSQL (status_history created_by "grm"), announcing each as grievance.status_changed.
 * Conflict rule, when the GRM changed a status while PostgreSQL held a change it had not yet
 * pushed: the later change wins, judged by PostgreSQL's updated_at against the GRM row's
 * updated column (both UTC); a tie goes to the GRM, whose officers own the case. Either way
 * the conflict is recorded in sync_history with both values and the winner. When the GRM wins,
 * the grievance stays pending: its other changes still go out, now with the GRM's status. A
 * pull also pushes the grievances still pending after a minute (those the GRM refused five
 * times wait for their next change), so nothing waits for its message's retry.
 *
 * A status change is announced as soon as PostgreSQL holds it, whether or not the GRM has its
 * copy yet. */
#ifndef GRIEVANCE_GRIEVANCE_H
#define GRIEVANCE_GRIEVANCE_H

#include <stdbool.h>

struct sy_handler;
extern const struct sy_handler grievance_handler;

struct gr_conf {
    char *grm_map;         /* SY_GRM_MAP: deploy/config/grm.yaml */
    char *files;           /* SY_FILES_ROOT: the content-addressed file store */
    long long pull_rounds; /* SY_GRM_PULL_ROUNDS: batches read per grm.pull at most */
};

#endif
