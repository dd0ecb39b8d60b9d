-- The SQLite schema stayfresh's migrations must produce, written independently of them.
-- A new migration changes this file by hand too: tests/test_store_schema.py compares a
-- database built from this file with one built by the migrations, structure by structure.

CREATE TABLE accounts (
    name            TEXT PRIMARY KEY,
    provider        TEXT NOT NULL,
    config          TEXT NOT NULL,
    access_token    TEXT,
    refresh_token   TEXT,
    token_type      TEXT NOT NULL DEFAULT 'Bearer',
    scope           TEXT,
    expires_at      REAL,
    obtained_at     REAL,
    version         INTEGER NOT NULL DEFAULT 1,
    status          TEXT NOT NULL DEFAULT 'ok',
    status_message  TEXT,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL
);

CREATE TABLE library_items (
    account        TEXT NOT NULL,
    item_id        TEXT NOT NULL,
    title          TEXT,
    authors        TEXT,
    data           TEXT NOT NULL,
    digest         TEXT NOT NULL,
    seen_sync      TEXT,
    first_seen_at  REAL NOT NULL,
    updated_at     REAL NOT NULL,
    removed_at     REAL,
    download_path  TEXT,
    download_size  INTEGER,
    downloaded_at  REAL,
    PRIMARY KEY (account, item_id)
);

CREATE TABLE library_syncs (
    account      TEXT PRIMARY KEY,
    sync_id      TEXT NOT NULL,
    source       TEXT NOT NULL,
    state        TEXT NOT NULL,
    next_page    INTEGER NOT NULL,
    cursor       TEXT,
    total_items  INTEGER,
    total_pages  INTEGER,
    pages        INTEGER NOT NULL DEFAULT 0,
    items_seen   INTEGER NOT NULL DEFAULT 0,
    added        INTEGER NOT NULL DEFAULT 0,
    updated      INTEGER NOT NULL DEFAULT 0,
    removed      INTEGER NOT NULL DEFAULT 0,
    started_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    finished_at  REAL
);

CREATE TABLE notify_deliveries (
    rule_id          INTEGER NOT NULL,
    due_at           REAL NOT NULL,
    sink_id          INTEGER NOT NULL,
    title            TEXT NOT NULL,
    body             TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    claimed_until    REAL,
    next_attempt_at  REAL,
    updated_at       REAL NOT NULL,
    error            TEXT,
    PRIMARY KEY (rule_id, due_at, sink_id)
);
CREATE INDEX notify_deliveries_state ON notify_deliveries(state);
CREATE INDEX notify_deliveries_updated ON notify_deliveries(updated_at);

CREATE TABLE notify_pending (
    rule_id  INTEGER NOT NULL,
    due_at   REAL NOT NULL,
    title    TEXT NOT NULL,
    body     TEXT NOT NULL,
    PRIMARY KEY (rule_id, due_at)
);
CREATE INDEX notify_pending_due ON notify_pending(due_at);

CREATE TABLE notify_rules (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL DEFAULT '',
    at          REAL,
    rrule       TEXT,
    dtstart     TEXT,
    tz          TEXT NOT NULL,
    enabled     INTEGER NOT NULL DEFAULT 1,
    created_at  REAL NOT NULL,
    snoozed_until REAL,
    CHECK ((at IS NULL) <> (rrule IS NULL))
);

CREATE TABLE notify_sinks (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    kind           TEXT NOT NULL,
    target         TEXT,
    at_least_once  INTEGER NOT NULL DEFAULT 0,
    created_at     REAL NOT NULL
);

CREATE TABLE notify_state (
    id                   INTEGER PRIMARY KEY CHECK (id = 1),
    rules_version        INTEGER NOT NULL DEFAULT 0,
    window_rules_version INTEGER NOT NULL DEFAULT 0,
    last_reschedule_at   REAL,
    window_end           REAL
);


CREATE TABLE refresh_intents (
    account      TEXT PRIMARY KEY REFERENCES accounts(name) ON DELETE CASCADE,
    owner        TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    version      INTEGER NOT NULL,
    started_at   REAL NOT NULL,
    expires_at   REAL NOT NULL
);


CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE work (
    id              TEXT PRIMARY KEY,
    name            TEXT,
    worker          TEXT NOT NULL,
    input           TEXT NOT NULL DEFAULT '{}',
    periodic        INTEGER NOT NULL DEFAULT 0,
    interval        REAL,
    flex            REAL,
    constraints     TEXT NOT NULL DEFAULT '{}',
    backoff_policy  TEXT NOT NULL DEFAULT 'exponential',
    backoff_delay   REAL NOT NULL DEFAULT 30,
    timeout         REAL NOT NULL DEFAULT 600,
    state           TEXT NOT NULL,
    run_attempt     INTEGER NOT NULL DEFAULT 0,
    scheduled_at    REAL NOT NULL,
    next_run_at     REAL NOT NULL,
    run_now         INTEGER NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_until     REAL,
    current_run     INTEGER,
    output          TEXT,
    progress        TEXT,
    last_outcome    TEXT,
    last_error      TEXT,
    last_run_at     REAL,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL,
    finished_at     REAL
);
CREATE INDEX work_due ON work(state, next_run_at);
CREATE INDEX work_lease ON work(state, lease_until);
CREATE INDEX work_name ON work(name, state);

CREATE TABLE work_deps (
    work_id          TEXT NOT NULL REFERENCES work(id) ON DELETE CASCADE,
    prerequisite_id  TEXT NOT NULL REFERENCES work(id) ON DELETE CASCADE,
    PRIMARY KEY (work_id, prerequisite_id)
);
CREATE INDEX work_deps_prereq ON work_deps(prerequisite_id);

CREATE TABLE work_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    work_id     TEXT NOT NULL REFERENCES work(id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    runner_id   TEXT NOT NULL,
    scheduled_at REAL NOT NULL,
    started_at  REAL NOT NULL,
    ended_at    REAL,
    outcome     TEXT NOT NULL DEFAULT 'running',
    output      TEXT,
    error       TEXT
);
CREATE INDEX work_runs_work ON work_runs(work_id, id);

CREATE TABLE work_tags (
    work_id  TEXT NOT NULL REFERENCES work(id) ON DELETE CASCADE,
    tag      TEXT NOT NULL,
    PRIMARY KEY (work_id, tag)
);
CREATE INDEX work_tags_tag ON work_tags(tag);
INSERT INTO notify_state (id) VALUES (1);

CREATE TABLE fresh_telemetry (
    kind               TEXT NOT NULL,
    key                TEXT NOT NULL,
    layer              TEXT NOT NULL,          -- use | background | manual
    executions         INTEGER NOT NULL DEFAULT 0,  -- successes + failures + skips
    successes          INTEGER NOT NULL DEFAULT 0,
    failures           INTEGER NOT NULL DEFAULT 0,
    transient_failures INTEGER NOT NULL DEFAULT 0,  -- of the failures: retried later
    person_failures    INTEGER NOT NULL DEFAULT 0,  -- of the failures: need a person (a login)
    skips              INTEGER NOT NULL DEFAULT 0,
    last_success_at    REAL,
    last_failure_at    REAL,
    last_skip_at       REAL,
    last_error         TEXT,
    latency_count      INTEGER NOT NULL DEFAULT 0,  -- successes whose latency was measured
    latency_sum_ms     REAL NOT NULL DEFAULT 0,
    -- cumulative histogram: refreshes that took at most that long
    le_10ms  INTEGER NOT NULL DEFAULT 0,
    le_25ms  INTEGER NOT NULL DEFAULT 0,
    le_50ms  INTEGER NOT NULL DEFAULT 0,
    le_100ms INTEGER NOT NULL DEFAULT 0,
    le_250ms INTEGER NOT NULL DEFAULT 0,
    le_500ms INTEGER NOT NULL DEFAULT 0,
    le_1s    INTEGER NOT NULL DEFAULT 0,
    le_2500ms INTEGER NOT NULL DEFAULT 0,
    le_5s    INTEGER NOT NULL DEFAULT 0,
    le_10s   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, key, layer)
);

CREATE TABLE fresh_states (
    kind        TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,               -- canonical JSON
    version     INTEGER NOT NULL,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (kind, key)
);

CREATE TABLE work_run_counts (
    work_id  TEXT NOT NULL REFERENCES work(id) ON DELETE CASCADE,
    outcome  TEXT NOT NULL,
    runs     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (work_id, outcome)
);

CREATE TRIGGER work_runs_count AFTER UPDATE OF outcome ON work_runs
WHEN OLD.outcome = 'running' AND NEW.outcome <> 'running'
BEGIN
    INSERT INTO work_run_counts (work_id, outcome, runs) VALUES (NEW.work_id, NEW.outcome, 1)
    ON CONFLICT (work_id, outcome) DO UPDATE SET runs = runs + 1;
END;

CREATE TABLE daemons (
    id            TEXT PRIMARY KEY,   -- the runner id: host:pid:start.ident:token
    host          TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    started_at    REAL NOT NULL,
    last_seen_at  REAL NOT NULL
);
