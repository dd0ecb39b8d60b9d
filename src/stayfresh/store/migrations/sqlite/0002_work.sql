-- The durable work engine: work requests, their dependencies, tags and runs.
-- Times are POSIX seconds (REAL). JSON columns hold objects.
CREATE TABLE work (
    id              TEXT PRIMARY KEY,
    name            TEXT,                    -- unique-work name (shared by a chain / APPEND)
    worker          TEXT NOT NULL,           -- "pkg.mod:func" or a registered name
    input           TEXT NOT NULL DEFAULT '{}',
    periodic        INTEGER NOT NULL DEFAULT 0,
    interval        REAL,                    -- periodic only
    flex            REAL,                    -- periodic only; equals interval without flex
    constraints     TEXT NOT NULL DEFAULT '{}',
    backoff_policy  TEXT NOT NULL DEFAULT 'exponential',
    backoff_delay   REAL NOT NULL DEFAULT 30,
    timeout         REAL NOT NULL DEFAULT 600,
    state           TEXT NOT NULL,           -- ENQUEUED RUNNING SUCCEEDED FAILED BLOCKED CANCELLED
    run_attempt     INTEGER NOT NULL DEFAULT 0,
    scheduled_at    REAL NOT NULL,           -- due time of the current period / first due time
    next_run_at     REAL NOT NULL,           -- earliest start of the next run (backoff included)
    run_now         INTEGER NOT NULL DEFAULT 0,  -- forced by `work run`: ignore constraints once
    lease_owner     TEXT,
    lease_until     REAL,
    current_run     INTEGER,                 -- work_runs.id of the run holding the lease
    output          TEXT,                    -- last run's output (JSON object)
    progress        TEXT,                    -- progress of the current run (JSON object)
    last_outcome    TEXT,
    last_error      TEXT,
    last_run_at     REAL,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL,
    finished_at     REAL                     -- when it reached a terminal state
);
CREATE INDEX work_due ON work(state, next_run_at);
CREATE INDEX work_lease ON work(state, lease_until);
CREATE INDEX work_name ON work(name, state);

CREATE TABLE work_tags (
    work_id  TEXT NOT NULL REFERENCES work(id) ON DELETE CASCADE,
    tag      TEXT NOT NULL,
    PRIMARY KEY (work_id, tag)
);
CREATE INDEX work_tags_tag ON work_tags(tag);

-- B (work_id) runs after A (prerequisite_id) succeeds.
CREATE TABLE work_deps (
    work_id          TEXT NOT NULL REFERENCES work(id) ON DELETE CASCADE,
    prerequisite_id  TEXT NOT NULL REFERENCES work(id) ON DELETE CASCADE,
    PRIMARY KEY (work_id, prerequisite_id)
);
CREATE INDEX work_deps_prereq ON work_deps(prerequisite_id);

-- One row per attempt; bounded per work by the store.
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
