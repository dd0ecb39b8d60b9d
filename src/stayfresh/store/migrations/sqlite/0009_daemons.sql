-- Every running daemon's heartbeat: who, where, since when, and its last loop.
CREATE TABLE daemons (
    id            TEXT PRIMARY KEY,   -- the runner id: host:pid:start.ident:token
    host          TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    started_at    REAL NOT NULL,
    last_seen_at  REAL NOT NULL
);
