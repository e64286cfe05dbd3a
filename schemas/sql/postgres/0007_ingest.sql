-- 0007_ingest.sql - sy-ingest: where each source's listing stands, what every listed item became,
-- and the documents themselves (their bytes are in the content-addressed file store, named by
-- sha256).

-- One row per configured source instance, "<kind>:<name>" ("email:inbox"). cursor is what the
-- next poll lists after (email: {"uidvalidity", "uid"}); it advances only after the fetch
-- messages of the items it passes were confirmed by the broker, so a crash between listing and
-- advancing lists the same items again (the fetches deduplicate them) rather than skipping them.
-- fence: the fenced Redis lock of the source's poller (sy_fences, resource "ingest:<source>").
CREATE TABLE ingest_sources (
    source       text PRIMARY KEY CHECK (source ~ '^(email|maximo|sharepoint|whatsapp):[A-Za-z0-9_-]{1,64}$'),
    cursor       jsonb NOT NULL DEFAULT '{}',
    last_poll_at timestamptz,
    last_ok_at   timestamptz,
    last_error   text,
    listed       bigint NOT NULL DEFAULT 0,
    stored       bigint NOT NULL DEFAULT 0,
    duplicates   bigint NOT NULL DEFAULT 0,
    rejected     bigint NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- A document, once per content: the first item that brought these bytes names it.
CREATE TABLE documents (
    id          bigserial PRIMARY KEY,
    sha256      text NOT NULL UNIQUE CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    source      text NOT NULL,
    source_id   text NOT NULL,
    filename    text,
    mime        text NOT NULL,
    size        bigint NOT NULL CHECK (size >= 0),
    language    text NOT NULL CHECK (language IN ('ml', 'en', 'mixed', 'unknown')),
    department  text,           -- NULL: no department's keywords scored enough
    metadata    jsonb NOT NULL DEFAULT '{}',
    source_time timestamptz,    -- when the source says it was made or sent
    ingested_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX documents_department ON documents (department, ingested_at);

-- Every item a source listed, once: (source, source_id) is never fetched twice. status says
-- what it became: stored (it made document_id), duplicate (its bytes were there already, as
-- document_id), rejected (too large, of a refused type, or gone: reason says which; its bytes
-- were not kept), expanded (a container whose parts are items of their own: a mail is
-- "<uidvalidity>/<uid>", its parts "<uidvalidity>/<uid>/<n>").
CREATE TABLE document_items (
    source      text NOT NULL,
    source_id   text NOT NULL,
    status      text NOT NULL CHECK (status IN ('stored', 'duplicate', 'rejected', 'expanded')),
    document_id bigint REFERENCES documents (id),
    reason      text,
    size        bigint,
    seen_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, source_id),
    CHECK ((status IN ('stored', 'duplicate')) = (document_id IS NOT NULL))
);
