/* glpi.h - sy-glpi: Chatwoot contacts, conversations and messages mirrored into GLPI.
 *
 * Consumes chatwoot.* (published by sy-gateway for /webhooks/chatwoot/<hook>). The hook's GLPI
 * settings come from PostgreSQL (glpi_hooks, `syctl glpi hook add`); an event of a hook that
 * has none there is acked and counted, since other integrations may use the same webhook.
 *
 *  contact_created / contact_updated: the contact's GLPI person (a User, or a Contact with
 *    sync_type contact) is found by email, then phone, or created, and linked in glpi_people;
 *    one the worker created is kept up to date.
 *  conversation_created / conversation_updated / message_created: the conversation's ticket is
 *    found or created (requester: the contact's User; for Contacts, which GLPI cannot make
 *    actors, the hook's default user and the contact's email), the messages the event carries
 *    are kept in glpi_messages, and every message not yet mirrored becomes a followup, oldest
 *    first (private notes private), dated with Chatwoot's time.
 *  conversation_status_changed: as above, then a resolution solves the ticket with a followup.
 *  anything else: acked and counted.
 *
 * Exactly once: everything about a contact runs under the fenced Redis mutex
 * glpi:<hook>:contact:<id>, everything about a conversation under glpi:<hook>:conv:<id> (then
 * its contact's, never the other way round), and every link is written with sy_pg_fence in its
 * transaction. Before a create is sent its intent is committed; a holder that finds an intent
 * without a result searches GLPI for the item's marker (User login, Contact registration
 * number, ticket title suffix, followup footer) before sending it again. */
#ifndef GLPI_GLPI_H
#define GLPI_GLPI_H

#include "sy/worker.h"

extern const struct sy_handler glpi_handler;

#endif
