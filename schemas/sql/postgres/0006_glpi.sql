-- 0006_glpi.sql - sy-glpi: per-hook GLPI settings (`syctl glpi hook add|list|remove`) and the
-- links from Chatwoot's contacts, conversations and messages to what the worker made of them
-- in GLPI. Every link is written under the fenced Redis mutex of its contact or conversation,
-- and the fence is recorded in sy_fences in the same transaction (sy_pg_fence), so a holder
-- whose lease ran out can no longer write.

-- One row per Chatwoot webhook mirrored into a GLPI. hook_id is the id in the webhook's URL
-- (/webhooks/chatwoot/<hook_id>). user_token and webhook_secret are secrets: syctl never prints
-- them and the worker never logs them. allow_http admits an http:// api_url (tests only).
CREATE TABLE glpi_hooks (
    hook_id         text PRIMARY KEY CHECK (hook_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    api_url         text NOT NULL CHECK (api_url ~ '^https?://'),
    app_token       text,
    user_token      text NOT NULL CHECK (length(user_token) BETWEEN 1 AND 512),
    entity_id       integer NOT NULL DEFAULT 0 CHECK (entity_id >= 0),
    sync_type       text NOT NULL DEFAULT 'user' CHECK (sync_type IN ('user', 'contact')),
    ticket_type     integer NOT NULL DEFAULT 1 CHECK (ticket_type IN (1, 2)),
    category_id     integer CHECK (category_id > 0),
    default_user_id integer CHECK (default_user_id > 0),
    webhook_secret  text,
    allow_http      boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- A Chatwoot contact's GLPI person: a User or a Contact (the hook's sync_type). glpi_id NULL
-- with create_at set: a create was sent and its answer never came, so the next holder searches
-- for the marker before sending another. created: the worker made it (and so keeps it up to
-- date); a person found by email or phone belongs to GLPI and is only linked.
CREATE TABLE glpi_people (
    hook_id    text NOT NULL REFERENCES glpi_hooks (hook_id) ON DELETE CASCADE,
    contact_id bigint NOT NULL,
    itemtype   text NOT NULL CHECK (itemtype IN ('User', 'Contact')),
    glpi_id    bigint,
    created    boolean NOT NULL DEFAULT false,
    create_at  timestamptz,
    name       text,
    email      text,
    phone      text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (hook_id, contact_id)
);

-- A Chatwoot conversation (its per-account display id) and its ticket. last_message_id: the
-- newest message mirrored as a followup. status and status_at: the conversation's status as of
-- the newest conversation_status_changed applied (its timestamp), so an older one that arrives
-- late changes nothing; solved: the ticket was solved for that resolution; solve_marker: the
-- marker of a resolution followup that was sent and whose answer may have been lost.
CREATE TABLE glpi_tickets (
    hook_id         text NOT NULL REFERENCES glpi_hooks (hook_id) ON DELETE CASCADE,
    conversation_id bigint NOT NULL,
    contact_id      bigint,
    ticket_id       bigint,
    create_at       timestamptz,
    last_message_id bigint NOT NULL DEFAULT 0,
    status          text,
    status_at       double precision NOT NULL DEFAULT 0,
    solved          boolean NOT NULL DEFAULT false,
    solve_marker    text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (hook_id, conversation_id)
);

-- Every message seen for a conversation, kept until it is a followup (followup_id), so messages
-- that arrive out of order or twice are mirrored once each, oldest first. post_at: a followup
-- was sent and its answer may have been lost.
CREATE TABLE glpi_messages (
    hook_id         text NOT NULL,
    conversation_id bigint NOT NULL,
    message_id      bigint NOT NULL,
    content         text NOT NULL,
    private         boolean NOT NULL DEFAULT false,
    sender          text,
    sent_at         timestamptz NOT NULL,
    followup_id     bigint,
    post_at         timestamptz,
    PRIMARY KEY (hook_id, conversation_id, message_id),
    FOREIGN KEY (hook_id, conversation_id) REFERENCES glpi_tickets ON DELETE CASCADE
);
CREATE INDEX glpi_messages_due ON glpi_messages (hook_id, conversation_id, message_id)
    WHERE followup_id IS NULL;
