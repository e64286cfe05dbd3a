/* err.h - one list of error codes for the whole runtime, and their text. */
#ifndef SY_ERR_H
#define SY_ERR_H

#include <stdbool.h>
#include <stddef.h>

/* Every runtime call returns 0 or one of these, negated. A library's own error is translated
 * where it is called; sy_err_retriable() says whether trying again later may succeed. */
#define SY_ERRNO_MAP(X)                                                                            \
    X(NOMEM, "out of memory", false)                                                               \
    X(INVAL, "invalid argument", false)                                                            \
    X(CONFIG, "bad configuration", false)                                                          \
    X(IO, "input/output error", true)                                                              \
    X(CONN, "connection failed or lost", true)                                                     \
    X(TIMEOUT, "timed out", true)                                                                  \
    X(PROTO, "protocol error", true)                                                               \
    X(DECODE, "undecodable data", false)                                                           \
    X(SCHEMA, "schema violation", false)                                                           \
    X(TOOBIG, "size limit exceeded", false)                                                        \
    X(NOTFOUND, "not found", false)                                                                \
    X(EXISTS, "already exists", false)                                                             \
    X(BUSY, "resource busy", true)                                                                 \
    X(STALE, "stale fencing token", false)                                                         \
    X(NACK, "broker refused the message", true)                                                    \
    X(UNROUTABLE, "no queue bound for the routing key", false)                                     \
    X(DB, "database error", true)                                                                  \
    X(DBDATA, "database refused the data", false)                                                  \
    X(SHUTDOWN, "shutting down", true)                                                             \
    X(INTERNAL, "internal error", false)

enum sy_err {
    SY_OK = 0,
#define SY_ERR_ENUM_(name, text, retry) SY_E##name,
    SY_ERR_FIRST_ = 0,
    SY_ERRNO_MAP(SY_ERR_ENUM_)
#undef SY_ERR_ENUM_
        SY_ERR_LAST_
};

/* The codes are returned negated: `return -SY_ETIMEOUT;`. */

/* Text for a code, positive or negative; never NULL. */
const char *sy_strerror(int err);

/* Formats a message into a caller's error buffer; does nothing when err is NULL or errlen 0.
 * The one way runtime modules fill their `char *err, size_t errlen` arguments. */
void sy_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* True when the failure is transient (network, timeouts, busy): worth a RETRY verdict. */
bool sy_err_retriable(int err);

#endif
