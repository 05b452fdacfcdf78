-- relay-store schema, version 5: the register of connected parties
-- (relay/store/src/party.rs). Applied once; see relay/store/src/pg/migrate.rs.

-- One row per party: the organisation number and the party as JSON (name, role,
-- per product the state with its history and the test checks passed).
CREATE TABLE parties (
    org        text PRIMARY KEY,
    doc        text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Caseworkers' declarations (SSBTEK §9.2.9): only the id the case system sends
-- as handlaggare and the date it was signed; never a name or a personnummer.
CREATE TABLE party_declarations (
    org        text NOT NULL,
    caseworker text NOT NULL,
    signed     date NOT NULL,
    PRIMARY KEY (org, caseworker)
);

-- Client certificates each party connected with (no personal data).
CREATE TABLE party_certificates (
    org         text NOT NULL,
    fingerprint text NOT NULL,
    subject     text NOT NULL,
    issuer      text NOT NULL,
    not_after   timestamptz NOT NULL,
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    PRIMARY KEY (org, fingerprint)
);
