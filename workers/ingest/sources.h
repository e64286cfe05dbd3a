/* sources.h - sy-ingest's sources and limits (deploy/config/ingest.yaml, SY_INGEST_SOURCES):
 *
 *   limits:
 *     max_bytes: 26214400          # a document larger is recorded and rejected, never kept
 *     types: [application/pdf, ...]  # what may be kept (a type with subtype "*" takes the
 *                                    # whole family, e.g. every image)
 *   email:
 *     inbox:                       # the source "email:inbox"
 *       url: imaps://mail.example.org/INBOX
 *       user: ingest
 *       password_env: SY_IMAP_PASSWORD        # or password_file: (relative to this file)
 *       allow_plain: false         # imap:// without TLS: test stacks only
 *       batch: 200                 # new messages one poll lists at most
 *
 * Values may name environment variables (${NAME}, ${NAME:-default}). Unknown keys, a missing
 * password and bad values stop the worker at start, naming the file, line and key. */
#ifndef INGEST_SOURCES_H
#define INGEST_SOURCES_H

#include <stdbool.h>
#include <stddef.h>

#define SOURCES_EMAIL_MAX 32
#define SOURCES_TYPES_MAX 64

struct email_source {
    char name[65];
    char source[80]; /* "email:<name>" */
    char *url, *user, *password;
    bool allow_plain;
    long batch;
};

struct sources {
    long long max_bytes;
    char *types[SOURCES_TYPES_MAX];
    size_t ntypes;
    struct email_source email[SOURCES_EMAIL_MAX];
    size_t nemail;
};

struct sources *sources_load(const char *path, char *err, size_t errlen);
void sources_free(struct sources *s); /* accepts NULL */
/* Whether mime (lower-case type/subtype) may be kept. */
bool sources_type_ok(const struct sources *s, const char *mime);
const struct email_source *sources_email(const struct sources *s, const char *source);

#endif
