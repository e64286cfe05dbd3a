/* spool.h - the local append-only log between the MQTT client and the database: every message is
 * appended (into memory-mapped segment files) before the broker is acknowledged, so a process
 * killed with acknowledged but uncommitted messages finds them here when it starts again.
 *
 * Appended data is in the kernel's page cache when tm_spool_append returns: it survives the
 * process (kill -9, a crash), not the machine losing power before the kernel wrote it out.
 * Segments are reserved on disk when created (no SIGBUS when the disk fills later). The directory
 * is locked: one process per spool. */
#ifndef TELEMETRY_SPOOL_H
#define TELEMETRY_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TM_SPOOL_ID_LEN 32 /* hex characters of a spool's identity */

struct tm_spool;

struct tm_spool_pos {
    uint64_t seg; /* segment number (1, 2, ...) */
    uint64_t off; /* byte offset of a record in it */
};

struct tm_spool_rec {
    const char *topic; /* borrowed from the mapping: valid until released past it */
    size_t topic_len;
    const void *payload;
    size_t len;
    int64_t arrival_us;
    bool dup;
    struct tm_spool_pos at, next; /* where it is, and where the next one starts */
};

/* Opens (creating) the spool in dir with segments of seg_bytes (4 KiB multiple, at least 1 MiB)
 * and at most max_bytes of them kept. Torn records at the end of a segment (the process died
 * while appending) are cut off. NULL with the reason in err (unwritable directory, another
 * process holds it, no space for a segment). */
struct tm_spool *tm_spool_open(const char *dir, size_t seg_bytes, size_t max_bytes, char *err,
                               size_t errlen);
/* Unmaps and unlocks; the files stay. Accepts NULL. */
void tm_spool_close(struct tm_spool *s);

/* A random identity given to the spool when it was first made: a position committed elsewhere
 * belongs to this spool only when recorded with this id. */
const char *tm_spool_id(const struct tm_spool *s);
/* The first record still kept. */
struct tm_spool_pos tm_spool_first(const struct tm_spool *s);
/* Whether pos is a position inside what the spool keeps (at or after its first record). */
bool tm_spool_holds(const struct tm_spool *s, struct tm_spool_pos pos);

/* Appends one message. One appending thread at a time. Waits while the spool is full, for as
 * long as it takes readers to release: a slow database then slows the broker down instead of
 * losing anything (the message waiting is not acknowledged, so a process that stops meanwhile
 * gets it again). 0; -SY_ETOOBIG (larger than a segment can hold), -SY_EIO (no space on disk for
 * a new segment: try again later). */
int tm_spool_append(struct tm_spool *s, const char *topic, size_t topic_len, const void *payload,
                    size_t len, int64_t arrival_us, bool dup);

/* The record at *pos, waiting up to wait_ms for one to be appended there: 1 and *rec (then
 * continue from rec->next), 0 when none came. A record that fails its checksum ends its segment
 * (logged). Reader thread only. */
int tm_spool_read(struct tm_spool *s, struct tm_spool_pos pos, struct tm_spool_rec *rec,
                  int wait_ms);
/* Everything before pos is stored for good: segments wholly before it are removed, which may
 * unblock an appender. pos is at or before where the reader is. Any thread. */
void tm_spool_release(struct tm_spool *s, struct tm_spool_pos pos);

/* Bytes of segments kept, and records appended since open. */
uint64_t tm_spool_bytes(const struct tm_spool *s);
uint64_t tm_spool_appended(const struct tm_spool *s);

#endif
