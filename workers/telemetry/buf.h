/* buf.h - growable text buffers for what goes to PostgreSQL in bulk: fields of COPY's text format
 * and array literals for unnest(). */
#ifndef TELEMETRY_BUF_H
#define TELEMETRY_BUF_H

#include <stddef.h>

struct tm_buf {
    char *p;
    size_t n, cap;
};

/* Room for `more` bytes past n. 0 or -SY_ENOMEM. */
int tm_buf_grow(struct tm_buf *b, size_t more);
void tm_buf_free(struct tm_buf *b);
/* One COPY text field (tab, newline, carriage return and backslash escaped; a control byte or
 * broken UTF-8 becomes '?', since either would fail the whole COPY) appended. 0 or -SY_ENOMEM. */
int tm_buf_text(struct tm_buf *b, const char *s, size_t n);

/* An array literal: begin empties b and opens it, text and raw add an element (quoted text; an
 * unquoted number or boolean from fmt), end closes it and NUL-terminates b->p. 0 or
 * -SY_ENOMEM. */
int tm_arr_begin(struct tm_buf *b);
int tm_arr_text(struct tm_buf *b, const char *s);
int tm_arr_raw(struct tm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int tm_arr_end(struct tm_buf *b);

#endif
