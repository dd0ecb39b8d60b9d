-- Refresh intents: committed before a refresh request is sent, so that a disk too
-- full to record the result fails before the provider can rotate the refresh token.
-- At most one per account; the commit that stores the result (or the failure) ends it.
-- Owner and expiry let a later single flight tell a live refresher from a dead one.
CREATE TABLE refresh_intents (
    account      TEXT PRIMARY KEY REFERENCES accounts(name) ON DELETE CASCADE,
    owner        TEXT NOT NULL,      -- host:pid of the refreshing process
    fingerprint  TEXT NOT NULL,      -- SHA-256 prefix of the refresh token being spent
    version      INTEGER NOT NULL,   -- the account version the refresh started from
    started_at   REAL NOT NULL,
    expires_at   REAL NOT NULL       -- after this, the owner is presumed dead
);
