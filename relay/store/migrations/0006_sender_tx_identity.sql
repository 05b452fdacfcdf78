-- relay-store schema, version 6: a message is identified by (sender, tx.id).
-- The same tx.id from two organisations is two messages; the same (sender,
-- tx.id) again is a duplicate, decided by this unique key in the INSERT that
-- makes the message visible (ON CONFLICT), never by a read before it. See
-- relay/mailbox/src/rules.rs and docs/high-availability.md.

-- The sender is part of the key: '' for a label that names none (rows stored
-- before version 2 and messages without `from`).
UPDATE mailbox_messages SET sender = '' WHERE sender IS NULL;
ALTER TABLE mailbox_messages ALTER COLUMN sender SET DEFAULT '';
ALTER TABLE mailbox_messages ALTER COLUMN sender SET NOT NULL;

-- The local id (the store's own id, given by the put) becomes the row's key;
-- the tx.id alone is no longer unique.
ALTER TABLE mailbox_messages DROP CONSTRAINT mailbox_messages_pkey;
ALTER TABLE mailbox_messages DROP CONSTRAINT mailbox_messages_local_id_key;
ALTER TABLE mailbox_messages ADD PRIMARY KEY (local_id);
ALTER TABLE mailbox_messages ADD CONSTRAINT mailbox_messages_sender_tx UNIQUE (sender, tx_id);
-- The delivery service finds a message by its outbox and tx.id.
CREATE INDEX mailbox_messages_outbox_tx ON mailbox_messages (outbox, tx_id);
