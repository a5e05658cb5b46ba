-- Accounts, sessions and the audit log. Times are INTEGER unix seconds (UTC). Tables are
-- STRICT so a wrongly typed value is an error instead of being silently stored.

-- Everything a Django auth_user row holds, so `palisade import django` loses nothing.
CREATE TABLE users (
    -- AUTOINCREMENT: an id is never reused, so a stale reference (an old session row, an
    -- audit entry) can never come to point at a different, newer account.
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    username           TEXT    NOT NULL,
    -- Case-folded NFKC form (palisade_core::Username::canonical): uniqueness lives here.
    username_canonical TEXT    NOT NULL UNIQUE,
    -- NULL when the account has no address (Django allows a blank e-mail).
    email              TEXT,
    email_canonical    TEXT,
    -- Encoded hash (PHC or Django format), opaque to the database.
    password_hash      TEXT    NOT NULL,
    first_name         TEXT    NOT NULL DEFAULT '',
    last_name          TEXT    NOT NULL DEFAULT '',
    is_active          INTEGER NOT NULL CHECK (is_active IN (0, 1)),
    is_staff           INTEGER NOT NULL CHECK (is_staff IN (0, 1)),
    is_superuser       INTEGER NOT NULL CHECK (is_superuser IN (0, 1)),
    date_joined        INTEGER NOT NULL,
    last_login         INTEGER,
    CHECK ((email IS NULL) = (email_canonical IS NULL))
) STRICT;

-- Login by e-mail and "one account per address" checks; not UNIQUE, as in Django.
CREATE INDEX users_email_canonical ON users (email_canonical);

-- key_hash is SHA-256 of the cookie value: the cookie itself is never stored.
CREATE TABLE sessions (
    key_hash    BLOB    PRIMARY KEY CHECK (length(key_hash) = 32),
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    ip          TEXT,
    user_agent  TEXT,
    csrf_secret BLOB    NOT NULL CHECK (length(csrf_secret) = 32)
) STRICT, WITHOUT ROWID;

CREATE INDEX sessions_user_id ON sessions (user_id);
-- Expiry sweeps delete by either limit.
CREATE INDEX sessions_last_seen ON sessions (last_seen);
CREATE INDEX sessions_created_at ON sessions (created_at);

-- Hash-chained, append-only (rule: palisade_core::audit). seq is the chain position,
-- 1, 2, 3… with no gaps; as the INTEGER PRIMARY KEY it cannot repeat.
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    prev_hash BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash      BLOB    NOT NULL CHECK (length(hash) = 32),
    at        INTEGER NOT NULL,
    actor     TEXT,
    action    TEXT    NOT NULL,
    target    TEXT,
    -- JSON text; the hash covers its canonical form, not these bytes.
    detail    TEXT    NOT NULL
) STRICT;
