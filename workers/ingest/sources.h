/* sources.h - sy-ingest's sources and limits (deploy/config/ingest.yaml, SY_INGEST_SOURCES):
 *
 *   limits:
 *     max_bytes: 26214400         # a document larger is recorded and rejected, never kept
 *     types: [application/pdf, ...]  # what may be kept (a type with subtype "*" takes the
 *                                    # whole family, e.g. every image)
 *   email:                        # one section per kind of source (connector.h)
 *     inbox:                      # the source "email:inbox", with its connector's settings
 *       url: imaps://mail.example.org/INBOX
 *       ...
 *
 * Values may name environment variables (${NAME}, ${NAME:-default}). Unknown keys, a missing
 * secret and bad values stop the worker at start, naming the file, line and key. */
#ifndef INGEST_SOURCES_H
#define INGEST_SOURCES_H

#include <stdbool.h>
#include <stddef.h>

#define SOURCES_MAX       64
#define SOURCES_TYPES_MAX 64

struct connector;

struct in_source {
    char name[65];
    char source[80]; /* "<kind>:<name>" */
    const struct connector *c;
    void *conf; /* the connector's settings */
};

struct sources {
    long long max_bytes;
    char *types[SOURCES_TYPES_MAX];
    size_t ntypes;
    struct in_source src[SOURCES_MAX];
    size_t n;
};

struct sources *sources_load(const char *path, char *err, size_t errlen);
void sources_free(struct sources *s); /* accepts NULL */
/* Whether mime (lower-case type/subtype) may be kept. */
bool sources_type_ok(const struct sources *s, const char *mime);
/* The source "<kind>:<name>", NULL when not configured. */
const struct in_source *sources_find(const struct sources *s, const char *source);

#endif
