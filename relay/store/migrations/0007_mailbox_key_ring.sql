-- The mailbox key ring (issue 28): which key-encryption key ids exist, which
-- one wraps new messages (exactly one `active`), and which ids each node holds
-- in its key file. The keys themselves never enter the database: only a
-- fingerprint (16 bytes of SHA-256 over the key) that tells two keys apart.
-- Each message's key id is `mailbox_keys.kek_id`.
CREATE TABLE mailbox_kek (
    kek_id      bigint PRIMARY KEY,
    fingerprint text NOT NULL,
    state       text NOT NULL CHECK (state IN ('registered', 'active', 'retired')),
    added_at    timestamptz NOT NULL DEFAULT now(),
    changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX mailbox_kek_one_active ON mailbox_kek ((true)) WHERE state = 'active';

CREATE TABLE mailbox_kek_nodes (
    node        text PRIMARY KEY,
    held        bigint[] NOT NULL,
    wraps_with  bigint NOT NULL,
    seen_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mailbox_keys_by_kek ON mailbox_keys (kek_id);
