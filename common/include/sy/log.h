/* log.h - JSON-lines logging on stderr, with secrets redacted before anything is written. */
#ifndef SY_LOG_H
#define SY_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum sy_log_level { SY_LOG_DEBUG, SY_LOG_INFO, SY_LOG_WARN, SY_LOG_ERROR };

/* Sets the process-wide fields of every line. Strings are copied. Call once at start; lines
 * written before carry worker "-" and level INFO. */
void sy_log_init(const char *worker, const char *instance, enum sy_log_level level);

/* Parses "debug", "info", "warn", "error". Returns 0 or -SY_EINVAL. */
int sy_log_level_parse(const char *s, enum sy_log_level *out);

/* Registers a value that must never appear in a log line (copied). Values shorter than 4
 * bytes are ignored (they would redact ordinary words). At most 64 are kept: past that one
 * warning is logged and later values are left to the pattern rules. Thread-safe; secrets are
 * never removed, and redaction reads them without taking a lock. */
void sy_log_add_secret(const char *secret);

/* The message this thread is working on: its id and type are added to each line the thread
 * writes until cleared with NULLs. Borrowed: the strings must outlive the call. */
void sy_log_set_msg(const char *msg_id, const char *type);

/* One line: {"ts","level","worker","instance","event","msg_id","type","duration_ms","error",
 * "msg"}. `event` is a short dotted tag ("amqp.reconnect"), `duration_ms` < 0 and `error`
 * NULL are left out. The message text and error are redacted: registered secrets, URL
 * passwords and "password=..."-style values become "[redacted]". Thread-safe; one write(2)
 * per line, lines over 16 KiB are truncated. */
void sy_log_write(enum sy_log_level lvl, const char *event, double duration_ms, const char *error,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void sy_log_vwrite(enum sy_log_level lvl, const char *event, double duration_ms, const char *error,
                   const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

/* Redacts `in` into `out` (always NUL-terminated, truncated to outsz and to 16 KiB). Rules, in
 * order: (1) each registered secret, and a text ending in the first 4+ bytes of one (a cut
 * line), becomes "[redacted]"; (2) scheme://user:password@ keeps all but the password;
 * (3) the value after password, passwd, pwd, secret, token, api_key, apikey or authorization
 * (any case, also as a suffix such as client_secret, then = or :, optionally quoted as in
 * JSON) up to a space, &, comma, quote or the end; a quoted value runs to its closing quote,
 * and "Authorization: Bearer x" keeps the scheme word. Exposed for tests. */
void sy_log_redact(const char *in, char *out, size_t outsz);

#define sy_log_debug(event, ...) sy_log_write(SY_LOG_DEBUG, event, -1, NULL, __VA_ARGS__)
#define sy_log_info(event, ...)  sy_log_write(SY_LOG_INFO, event, -1, NULL, __VA_ARGS__)
#define sy_log_warn(event, ...)  sy_log_write(SY_LOG_WARN, event, -1, NULL, __VA_ARGS__)
#define sy_log_error(event, ...) sy_log_write(SY_LOG_ERROR, event, -1, NULL, __VA_ARGS__)

#endif
