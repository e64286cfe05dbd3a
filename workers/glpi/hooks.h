/* hooks.h - the GLPI settings of Chatwoot hooks, in PostgreSQL (glpi_hooks), read by sy-glpi
 * and written by `syctl glpi hook`. */
#ifndef GLPI_HOOKS_H
#define GLPI_HOOKS_H

#include <stddef.h>

#include "glpi/client.h"

struct sy_pg;

/* Reads hook `id` into *h (cleared first; glpi_hook_clear frees it). 0, -SY_ENOTFOUND, or a
 * database error with the reason in err. */
int glpi_hook_load(struct sy_pg *pg, const char *id, struct glpi_hook *h, char *err, size_t errlen);

/* Checks settings before they are stored: the id's characters, an https:// api_url (http://
 * only with allow_http, and only to a loopback host) ending in apirest.php, the ticket type, the
 * ids. 0 or -SY_EINVAL with the field and the reason in err. */
int glpi_hook_check(const struct glpi_hook *h, char *err, size_t errlen);

/* Adds hook h, or replaces the settings of the hook with its id. 0 or a database error. */
int glpi_hook_save(struct sy_pg *pg, const struct glpi_hook *h, char *err, size_t errlen);

#endif
