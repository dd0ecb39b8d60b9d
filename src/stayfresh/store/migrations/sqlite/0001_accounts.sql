-- Accounts, their token sets and refresh metrics.
CREATE TABLE accounts (
    name            TEXT PRIMARY KEY,
    provider        TEXT NOT NULL,
    config          TEXT NOT NULL,          -- JSON, no secrets except client secrets
    access_token    TEXT,
    refresh_token   TEXT,
    token_type      TEXT NOT NULL DEFAULT 'Bearer',
    scope           TEXT,
    expires_at      REAL,
    obtained_at     REAL,
    version         INTEGER NOT NULL DEFAULT 1,
    status          TEXT NOT NULL DEFAULT 'ok',
    status_message  TEXT,
    jit_refreshes        INTEGER NOT NULL DEFAULT 0,
    background_refreshes INTEGER NOT NULL DEFAULT 0,
    failures             INTEGER NOT NULL DEFAULT 0,
    last_refresh_at      REAL,
    last_failure_at      REAL,
    last_error           TEXT,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL
);

-- Recent successful refresh latencies, bounded per account by the store.
CREATE TABLE refresh_latencies (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account     TEXT NOT NULL REFERENCES accounts(name) ON DELETE CASCADE,
    at          REAL NOT NULL,
    latency_ms  REAL NOT NULL
);
CREATE INDEX refresh_latencies_account ON refresh_latencies(account, id);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
