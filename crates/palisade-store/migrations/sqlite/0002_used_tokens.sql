-- Single-use account tokens (activation, password reset) that have been used. A token's
-- random id goes in once; the primary key makes a second use (or a concurrent one) fail.
-- Rows are only needed until the token itself expires, then swept.
CREATE TABLE used_tokens (
    id         BLOB    PRIMARY KEY CHECK (length(id) = 16),
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX used_tokens_expires_at ON used_tokens (expires_at);
