-- relay-store schema, version 1. Applied once by the first node that starts;
-- see relay/store/src/pg/migrate.rs.

-- One row per message data key, wrapped under a key-encryption key held outside
-- the database. Deleting this row is the shredding: chunks and the message row go
-- with it (ON DELETE CASCADE), and without the key the ciphertext is useless.
CREATE TABLE mailbox_keys (
    local_id   uuid PRIMARY KEY,
    kek_id     bigint NOT NULL,
    wrapped    bytea NOT NULL
);

-- Sealed body chunks: AES-256-GCM, 64 KiB of plaintext (+ 16-byte tag) a row.
CREATE TABLE mailbox_chunks (
    local_id   uuid NOT NULL REFERENCES mailbox_keys (local_id) ON DELETE CASCADE,
    idx        integer NOT NULL,
    data       bytea NOT NULL,
    PRIMARY KEY (local_id, idx)
);
ALTER TABLE mailbox_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

-- The envelope: plaintext on purpose and nothing personal (ids, the recipient
-- organisation's address, states, times, sizes). The label is sealed.
CREATE TABLE mailbox_messages (
    tx_id            text PRIMARY KEY,
    local_id         uuid NOT NULL UNIQUE REFERENCES mailbox_keys (local_id) ON DELETE CASCADE,
    outbox           text NOT NULL,
    transfer_type    text NOT NULL,
    state            text NOT NULL,
    acknowledged     boolean NOT NULL,
    processing       boolean NOT NULL,
    arrival          timestamptz NOT NULL,
    state_timestamp  timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    body_bytes       bigint NOT NULL,
    chunks           integer NOT NULL,
    nonce_prefix     bytea NOT NULL,
    fetch_token      uuid,
    label            bytea NOT NULL
);
CREATE INDEX mailbox_messages_outbox ON mailbox_messages (outbox, state);
CREATE INDEX mailbox_messages_expiry ON mailbox_messages (expires_at);
CREATE INDEX mailbox_messages_processing ON mailbox_messages (arrival) WHERE processing;

-- Operator decisions.
CREATE TABLE suspensions (
    org        text NOT NULL,
    scope      text NOT NULL,
    since      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org, scope)
);
CREATE TABLE withdrawals (
    provider      text NOT NULL,
    municipality  text NOT NULL,
    since         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, municipality)
);
CREATE TABLE maintenance (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    reason     text NOT NULL,
    since      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE maintenance_windows (
    id         uuid PRIMARY KEY,
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    reason     text NOT NULL
);

-- Duplicate detection: (sender, tx.id) seen, until it no longer counts.
CREATE TABLE seen_tx (
    sender      text NOT NULL,
    tx_id       text NOT NULL,
    first_seen  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (sender, tx_id)
);
CREATE INDEX seen_tx_expiry ON seen_tx (expires_at);

-- ELT: one token bucket per vendor, decided by one statement on the database's clock.
CREATE TABLE elt_rate (
    vendor      text PRIMARY KEY,
    tokens      double precision NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- ELT: one row per attempt of a report, per key that identifies it.
CREATE TABLE elt_attempts (
    vendor   text NOT NULL,
    key      text NOT NULL,
    at       timestamptz NOT NULL
);
CREATE INDEX elt_attempts_key ON elt_attempts (vendor, key, at);
CREATE INDEX elt_attempts_at ON elt_attempts (at);
