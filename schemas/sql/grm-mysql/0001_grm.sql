-- 0001_grm.sql - the reference legacy GRM: a stand-in for the PHP/MySQL grievance system a
-- site already runs, which sy-grievance copies grievances into and reads statuses back from.
-- Real sites keep their own GRM schema and describe it in deploy/config/grm.yaml; this one is
-- what the default grm.yaml describes, and what the tests and `./fleet up` run against
-- (MariaDB or MySQL, database grm). Written to be applied any number of times.

CREATE TABLE IF NOT EXISTS grievances (
    id                    BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    -- Our grievance_id: the key sy-grievance upserts by.
    chatbot_ref           VARCHAR(64) NOT NULL,
    complainant_name      VARCHAR(200) NULL,
    contact_phone         VARCHAR(20) NULL,
    grievance_description TEXT NULL,
    location              VARCHAR(500) NULL,
    project_type          VARCHAR(100) NULL,
    -- The GRM's own words for a status (grm.yaml's status map), set by both sides.
    status                VARCHAR(32) NOT NULL,
    -- A site's own field, filled from a grievance's custom data (grm.yaml's custom map).
    ward_number           VARCHAR(16) NULL,
    submitted_at          DATETIME NULL,
    created_at            DATETIME(6) NULL DEFAULT CURRENT_TIMESTAMP(6),
    -- Moves whenever a row changes, whoever changes it: the pull reads changes after it.
    updated_at            DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
                          ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    UNIQUE KEY grievances_chatbot_ref (chatbot_ref),
    -- The pull's order and watermark: (updated_at, chatbot_ref).
    KEY grievances_updated (updated_at, chatbot_ref)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
