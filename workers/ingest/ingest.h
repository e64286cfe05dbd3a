/* ingest.h - sy-ingest: documents from mailboxes (IMAP) into the file store and PostgreSQL.
 *
 * ingest.poll.email (from the scheduler): for each mailbox of ingest.yaml, under a fenced Redis
 * lock of its own (a replica that finds it held skips it), the UIDs after the saved cursor are
 * listed and one ingest.fetch per message is published and confirmed; then the cursor
 * (UIDVALIDITY, last UID) advances, fenced, past what was confirmed. A new UIDVALIDITY lists the
 * mailbox again; the fetches find what was stored already by its bytes.
 *
 * ingest.fetch (any replica): a message over the size limit is recorded as rejected without
 * being downloaded; otherwise it is fetched and parsed, its language counted over all its text
 * and its department scored, and every attachment (or, without any, its text) becomes a
 * document: kept in the file store by SHA-256, a documents row unless the same bytes are there,
 * an item row per part, and document.ingested for a new document. Every item is recorded once;
 * a redelivered fetch does nothing more. */
#ifndef INGEST_INGEST_H
#define INGEST_INGEST_H

#include "sy/worker.h"

extern const struct sy_handler ingest_handler;

#endif
