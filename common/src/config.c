/* config.c - the table-driven settings loader: environment (and NAME_FILE) into a struct. */
#include "sy/config.h"

#include "sy/err.h"
#include "sy/log.h"
#include "text_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* A secret read from NAME_FILE: a password, a token, a key. */
#define CONF_FILE_MAX (64u * 1024u)
/* Bad text is echoed in errors (never for SECRET or URL), cut to this many characters. */
#define CONF_ECHO_MAX 64

int sy_read_file(const char *path, size_t max, char **out, size_t *len)
{
    char *buf = NULL;
    size_t cap = 0, used = 0;
    int fd = -1, rc = 0, saved;

    *out = NULL;
    if (len)
        *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -SY_EIO;
        goto out;
    }
    /* The size is learnt by reading, not from fstat: pipes and /proc files report 0. */
    for (;;) {
        ssize_t n;

        if (used == cap) {
            size_t ncap = cap ? cap * 2 : 4096;
            char *nbuf;

            if (ncap > max + 1)
                ncap = max + 1;
            if (ncap <= used) {
                rc = -SY_ETOOBIG;
                goto out;
            }
            nbuf = realloc(buf, ncap + 1);
            if (!nbuf) {
                rc = -SY_ENOMEM;
                goto out;
            }
            buf = nbuf;
            cap = ncap;
        }
        n = read(fd, buf + used, cap - used);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -SY_EIO;
            goto out;
        }
        if (n == 0)
            break;
        used += (size_t)n;
        if (used > max) {
            rc = -SY_ETOOBIG;
            goto out;
        }
    }
    if (!buf) {
        buf = malloc(1);
        if (!buf) {
            rc = -SY_ENOMEM;
            goto out;
        }
    }
    buf[used] = '\0';
    *out = buf;
    buf = NULL;
    if (len)
        *len = used;

out:
    saved = errno;
    free(buf);
    if (fd >= 0)
        close(fd);
    errno = saved;
    return rc;
}

/* Multiplies by a unit, refusing overflow. */
static int mul_unit(unsigned long long v, unsigned long long unit, long long *out)
{
    if (v > (unsigned long long)LLONG_MAX / unit)
        return -SY_EINVAL;
    *out = (long long)(v * unit);
    return 0;
}

int sy_conf_parse_ms(const char *s, long long *out)
{
    static const struct {
        const char *suffix;
        unsigned long long ms;
    } units[] = {{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    unsigned long long v = 0;
    const char *p = s;

    if (!s || *s < '0' || *s > '9')
        return -SY_EINVAL;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');

        if (v > ((unsigned long long)LLONG_MAX - d) / 10)
            return -SY_EINVAL;
        v = v * 10 + d;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(p, units[i].suffix) == 0)
            return mul_unit(v, units[i].ms, out);
    }
    return -SY_EINVAL;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -SY_EINVAL;
}

static int parse_ll(const char *s, long long *out)
{
    const char *p = s;
    char *end = NULL;
    long long v;

    if (*p == '+' || *p == '-')
        p++;
    if (*p < '0' || *p > '9')
        return -SY_EINVAL;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -SY_EINVAL;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno == ERANGE || *end != '\0')
        return -SY_EINVAL;
    *out = v;
    return 0;
}

/* Writes a duration the way an operator would type it: "90s", "2m", "250ms". */
static void fmt_ms(long long ms, char *buf, size_t sz)
{
    static const struct {
        const char *suffix;
        long long ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};

    if (ms != 0) {
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            if (ms % units[i].ms == 0) {
                snprintf(buf, sz, "%lld%s", ms / units[i].ms, units[i].suffix);
                return;
            }
        }
    }
    snprintf(buf, sz, "%lldms", ms);
}

/* A URL's parts as offsets into its text; only what validation and redaction need. */
struct url_parts {
    const char *pass; /* NULL when the URL has no password */
    size_t pass_len;
};

static bool scheme_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '-' || c == '.';
}

