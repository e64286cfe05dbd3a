/* settings.h - reading one source's entry of ingest.yaml, for the connectors: text with
 * ${NAME} and ${NAME:-default} expanded, secrets from the variable <name>_env names or the first
 * line of the file <name>_file names, and true/false flags. Errors are -SY_ECONFIG with
 * "file:line: <key>.<field>: why" in err (key: "email.inbox"); secrets are registered with the
 * log's redaction before anything could print them, and are refused when they hold a control
 * character, since they go into header lines and logins. */
#ifndef INGEST_SETTINGS_H
#define INGEST_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>

struct sy_doc;
struct sy_node;

#define SETTING_MAX 2048 /* bytes of a value, expanded */
#define SECRET_MAX  4096 /* bytes of a secret */

/* The text of field in map m into *out (malloc'd). Absent: -SY_ECONFIG when required, else 0
 * with *out NULL. */
int setting_text(const struct sy_doc *doc, const struct sy_node *m, const char *key,
                 const char *field, bool required, char **out, char *err, size_t errlen);
/* The secret `name` (e.g. "password": password_env or password_file, exactly one of them; a
 * relative file is taken from dir) into *out (malloc'd; free with setting_secret_free). */
int setting_secret(const struct sy_doc *doc, const struct sy_node *m, const char *dir,
                   const char *key, const char *name, char **out, char *err, size_t errlen);
void setting_secret_free(char *s); /* wipes, then frees; accepts NULL */
/* The flag field of m (true/false, yes/no) into *out; absent leaves *out as it is. */
int setting_bool(const struct sy_doc *doc, const struct sy_node *m, const char *key,
                 const char *field, bool *out, char *err, size_t errlen);

#endif
