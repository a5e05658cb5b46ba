-- Permissions, groups and who holds what, shaped like Django's auth_permission, auth_group,
-- auth_group_permissions, auth_user_groups and auth_user_user_permissions. The store only
-- answers "which permissions does this user hold"; palisade_core::allowed decides.
--
-- A permission is keyed by its full name (`app.codename`) rather than an integer id: grant
-- rows then hold the name itself, so the per-request lookup of a user's permissions reads
-- the grant tables alone and never joins back to this one.
CREATE TABLE permissions (
    name        TEXT NOT NULL PRIMARY KEY,
    -- The two halves, kept for listing by app (and a Django export); the CHECK keeps them
    -- from drifting from the name that everything else refers to.
    app         TEXT NOT NULL,
    codename    TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    CHECK (name = app || '.' || codename)
) STRICT, WITHOUT ROWID;

CREATE TABLE groups (
    -- AUTOINCREMENT, as for users: a deleted group's id is never handed to a new group, so a
    -- stale reference cannot come to grant the new group's permissions.
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Unique as written (BINARY collation), as Django's case-sensitive `unique=True`.
    name TEXT    NOT NULL UNIQUE CHECK (length(name) > 0)
) STRICT;

CREATE TABLE group_permissions (
    group_id   INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    permission TEXT    NOT NULL REFERENCES permissions (name) ON DELETE CASCADE,
    -- Leads with group_id: the per-request join reaches a group's grants through it.
    PRIMARY KEY (group_id, permission)
) STRICT, WITHOUT ROWID;

-- Lets deleting a permission find its grants without scanning every group's.
CREATE INDEX group_permissions_permission ON group_permissions (permission);

CREATE TABLE user_groups (
    user_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_id INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    -- Leads with user_id: the per-request lookup starts from the user.
    PRIMARY KEY (user_id, group_id)
) STRICT, WITHOUT ROWID;

-- A group's members, and the cascade when a group is deleted.
CREATE INDEX user_groups_group_id ON user_groups (group_id);

CREATE TABLE user_permissions (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    permission TEXT    NOT NULL REFERENCES permissions (name) ON DELETE CASCADE,
    PRIMARY KEY (user_id, permission)
) STRICT, WITHOUT ROWID;

-- Lets deleting a permission find its direct grants without a full scan.
CREATE INDEX user_permissions_permission ON user_permissions (permission);
