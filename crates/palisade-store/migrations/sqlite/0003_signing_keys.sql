-- Secrets every node of a deployment shares (token-signing keys first), encrypted by the
-- server under a master key that is not in the database (envelope encryption): a copy of
-- this table alone opens nothing. Keys are never deleted, only retired, so a listing shows
-- what signed what.
--
-- A rowid table on purpose: the rowid records insertion order, which breaks ties between
-- keys made within the same second when the newest key is picked.
CREATE TABLE signing_keys (
    purpose     TEXT    NOT NULL,
    kid         TEXT    NOT NULL,
    -- The record's data key, as a Fernet token under the master key.
    wrapped_key TEXT    NOT NULL,
    -- The secret (bound to purpose and kid), as a Fernet token under the data key.
    ciphertext  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    -- NULL while the key signs or verifies; set once, when it is retired.
    retired_at  INTEGER,
    PRIMARY KEY (purpose, kid)
) STRICT;

CREATE INDEX signing_keys_purpose_created ON signing_keys (purpose, created_at);
