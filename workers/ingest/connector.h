/* connector.h - what sy-ingest needs from a kind of source (a mailbox, Maximo, SharePoint,
 * WhatsApp): its settings, what is new since a cursor, and one item's documents. Everything else
 * (the poller's lock, cursors in PostgreSQL, publishing the fetches, the file store, dedup,
 * language, department, announcements) is the same for every kind and lives in ingest.c.
 *
 * A connector is called from several handler threads at once with the same settings: it keeps
 * no state of its own between calls but what its settings hold (a token cache, say, under its
 * own mutex). */
#ifndef INGEST_CONNECTOR_H
#define INGEST_CONNECTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sy_doc;
struct sy_node;

#define IN_FILENAME_MAX 1024
#define IN_MIME_MAX     255

/* Settings every call gets besides the source's own. keep (NULL outside a poll) is what a
 * listing calls between its requests, through in_keep(). */
struct in_env {
    long connect_timeout_ms, timeout_ms;
    int (*keep)(void *ctx);
    void *ctx;
};

/* Called by a listing between two requests to its source: renews the poll's lock when due.
 * 0: go on; 1: the listing has run long enough: hand on what was taken whole so far, with its
 * cursor (the next poll goes on from there); -SY_ESTALE: the lock is lost, stop (err says so). */
int in_keep(const struct in_env *env, char *err, size_t errlen);

/* One item a listing found: its id at the source (at most 512 bytes, no NUL), its size when the
 * source says it (-1 otherwise), and the cursor to save once this item and every one before it
 * were handed on (NULL: only the listing's final cursor may be saved, once all were). */
struct in_listed {
    char *item;
    int64_t size;
    json_t *cursor;
};

/* A document of an item. */
struct in_doc {
    char *filename; /* NULL when the source names none */
    char *mime;     /* lower-case type/subtype */
    unsigned char *data;
    size_t len;
};

/* What a fetch of one item gave. rejected: the item itself is refused (too large: not even
 * downloaded, gone, unreadable) with reason, and docs is empty. Otherwise docs are its
 * documents (a mail's attachments, a work order's doclinks, one file); title and body are the
 * texts the language is counted over and the department scored on (the title weighing more),
 * besides the documents' names and text-like contents; meta is what documents.metadata keeps of
 * the item (an object); source_time when it was made or sent (ISO 8601), or NULL. */
struct in_fetched {
    bool rejected;
    char reason[300];
    struct in_doc *docs;
    size_t ndocs;
    char *title, *body;
    json_t *meta;
    char *source_time;
};

void in_fetched_clear(struct in_fetched *f);
void in_listed_free(struct in_listed *items, size_t n);
/* Appends a document (copies of filename and mime; data is taken over). 0 or -SY_ENOMEM.
 * A filename longer than IN_FILENAME_MAX bytes is cut on a UTF-8 character (keeping a short
 * extension), its control characters become '_', and one not in UTF-8 is left out; a mime longer
 * than IN_MIME_MAX or not of the form type/subtype becomes application/octet-stream: the limits of
 * document.ingested, which a document that breaks them could never be announced under. */
int in_fetched_add(struct in_fetched *f, const char *filename, const char *mime,
                   unsigned char *data, size_t len);

struct connector {
    const char *kind; /* "email": its sources are "email:<name>", its section email: */

    /* One named entry of the kind's section of ingest.yaml (m, a map; key "email.inbox" for
     * messages; dir the file's folder for relative paths) into *conf. 0 or -SY_ECONFIG with
     * "file:line: key: why" in err; secrets are registered with the log's redaction. */
    int (*configure)(const struct sy_doc *doc, const struct sy_node *m, const char *key,
                     const char *dir, void **conf, char *err, size_t errlen);
    void (*unconfigure)(void *conf);

    /* Items new since cursor (an object, {} before the first poll), oldest first, at most limit;
     * *next the cursor once every one was handed on. A listing of many requests calls in_keep()
     * between them and ends early, with the cursor of what it took, when told to. NULL for a kind
     * that is not polled (its items arrive as messages). Errors as in sy/err.h: -SY_ECONFIG
     * (refused login, bad settings: waits for an operator), retriable ones otherwise, with
     * *retry_after_ms set when the source said how long to wait (else -1). A listing that fails
     * after it took some items may give them with *next set (their cursor) besides the error: they
     * are handed on, the cursor saved, and the error reported after. */
    int (*list)(void *conf, const struct in_env *env, const json_t *cursor, long limit,
                struct in_listed **items, size_t *n, json_t **next, long long *retry_after_ms,
                char *err, size_t errlen);

    /* One item: its documents, each at most max_bytes (a larger one is not downloaded whole:
     * the connector gives it with data NULL and len its size, and it is recorded as rejected).
     * hints: the fetch message's data (for items announced by a message, what it said of
     * them). Errors as for list; -SY_ENOTFOUND when the item is gone (it is then recorded as
     * rejected). */
    int (*fetch)(void *conf, const struct in_env *env, const char *item, const json_t *hints,
                 long long max_bytes, struct in_fetched *out, long long *retry_after_ms, char *err,
                 size_t errlen);

    /* For items announced by a message (hints, its data): 2 when the item is this source's own
     * (sent to its account), 1 when the source may take it (it takes any), 0 when it must not.
     * NULL: 1. Of a kind's sources the first that says 2 fetches it, else the first saying 1. */
    int (*claims)(void *conf, const json_t *hints);
};

extern const struct connector connector_email;
extern const struct connector connector_sharepoint;
extern const struct connector connector_maximo;
extern const struct connector connector_whatsapp;

/* The connector of a kind, NULL when there is none. */
const struct connector *connector_find(const char *kind);
/* Every connector, for the settings file's sections; NULL-terminated. */
extern const struct connector *const connectors[];

#endif