/* scheme://[user[:password]@]host[:port][/...]: a scheme, a host, a numeric port if any. */
static int parse_url(const char *s, struct url_parts *u)
{
    const char *sep = strstr(s, "://"), *auth, *end, *at = NULL, *host, *hend, *port;

    u->pass = NULL;
    u->pass_len = 0;
    if (!sep || sep == s)
        return -SY_EINVAL;
    for (const char *p = s; p < sep; p++) {
        if (!scheme_char(*p))
            return -SY_EINVAL;
    }
    auth = sep + 3;
    end = auth + strcspn(auth, "/?#");
    for (const char *p = auth; p < end; p++) {
        if (*p == '@')
            at = p;
        else if ((unsigned char)*p <= ' ')
            return -SY_EINVAL;
    }
    host = auth;
    if (at) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));

        if (colon) {
            u->pass = colon + 1;
            u->pass_len = (size_t)(at - colon - 1);
        }
        host = at + 1;
    }
    if (*host == '[') {
        hend = memchr(host, ']', (size_t)(end - host));
        if (!hend || hend == host + 1)
            return -SY_EINVAL;
        port = hend + 1;
    } else {
        hend = memchr(host, ':', (size_t)(end - host));
        if (!hend)
            hend = end;
        if (hend == host)
            return -SY_EINVAL;
        port = hend;
    }
    if (port < end) {
        unsigned long n = 0;

        if (*port != ':' || port + 1 == end)
            return -SY_EINVAL;
        for (const char *p = port + 1; p < end; p++) {
            if (*p < '0' || *p > '9')
                return -SY_EINVAL;
            n = n * 10 + (unsigned long)(*p - '0');
            if (n > 65535)
                return -SY_EINVAL;
        }
        if (n == 0)
            return -SY_EINVAL;
    }
    return 0;
}

/* Registers a URL's password for redaction, as written and percent-decoded: a client library
 * may print either. */
