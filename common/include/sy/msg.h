/* msg.h - the message envelope {v, id, type, ts, source, data} and read access to its data. */
#ifndef SY_MSG_H
#define SY_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sy_msg; /* a decoded message; opaque */

/* Limits applied to every untrusted body before anything is allocated from its sizes. */
#define SY_MSG_MAX_BYTES  (8u * 1024u * 1024u)
#define SY_MSG_MAX_DEPTH  16
#define SY_MSG_MAX_ITEMS  100000u /* elements of all maps and arrays together */
#define SY_MSG_ID_MAX     128
#define SY_MSG_TYPE_MAX   128
#define SY_MSG_SOURCE_MAX 128

/* Decodes a msgpack envelope. The body is copied; the result owns its memory. Checks the
 * envelope itself (a map with v:int>=1, id, type, source: non-empty strings within their
 * limits, ts: int milliseconds since the epoch, data: map) but not the data's schema. On
 * failure returns -SY_EDECODE (not msgpack, trailing bytes, too deep or too many items, a str
 * that is not UTF-8, an ext other than the timestamp) or -SY_ESCHEMA (envelope fields, one of
 * them given twice) with the reason in err. */
int sy_msg_decode(const void *body, size_t len, struct sy_msg **out, char *err, size_t errlen);
void sy_msg_destroy(struct sy_msg *msg);

int sy_msg_version(const struct sy_msg *msg);
const char *sy_msg_id(const struct sy_msg *msg);
const char *sy_msg_type(const struct sy_msg *msg);
const char *sy_msg_source(const struct sy_msg *msg);
int64_t sy_msg_ts_ms(const struct sy_msg *msg);
/* How many times this message was handed to a handler of this worker, 1 on first delivery. */
unsigned sy_msg_attempt(const struct sy_msg *msg);
void sy_msg_set_attempt(struct sy_msg *msg, unsigned attempt);

/* The raw msgpack body (borrowed, valid as long as msg). */
const void *sy_msg_body(const struct sy_msg *msg, size_t *len);

/* Path access into data: dotted keys, with decimal indices for arrays ("files.0.file_id");
 * "" is data itself. A key given twice in a map reads as its first value, everywhere.
 * Each returns 0, -SY_ENOTFOUND (no such path, or nil) or -SY_EINVAL (another type, or a
 * path with an empty step).
 * Strings and bins are borrowed from msg and are not NUL-terminated unless noted. */
int sy_msg_get_str(const struct sy_msg *msg, const char *path, const char **s, size_t *len);
/* Copies a string into buf (NUL-terminated); -SY_ETOOBIG when it does not fit (buf is then
 * ""), -SY_EINVAL when the string holds a NUL byte (a C string would silently cut it). */
int sy_msg_copy_str(const struct sy_msg *msg, const char *path, char *buf, size_t bufsz);
int sy_msg_get_int(const struct sy_msg *msg, const char *path, int64_t *out);
/* Accepts ints too. */
int sy_msg_get_double(const struct sy_msg *msg, const char *path, double *out);
int sy_msg_get_bool(const struct sy_msg *msg, const char *path, bool *out);
int sy_msg_get_bin(const struct sy_msg *msg, const char *path, const void **p, size_t *len);
/* Number of elements of an array or map at path. */
int sy_msg_get_len(const struct sy_msg *msg, const char *path, size_t *len);
bool sy_msg_has(const struct sy_msg *msg, const char *path);

/* Builds an envelope around `data_msgpack` (a packed msgpack map, copied). `id` NULL means a
 * fresh random UUIDv4; `ts_ms` 0 means now. The result is malloc'd into *out (caller frees).
 * 0 or -SY_EINVAL / -SY_ENOMEM. */
int sy_msg_encode(const char *type, const char *id, const char *source, int64_t ts_ms,
                  const void *data_msgpack, size_t data_len, void **out, size_t *out_len);

/* A random UUIDv4 in canonical form into buf[37]. */
void sy_uuid4(char buf[37]);

/* --- Verdicts -------------------------------------------------------------------------- */

enum sy_verdict {
    SY_ACK = 0, /* done (or nothing to do): remove it */
    SY_RETRY,   /* transient failure: back to this worker's queue after a backoff delay */
    SY_REJECT,  /* permanent failure: to this worker's dead-letter queue with the reason */
};

/* Records a verdict and its reason on msg (formatted, redacted when logged, at most 1 KiB)
 * and returns the verdict, so a handler can `return sy_msg_fail(msg, SY_REJECT, "...")`.
 * In a batch handler, a message with no verdict set is acked. */
enum sy_verdict sy_msg_fail(struct sy_msg *msg, enum sy_verdict v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
enum sy_verdict sy_msg_verdict(const struct sy_msg *msg);
/* The recorded reason, "" if none. */
const char *sy_msg_reason(const struct sy_msg *msg);
/* With a RETRY verdict: the next attempt must not come sooner than ms from now (a server's
 * Retry-After). The runtime parks the message on the first step of the retry ladder at or
 * after its attempt's step whose delay is at least that long (the last step when none is), so
 * a step's delay queue never holds a message that expires later than the ones behind it. */
void sy_msg_retry_after(struct sy_msg *msg, long long ms);
long long sy_msg_retry_after_ms(const struct sy_msg *msg);
/* Used by the runtime after a handler returned. */
void sy_msg_set_verdict(struct sy_msg *msg, enum sy_verdict v);

#endif
