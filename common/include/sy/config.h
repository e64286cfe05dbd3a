/* config.h - settings from the environment (secrets also from NAME_FILE), checked once at start. */
#ifndef SY_CONFIG_H
#define SY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

enum sy_conf_type {
    SY_CONF_STR,    /* char * (owned by the loaded struct, freed by sy_conf_free) */
    SY_CONF_SECRET, /* char *; also read from NAME_FILE; registered with log redaction */
    SY_CONF_URL,    /* char *; must parse as scheme://...; its password is redacted in logs */
    SY_CONF_INT,    /* long long, decimal, within [min, max] */
    SY_CONF_BOOL,   /* bool: 1/0, true/false, yes/no, on/off (any case) */
    SY_CONF_MS,     /* long long milliseconds: "250ms", "5s", "2m", "1h", "1d" or bare ms */
};

#define SY_CONF_REQUIRED 0x1u

/* One row of a settings table, Redis/Fluent Bit style: the table is the documentation. */
struct sy_conf_key {
    const char *name; /* environment variable, e.g. "SY_PREFETCH" */
    enum sy_conf_type type;
    const char *def;    /* default as text, or NULL for none */
    long long min, max; /* INT and MS bounds, inclusive; both 0: unbounded (MS: >= 0) */
    size_t offset;      /* offsetof the field in the destination struct */
    unsigned flags;
    const char *help;
};

/* Loads every row of `keys` (terminated by a row with name NULL) from the environment into
 * `dst`. NAME_FILE (for SECRET and URL rows) names a file whose content (trailing newline cut,
 * at most 64 KiB) is the value; setting both NAME and NAME_FILE is an error. On the first bad
 * or missing required key returns -SY_ECONFIG with one line naming the key in err, e.g.
 * "SY_PREFETCH: expected an integer from 1 to 2000, got 'abc'". On error, what was loaded is
 * freed. An empty variable counts as unset. Defaults pass the same checks (a bad one is
 * reported as "SY_X (default): ..."). The values of SECRET rows and the passwords of URL rows
 * are registered with sy_log_add_secret, and no error text ever quotes a SECRET or URL value;
 * other bad values are quoted, cut to 64 characters. */
int sy_conf_load(const struct sy_conf_key *keys, void *dst, char *err, size_t errlen);

/* Frees the strings sy_conf_load put into dst. Accepts a dst that was never loaded (zeroed). */
void sy_conf_free(const struct sy_conf_key *keys, void *dst);

/* Parses a duration as SY_CONF_MS does. 0 or -SY_EINVAL. */
int sy_conf_parse_ms(const char *s, long long *out);

/* Reads a whole file of at most `max` bytes into a NUL-terminated malloc'd buffer.
 * 0, -SY_EIO (errno-based), or -SY_ETOOBIG. */
int sy_read_file(const char *path, size_t max, char **out, size_t *len);

#endif