static void add_url_secret(const struct url_parts *u)
{
    char raw[1024], dec[1024];
    size_t n = 0;

    if (!u->pass || u->pass_len == 0)
        return;
    if (u->pass_len >= sizeof(raw)) {
        /* Too long to copy here; a prefix still redacts every line that shows it. */
        memcpy(raw, u->pass, sizeof(raw) - 1);
        raw[sizeof(raw) - 1] = '\0';
        sy_log_add_secret(raw);
        return;
    }
    memcpy(raw, u->pass, u->pass_len);
    raw[u->pass_len] = '\0';
    sy_log_add_secret(raw);
    for (size_t i = 0; i < u->pass_len; i++) {
        int hi, lo;

        if (raw[i] == '%' && i + 2 < u->pass_len && (hi = sy__hexval(raw[i + 1])) >= 0 &&
            (lo = sy__hexval(raw[i + 2])) >= 0) {
            dec[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            dec[n++] = raw[i];
        }
    }
    dec[n] = '\0';
    if (strlen(dec) == n && strcmp(dec, raw) != 0)
        sy_log_add_secret(dec);
}

/* Bounds of an INT or MS row: min == max == 0 leaves the value unbounded (MS: not negative). */
static void row_bounds(const struct sy_conf_key *k, long long *min, long long *max)
{
    *min = k->min;
    *max = k->max;
    if (k->min == 0 && k->max == 0) {
        *min = k->type == SY_CONF_MS ? 0 : LLONG_MIN;
        *max = LLONG_MAX;
    }
}

/* Parses `text` for row k into its field. `label` is what the error names ("SY_X", or
 * "SY_X_FILE" when the text came from the file, or "SY_X default"). On error nothing is kept. */
static int store(const struct sy_conf_key *k, const char *label, const char *text, void *dst,
                 char *err, size_t errlen)
{
    char *field = (char *)dst + k->offset;
    const char *more = strlen(text) > CONF_ECHO_MAX ? "..." : "";
    long long min, max, v;
    bool b;

    switch (k->type) {
    case SY_CONF_URL: {
        struct url_parts u;

        /* Never echoed: a URL may carry a password. */
        if (parse_url(text, &u) != 0) {
            sy_errf(err, errlen,
                    "%s: invalid URL (expected scheme://[user[:password]@]host[:port][/path])",
                    label);
            return -SY_ECONFIG;
        }
        add_url_secret(&u);
    }
        /* fall through */
    case SY_CONF_STR:
    case SY_CONF_SECRET: {
        char *copy = strdup(text);

        if (!copy) {
            sy_errf(err, errlen, "%s: out of memory", label);
            return -SY_ENOMEM;
        }
        if (k->type == SY_CONF_SECRET)
            sy_log_add_secret(copy);
        memcpy(field, &copy, sizeof(copy));
        return 0;
    }
    case SY_CONF_INT:
        row_bounds(k, &min, &max);
        if (parse_ll(text, &v) != 0 || v < min || v > max) {
            if (min == LLONG_MIN && max == LLONG_MAX)
                sy_errf(err, errlen, "%s: expected an integer, got '%.*s%s'", label, CONF_ECHO_MAX,
                        text, more);
            else
                sy_errf(err, errlen, "%s: expected an integer from %lld to %lld, got '%.*s%s'",
                        label, min, max, CONF_ECHO_MAX, text, more);
            return -SY_ECONFIG;
        }
        memcpy(field, &v, sizeof(v));
        return 0;
    case SY_CONF_BOOL:
        if (parse_bool(text, &b) != 0) {
            sy_errf(err, errlen,
                    "%s: expected a boolean (true/false, yes/no, on/off, 1/0), got '%.*s%s'", label,
                    CONF_ECHO_MAX, text, more);
            return -SY_ECONFIG;
        }
        memcpy(field, &b, sizeof(b));
        return 0;
    case SY_CONF_MS:
        row_bounds(k, &min, &max);
        if (sy_conf_parse_ms(text, &v) != 0 || v < min || v > max) {
            char lo[32], hi[32];

            fmt_ms(min, lo, sizeof(lo));
            fmt_ms(max, hi, sizeof(hi));
            if (max == LLONG_MAX)
                sy_errf(err, errlen,
                        "%s: expected a duration of at least %s (250ms, 5s, 2m, 1h, 1d or bare "
                        "milliseconds), got '%.*s%s'",
                        label, lo, CONF_ECHO_MAX, text, more);
            else
                sy_errf(err, errlen,
                        "%s: expected a duration from %s to %s (250ms, 5s, 2m, 1h, 1d or bare "
                        "milliseconds), got '%.*s%s'",
                        label, lo, hi, CONF_ECHO_MAX, text, more);
            return -SY_ECONFIG;
        }
        memcpy(field, &v, sizeof(v));
        return 0;
    }
    sy_errf(err, errlen, "%s: unknown setting type %d", label, (int)k->type);
    return -SY_EINVAL;
}

static void clear_field(const struct sy_conf_key *k, void *dst)
{
    char *field = (char *)dst + k->offset;

    switch (k->type) {
    case SY_CONF_STR:
    case SY_CONF_SECRET:
    case SY_CONF_URL: {
        char *none = NULL;

        memcpy(field, &none, sizeof(none));
        break;
    }
    case SY_CONF_INT:
    case SY_CONF_MS: {
        long long zero = 0;

        memcpy(field, &zero, sizeof(zero));
        break;
    }
    case SY_CONF_BOOL: {
        bool no = false;

        memcpy(field, &no, sizeof(no));
        break;
    }
    }
}

/* Reads NAME_FILE for row k into *out (malloc'd), cutting one trailing newline. */
static int read_value_file(const char *label, const char *path, char **out, char *err,
                           size_t errlen)
{
    size_t len = 0;
    int rc = sy_read_file(path, CONF_FILE_MAX, out, &len);

    if (rc == -SY_ETOOBIG) {
        sy_errf(err, errlen, "%s: file '%.200s' is larger than %u bytes", label, path,
                CONF_FILE_MAX);
        return -SY_ECONFIG;
    }
    if (rc != 0) {
        sy_errf(err, errlen, "%s: cannot read '%.200s': %s", label, path,
                rc == -SY_EIO ? strerror(errno) : sy_strerror(rc));
        return -SY_ECONFIG;
    }
    if (len > 0 && (*out)[len - 1] == '\n') {
        (*out)[--len] = '\0';
        if (len > 0 && (*out)[len - 1] == '\r')
            (*out)[--len] = '\0';
    }
    if (strlen(*out) != len) {
        free(*out);
        *out = NULL;
        sy_errf(err, errlen, "%s: file '%.200s' holds a NUL byte", label, path);
        return -SY_ECONFIG;
    }
    return 0;
}

static int load_row(const struct sy_conf_key *k, void *dst, char *err, size_t errlen)
{
    char file_name[256], label[300];
    const char *value = getenv(k->name), *path = NULL;
    char *from_file = NULL;
    int rc = 0;

    clear_field(k, dst);
    /* An empty variable counts as unset, as compose files and shells often leave them. */
    if (value && !*value)
        value = NULL;
    if (k->type == SY_CONF_SECRET || k->type == SY_CONF_URL) {
        if (snprintf(file_name, sizeof(file_name), "%s_FILE", k->name) >= (int)sizeof(file_name)) {
            sy_errf(err, errlen, "%.200s: name too long", k->name);
            return -SY_EINVAL;
        }
        path = getenv(file_name);
        if (path && !*path)
            path = NULL;
    }
    if (value && path) {
        sy_errf(err, errlen, "%s and %s are both set: use one of them", k->name, file_name);
        return -SY_ECONFIG;
    }
    if (path) {
        snprintf(label, sizeof(label), "%s", file_name);
        rc = read_value_file(label, path, &from_file, err, errlen);
        if (rc)
            goto out;
        if (*from_file)
            value = from_file;
        else if (k->flags & SY_CONF_REQUIRED) {
            sy_errf(err, errlen, "%s: file '%.200s' is empty", file_name, path);
            rc = -SY_ECONFIG;
            goto out;
        }
    } else {
        snprintf(label, sizeof(label), "%s", k->name);
    }
    if (!value && k->def) {
        /* The table's own default must pass the same checks: a bad one is a bug to report. */
        snprintf(label, sizeof(label), "%s (default)", k->name);
        value = k->def;
    }
    if (!value) {
        if (k->flags & SY_CONF_REQUIRED) {
            sy_errf(err, errlen, "%s: required but not set", k->name);
            rc = -SY_ECONFIG;
        }
        goto out;
    }
    rc = store(k, label, value, dst, err, errlen);

out:
    free(from_file);
    return rc;
}

static void free_rows(const struct sy_conf_key *keys, size_t n, void *dst)
{
    for (size_t i = 0; i < n && keys[i].name; i++) {
        const struct sy_conf_key *k = &keys[i];

        if (k->type == SY_CONF_STR || k->type == SY_CONF_SECRET || k->type == SY_CONF_URL) {
            char *field = (char *)dst + k->offset, *s;

            memcpy(&s, field, sizeof(s));
            free(s);
            s = NULL;
            memcpy(field, &s, sizeof(s));
        }
    }
}

int sy_conf_load(const struct sy_conf_key *keys, void *dst, char *err, size_t errlen)
{
    size_t i;
    int rc = 0;

    if (!keys || !dst) {
        sy_errf(err, errlen, "no settings table");
        return -SY_EINVAL;
    }
    for (i = 0; keys[i].name; i++) {
        rc = load_row(&keys[i], dst, err, errlen);
        if (rc)
            break;
    }
    if (rc) {
        free_rows(keys, i, dst);
        /* The caller learns the cause from err; every failure is a configuration failure. */
        return rc == -SY_ENOMEM ? rc : -SY_ECONFIG;
    }
    return 0;
}

void sy_conf_free(const struct sy_conf_key *keys, void *dst)
{
    if (!keys || !dst)
        return;
    free_rows(keys, SIZE_MAX, dst);
}
