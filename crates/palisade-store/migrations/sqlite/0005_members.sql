-- The "members" example app (the spec's authorization demo): a list of people that users
-- holding members.* permissions add, approve and delete. Rows are data, not accounts.
CREATE TABLE members (
    -- AUTOINCREMENT, as for users and groups: a deleted member's id is never handed out
    -- again, so a stale approve or delete link cannot act on a newer member.
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    -- palisade_core::MemberName decides what a name is; this only backs it up.
    name        TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 150),
    email       TEXT,
    approved    INTEGER NOT NULL DEFAULT 0 CHECK (approved IN (0, 1)),
    -- SET NULL: deleting an account must not delete (or block on) the members it added or
    -- approved; the record of the approval itself (approved, approved_at) stands.
    added_by    INTEGER REFERENCES users (id) ON DELETE SET NULL,
    added_at    INTEGER NOT NULL,
    approved_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
    approved_at INTEGER,
    -- Keyed on approved_at rather than approved_by, which a deleted account clears.
    CHECK (approved = (approved_at IS NOT NULL)),
    CHECK (approved OR approved_by IS NULL)
) STRICT;

-- Let deleting an account find the rows to SET NULL without scanning the table.
CREATE INDEX members_added_by ON members (added_by);
CREATE INDEX members_approved_by ON members (approved_by);
