-- The public status feed (relay_store::StatusBoard): component states, incidents
-- with their updates, and maintenance windows agencies announce through their
-- adapters. Nothing personal: ids, times, fixed texts, operators' public texts.

-- One row per component (product × agency, e.g. "ssbtek-af").
CREATE TABLE status_components (
    id               text PRIMARY KEY,
    status           text NOT NULL,
    updated_at       timestamptz NOT NULL,   -- when the status last changed
    last_success_at  timestamptz,
    last_failure_at  timestamptz
);

CREATE TABLE status_incidents (
    id           uuid PRIMARY KEY,
    auto_key     text,                      -- "disturbance" for one the relay opened
    name_sv      text NOT NULL,
    name_en      text NOT NULL,
    status       text NOT NULL,             -- investigating | identified | monitoring | resolved
    impact       text NOT NULL,             -- none | minor | major | critical
    components   text[] NOT NULL,
    started_at   timestamptz NOT NULL,
    resolved_at  timestamptz,
    updated_at   timestamptz NOT NULL
);
-- At most one unresolved incident per automatic key, whatever node opens it.
CREATE UNIQUE INDEX status_incidents_one_open ON status_incidents (auto_key)
    WHERE resolved_at IS NULL AND auto_key IS NOT NULL;

CREATE TABLE status_incident_updates (
    id          uuid PRIMARY KEY,
    incident    uuid NOT NULL REFERENCES status_incidents (id) ON DELETE CASCADE,
    status      text NOT NULL,
    text_sv     text NOT NULL,
    text_en     text NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX status_incident_updates_incident ON status_incident_updates (incident, created_at);

-- Maintenance an agency announced for its own base service (provider contract,
-- DescribeReply.planned_maintenance).
CREATE TABLE status_announced (
    provider    text NOT NULL,
    id          text NOT NULL,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    text_sv     text NOT NULL,
    text_en     text NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (provider, id)
);
