/* mirror.h - one Chatwoot event made into GLPI items under the fenced mutexes (see glpi.h). */
#ifndef GLPI_MIRROR_H
#define GLPI_MIRROR_H

#include <jansson.h>
#include <stdbool.h>

#include "glpi/client.h"

struct sy_pg;
struct sy_redis;
struct sy_http;
struct sy_msg;
struct sy_counter;

/* What one event works with: the handler thread's connections, the hook's session, the
 * message whose verdict it sets, the mutexes' lease (gl_lock_ttl_ms of the GLPI timeout) and
 * the counter of followups GLPI refused (may be NULL). pg_lost and redis_lost tell the thread
 * to reconnect. */
struct gl_ev {
    struct sy_pg *pg;
    struct sy_redis *redis;
    struct sy_http *http;
    struct glpi_session *s;
    const struct glpi_hook *h;
    struct sy_msg *msg;
    int lock_ttl_ms;
    struct sy_counter *refused;
    bool pg_lost, redis_lost;
};

/* The lease of the mutexes for a GLPI timeout (per exchange) of timeout_ms: longer than the
 * longest call may take (a call and, after a 401, an initSession and the call again) plus a
 * margin, so a call in flight never outlives the mutex it was sent under. The lease is renewed
 * before every call. */
int gl_lock_ttl_ms(long long timeout_ms);

/* Each returns 0 when the event is mirrored (ack), or -1 with the verdict and its reason set on
 * e->msg: RETRY when GLPI, PostgreSQL or Redis failed or a mutex was busy, with Retry-After when
 * GLPI gave one; REJECT when the event's data or GLPI's refusal of it make a retry pointless.
 * A followup GLPI refuses is recorded (glpi_messages.refused_at, refused_reason) and the later
 * messages and the status go on; a message event whose own message was refused is REJECTed
 * with GLPI's status, code and message, after the rest of the event was done. */

/* contact_created / contact_updated: the payload is the contact. With update (contact_updated),
 * a person this worker created takes the contact's new name, email and phone; without it a
 * person already linked is left as it is. */
int gl_contact(struct gl_ev *e, const json_t *contact, bool update);

/* A conversation event (payload = the conversation; status_event for
 * conversation_status_changed) or a message event (payload = the message, whose
 * "conversation" is the conversation). */
int gl_conversation(struct gl_ev *e, const json_t *conversation, bool status_event);
int gl_message(struct gl_ev *e, const json_t *message);

#endif
