-- Notifications: reminder rules, the rolling window of pending occurrences,
-- delivery records, sinks, refresh state and per-layer telemetry.
-- Times are POSIX seconds (REAL); an occurrence is identified by (rule_id, due_at).
CREATE TABLE notify_rules (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL DEFAULT '',
    at          REAL,                 -- one-time reminder: when (UTC)
    rrule       TEXT,                 -- recurring reminder: RFC 5545 RRULE value
    dtstart     TEXT,                 -- its start, naive ISO local time in tz
    tz          TEXT NOT NULL,        -- IANA zone the rule is evaluated in
    enabled     INTEGER NOT NULL DEFAULT 1,
    created_at  REAL NOT NULL,
    CHECK ((at IS NULL) <> (rrule IS NULL))
);

-- The rolling window: replaced as a whole by each reschedule (one transaction).
CREATE TABLE notify_pending (
    rule_id  INTEGER NOT NULL,
    due_at   REAL NOT NULL,
    title    TEXT NOT NULL,
    body     TEXT NOT NULL,
    PRIMARY KEY (rule_id, due_at)
);
CREATE INDEX notify_pending_due ON notify_pending(due_at);

CREATE TABLE notify_sinks (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    kind           TEXT NOT NULL,          -- log | apprise | desktop
    target         TEXT,                   -- the Apprise URL (may hold secrets)
    at_least_once  INTEGER NOT NULL DEFAULT 0,
    created_at     REAL NOT NULL
);

-- One row per occurrence and sink; the primary key is what makes delivery
-- happen at most once per attempt: a second claimer's INSERT is ignored.
CREATE TABLE notify_deliveries (
    rule_id          INTEGER NOT NULL,
    due_at           REAL NOT NULL,
    sink_id          INTEGER NOT NULL,     -- 0: the implicit log sink
    title            TEXT NOT NULL,
    body             TEXT NOT NULL,
    state            TEXT NOT NULL,        -- sending sent failed missed unknown
    attempts         INTEGER NOT NULL DEFAULT 0,
    claimed_until    REAL,                 -- while sending: when the claim is presumed dead
    next_attempt_at  REAL,                 -- while failed: when to try again
    updated_at       REAL NOT NULL,
    error            TEXT,
    PRIMARY KEY (rule_id, due_at, sink_id)
);
CREATE INDEX notify_deliveries_state ON notify_deliveries(state);
CREATE INDEX notify_deliveries_updated ON notify_deliveries(updated_at);

-- One row: what the window was computed from and when.
CREATE TABLE notify_state (
    id                   INTEGER PRIMARY KEY CHECK (id = 1),
    rules_version        INTEGER NOT NULL DEFAULT 0,  -- bumped by every rule change
    window_rules_version INTEGER NOT NULL DEFAULT 0,  -- rules_version the window was built from
    last_reschedule_at   REAL,
    window_end           REAL
);
INSERT INTO notify_state (id) VALUES (1);

CREATE TABLE notify_telemetry (
    layer            TEXT PRIMARY KEY,   -- foreground | background | manual
    executions       INTEGER NOT NULL DEFAULT 0,
    successes        INTEGER NOT NULL DEFAULT 0,
    failures         INTEGER NOT NULL DEFAULT 0,
    skips            INTEGER NOT NULL DEFAULT 0,
    last_success_at  REAL,
    last_failure_at  REAL,
    last_skip_at     REAL,
    last_error       TEXT
);
