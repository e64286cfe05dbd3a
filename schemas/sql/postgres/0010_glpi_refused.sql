-- 0010_glpi_refused.sql - sy-glpi: a message whose followup GLPI refused (a 4xx about its data,
-- e.g. on a ticket closed in GLPI) is recorded as such instead of blocking every later message
-- of its conversation. refused_at: when GLPI last refused it; refused_reason: GLPI's HTTP
-- status, error code and message. Such a message is sent again only when its own
-- message_created comes again (a replay from the dead-letter queue once GLPI was fixed); a
-- followup made later clears both.
ALTER TABLE glpi_messages
    ADD COLUMN refused_at     timestamptz,
    ADD COLUMN refused_reason text;

