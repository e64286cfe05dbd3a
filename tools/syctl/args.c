/* args.c - syctl's option parsing, input reading, error lines and exit-code mapping: the parts
 * every command shares and that need no service. */
#include "syctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sy/config.h"
#include "sy/err.h"
#include "sy/log.h"

static int find_spec(const struct syctl_optspec *specs, const char *name, size_t namelen)
{
    for (int i = 0; specs && specs[i].name && i < SYCTL_MAX_OPTS; i++) {
        if (strlen(specs[i].name) == namelen && memcmp(specs[i].name, name, namelen) == 0)
            return i;
    }
    return -1;
}

int syctl_args_parse(int argc, char **argv, const struct syctl_optspec *specs, struct syctl_args *a,
                     char *err, size_t errlen)
{
    bool options_done = false;

    memset(a, 0, sizeof(*a));
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];

        if (options_done || arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (a->npos == SYCTL_MAX_POS) {
                snprintf(err, errlen, "too many arguments");
                return -SY_EINVAL;
            }
            a->pos[a->npos++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            a->help = true;
            continue;
        }
        if (arg[1] != '-') {
            snprintf(err, errlen, "unknown option '%s'", arg);
            return -SY_EINVAL;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t namelen = eq ? (size_t)(eq - name) : strlen(name);
        int idx = find_spec(specs, name, namelen);
        if (idx < 0) {
            snprintf(err, errlen, "unknown option '--%.*s'", (int)namelen, name);
            return -SY_EINVAL;
        }
        if (!specs[idx].has_arg) {
            if (eq) {
                snprintf(err, errlen, "option '--%s' takes no value", specs[idx].name);
                return -SY_EINVAL;
            }
            a->set[idx] = true;
            continue;
        }
        if (eq) {
            a->val[idx] = eq + 1;
        } else if (i + 1 < argc) {
            a->val[idx] = argv[++i];
        } else {
            snprintf(err, errlen, "option '--%s' needs a value", specs[idx].name);
            return -SY_EINVAL;
        }
        a->set[idx] = true;
    }
    return 0;
}

int syctl_parse_uint(const char *s, unsigned long long min, unsigned long long max,
                     unsigned long long *out)
{
    unsigned long long v = 0;

    if (!s || !*s)
        return -SY_EINVAL;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -SY_EINVAL;
        unsigned d = (unsigned)(*p - '0');
        if (v > max / 10 || (v == max / 10 && d > max % 10))
            return -SY_EINVAL;
        v = v * 10 + d;
    }
    if (v < min)
        return -SY_EINVAL;
    *out = v;
    return 0;
}

static int read_stream(FILE *f, size_t max, char **out, size_t *len, char *err, size_t errlen)
{
    size_t cap = 64 * 1024, n = 0;
    char *buf = malloc(cap + 1);
    int rc = 0;

    if (!buf) {
        rc = -SY_ENOMEM;
        goto out;
    }
    for (;;) {
        if (n == cap) {
            if (cap > max) {
                snprintf(err, errlen, "stdin: more than %zu bytes", max);
                rc = -SY_ETOOBIG;
                goto out;
            }
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                rc = -SY_ENOMEM;
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "stdin: %s", strerror(errno));
        rc = -SY_EIO;
        goto out;
    }
    if (n > max) {
        snprintf(err, errlen, "stdin: more than %zu bytes", max);
        rc = -SY_ETOOBIG;
        goto out;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
out:
    if (rc == -SY_ENOMEM)
        snprintf(err, errlen, "out of memory");
    free(buf);
    return rc;
}

int syctl_read_input(const char *arg, size_t max, char **out, size_t *len, char *err, size_t errlen)
{
    if (strcmp(arg, "-") == 0 || strcmp(arg, "@-") == 0)
        return read_stream(stdin, max, out, len, err, errlen);
    if (arg[0] == '@') {
        errno = 0;
        int rc = sy_read_file(arg + 1, max, out, len);
        if (rc == -SY_ETOOBIG)
            snprintf(err, errlen, "%s: more than %zu bytes", arg + 1, max);
        else if (rc < 0)
            snprintf(err, errlen, "%s: %s", arg + 1, errno ? strerror(errno) : sy_strerror(rc));
        return rc;
    }
    size_t n = strlen(arg);
    if (n > max) {
        snprintf(err, errlen, "argument: more than %zu bytes", max);
        return -SY_ETOOBIG;
    }
    *out = strdup(arg);
    if (!*out) {
        snprintf(err, errlen, "out of memory");
        return -SY_ENOMEM;
    }
    *len = n;
    return 0;
}

int syctl_exit_for(int err)
{
    switch (err < 0 ? -err : err) {
    case SY_OK:
        return SYCTL_OK;
    case SY_ECONN:
        return SYCTL_EXIT_UNAVAIL;
    case SY_ECONFIG:
        return SYCTL_EXIT_CONFIG;
    case SY_ENOTFOUND:
    case SY_EUNROUTABLE:
        return SYCTL_EXIT_NOTFOUND;
    case SY_EINVAL:
    case SY_EDECODE:
    case SY_ESCHEMA:
    case SY_ETOOBIG:
        return SYCTL_EXIT_INPUT;
    default:
        return SYCTL_EXIT_FAIL;
    }
}

int syctl_fail(int code, const char *fmt, ...)
{
    char line[2048], clean[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One line per error, whatever a broker or server put in its text. */
    for (char *p = line; *p; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    }
    sy_log_redact(line, clean, sizeof(clean));
    fflush(stdout);
    fprintf(stderr, "syctl: %s\n", clean);
    return code;
}

char *syctl_base64(const void *p, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = p;
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;

    if (!out)
        return NULL;
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = tab[v >> 6 & 63];
        *o++ = tab[v & 63];
    }
    if (i < len) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < len ? (unsigned)s[i + 1] << 8 : 0);
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < len ? tab[v >> 6 & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

int syctl_print_json(json_t *j, const char *what)
{
    int rc = j && json_dumpf(j, stdout, JSON_COMPACT) == 0 ? 0 : -1;

    json_decref(j);
    if (rc != 0)
        return syctl_fail(SYCTL_EXIT_FAIL, "%s: cannot write the output", what);
    putchar('\n');
    return SYCTL_OK;
}
