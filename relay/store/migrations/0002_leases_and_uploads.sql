-- relay-store schema, version 2: work in progress scoped by node, uploads that
-- hold no connection, duplicates and quotas per sender. See
-- relay/store/src/pg/migrate.rs and docs/high-availability.md.

-- A put writes its key and chunks in short statements before the message row
-- makes it visible. A key without a message row is an upload in progress, or the
-- remains of one whose node died: the sweeper deletes those older than the
-- longest upload (chunks follow by cascade).
ALTER TABLE mailbox_keys ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX mailbox_keys_created ON mailbox_keys (created_at);

-- Who processes an accepted message, and until when that claim holds. The node
-- renews its claims with a heartbeat; another node takes over a claim whose
-- lease has run out, never a live one.
ALTER TABLE mailbox_messages ADD COLUMN node text;
ALTER TABLE mailbox_messages ADD COLUMN lease_until timestamptz;
CREATE INDEX mailbox_messages_lease ON mailbox_messages (lease_until) WHERE processing;

-- The sending organisation (an organisation number, not personal data), for
-- the per-sender quota and the per-sender duplicate key. NULL for messages
-- stored before version 2 and for messages the relay writes itself.
ALTER TABLE mailbox_messages ADD COLUMN sender text;
CREATE INDEX mailbox_messages_sender ON mailbox_messages (sender) WHERE sender IS NOT NULL;
