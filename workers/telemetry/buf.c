/* buf.c - growable text buffers for what goes to PostgreSQL in bulk (buf.h). */
#include "telemetry/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sy/err.h"

int tm_buf_grow(struct tm_buf *b, size_t more)
{
    if (b->cap - b->n >= more)
        return 0;
    size_t cap = b->cap ? b->cap : 65536;
    while (cap - b->n < more)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -SY_ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

void tm_buf_free(struct tm_buf *b)
{
    free(b->p);
    *b = (struct tm_buf){0};
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len;
    unsigned min;
    unsigned cp;

    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0)
        len = 2, min = 0x80, cp = s[0] & 0x1f;
    else if ((s[0] & 0xf0) == 0xe0)
        len = 3, min = 0x800, cp = s[0] & 0x0f;
    else if ((s[0] & 0xf8) == 0xf0)
        len = 4, min = 0x10000, cp = s[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

int tm_buf_text(struct tm_buf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;

    if (tm_buf_grow(b, 2 * n + 1) != 0)
        return -SY_ENOMEM;
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        size_t l;

        if (c >= 0x20 && c < 0x7f && c != '\\') {
            b->p[b->n++] = (char)c;
            i++;
            continue;
        }
        if (c == '\\' || c == '\t' || c == '\n' || c == '\r') {
            b->p[b->n++] = '\\';
            b->p[b->n++] = c == '\\' ? '\\' : c == '\t' ? 't' : c == '\n' ? 'n' : 'r';
            i++;
            continue;
        }
        if (c < 0x20 || c == 0x7f || (l = utf8_len(u + i, n - i)) == 0) {
            b->p[b->n++] = '?'; /* a control byte or broken UTF-8 would fail the whole COPY */
            i++;
            continue;
        }
        memcpy(b->p + b->n, u + i, l);
        b->n += l;
        i += l;
    }
    return 0;
}

int tm_arr_begin(struct tm_buf *b)
{
    b->n = 0;
    if (tm_buf_grow(b, 2) != 0)
        return -SY_ENOMEM;
    b->p[b->n++] = '{';
    return 0;
}

int tm_arr_text(struct tm_buf *b, const char *s)
{
    size_t n = strlen(s);

    if (tm_buf_grow(b, 2 * n + 4) != 0)
        return -SY_ENOMEM;
    if (b->n > 1)
        b->p[b->n++] = ',';
    b->p[b->n++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            b->p[b->n++] = '\\';
        b->p[b->n++] = s[i];
    }
    b->p[b->n++] = '"';
    return 0;
}

int tm_arr_raw(struct tm_buf *b, const char *fmt, ...)
{
    va_list ap;

    if (tm_buf_grow(b, 40) != 0)
        return -SY_ENOMEM;
    if (b->n > 1)
        b->p[b->n++] = ',';
    va_start(ap, fmt);
    b->n += (size_t)vsnprintf(b->p + b->n, 38, fmt, ap);
    va_end(ap);
    return 0;
}

int tm_arr_end(struct tm_buf *b)
{
    if (tm_buf_grow(b, 2) != 0)
        return -SY_ENOMEM;
    b->p[b->n++] = '}';
    b->p[b->n] = '\0';
    return 0;
}
