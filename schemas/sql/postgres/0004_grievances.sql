-- 0004_grievances.sql - the grievance database, the system of record for grievances: the
-- citizens who raise them (users), the grievances, their attachments and every status they
-- went through. sy-grievance writes these tables from grievance.* messages; sy-gateway's REST
-- API reads them (workers/gateway/api.h). Ids are natural keys chosen by the client, so a
-- message delivered twice finds its row instead of making a second one.

-- A citizen, known by the phone number the chatbot talks to (E.164: '+', then 7..15 digits).
CREATE TABLE users (
    phone_number text PRIMARY KEY CHECK (phone_number ~ '^\+[1-9][0-9]{6,14}$'),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- The five states a grievance goes through; the legacy GRM's own words come from its mapping
-- file (deploy/config/grm.yaml), never from here.
CREATE TABLE grievances (
    grievance_id text PRIMARY KEY CHECK (grievance_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    phone_number text NOT NULL REFERENCES users (phone_number),
    project_type text NOT NULL CHECK (length(project_type) BETWEEN 1 AND 100),
    description  text NOT NULL CHECK (length(description) BETWEEN 1 AND 16000),
    location     text CHECK (length(location) <= 500),
    status       text NOT NULL DEFAULT 'submitted'
                 CHECK (status IN ('pending', 'submitted', 'under_evaluation', 'resolved',
                                   'denied')),
    -- Fields a site adds to its grievances (mapped to GRM columns by grm.yaml).
    custom       jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(custom) = 'object'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX grievances_phone_number ON grievances (phone_number, created_at DESC);
CREATE INDEX grievances_updated_at ON grievances (updated_at);

-- An attachment's content lives in the file store under its SHA-256 (hex); this row says what
-- it is and whose it is. Two attachments with the same bytes share one stored file.
CREATE TABLE file_attachments (
    file_id      text PRIMARY KEY CHECK (file_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    grievance_id text NOT NULL REFERENCES grievances (grievance_id),
    file_type    text NOT NULL CHECK (length(file_type) BETWEEN 1 AND 127),
    file_name    text CHECK (length(file_name) BETWEEN 1 AND 255),
    size         bigint NOT NULL CHECK (size >= 0),
    sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX file_attachments_grievance ON file_attachments (grievance_id);

-- Every status a grievance entered, with who set it: an API principal ("apikey:<id>",
-- "jwt:<sub>"), "grm" for changes pulled from the legacy system, or an operator.
CREATE TABLE status_history (
    id           bigserial PRIMARY KEY,
    grievance_id text NOT NULL REFERENCES grievances (grievance_id),
    status       text NOT NULL
                 CHECK (status IN ('pending', 'submitted', 'under_evaluation', 'resolved',
                                   'denied')),
    notes        text CHECK (length(notes) <= 4000),
    created_by   text NOT NULL CHECK (length(created_by) BETWEEN 1 AND 200),
    at           timestamptz NOT NULL DEFAULT now(),
    -- The message that made the change: a redelivery finds its row instead of adding one.
    message_id   text UNIQUE
);
CREATE INDEX status_history_grievance ON status_history (grievance_id, at DESC, id DESC);
