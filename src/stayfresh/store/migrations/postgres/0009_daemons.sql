-- mirrors sqlite/0009
-- Every running daemon's heartbeat: who, where, since when, and its last loop.
CREATE TABLE daemons (
    id            TEXT PRIMARY KEY,   -- the runner id: host:pid:start.ident:token
    host          TEXT NOT NULL,
    pid           BIGINT NOT NULL,
    started_at    DOUBLE PRECISION NOT NULL,
    last_seen_at  DOUBLE PRECISION NOT NULL
);
