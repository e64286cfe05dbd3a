/* err.c - text and retriability of the runtime's error codes. */
#include "sy/err.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

struct err_row {
    const char *text;
    bool retriable;
};

static const struct err_row rows[] = {[SY_OK] = {"success", false},
#define SY_ERR_ROW_(name, text, retry) [SY_E##name] = {text, retry},
                                      SY_ERRNO_MAP(SY_ERR_ROW_)
#undef SY_ERR_ROW_
};

static const struct err_row *row_of(int err)
{
    if (err < 0)
        err = -err;
    if (err >= SY_ERR_LAST_ || !rows[err].text)
        return NULL;
    return &rows[err];
}

const char *sy_strerror(int err)
{
    const struct err_row *r = row_of(err);
    return r ? r->text : "unknown error";
}

bool sy_err_retriable(int err)
{
    const struct err_row *r = row_of(err);
    return r && r->retriable;
}

void sy_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}
