/* webhooks.h - Chatwoot and WhatsApp Cloud API webhooks: their settings file
 * (deploy/config/webhooks.yaml), signature checks, delivery dedup, and the messages they
 * become. */
#ifndef GW_WEBHOOKS_H
#define GW_WEBHOOKS_H

#include <stddef.h>

#include "http.h"

struct gw_webhooks;

/* Loads the settings file; secrets are named there by environment variable (…_env) or file
 * (…_file), never written in it. NULL with "path:line: why" in err. */
struct gw_webhooks *gw_webhooks_load(const char *path, char *err, size_t errlen);
void gw_webhooks_destroy(struct gw_webhooks *h);

/* Routes (ctx is the struct gw):
 *   POST /webhooks/chatwoot/{hook_id}   gw_chatwoot_event
 *   GET  /webhooks/whatsapp             gw_whatsapp_verify
 *   POST /webhooks/whatsapp             gw_whatsapp_event */
void gw_chatwoot_event(void *ctx, const struct gw_request *rq, struct gw_response *rs);
void gw_whatsapp_verify(void *ctx, const struct gw_request *rq, struct gw_response *rs);
void gw_whatsapp_event(void *ctx, const struct gw_request *rq, struct gw_response *rs);

#endif
