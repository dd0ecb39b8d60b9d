-- The common shape: one telemetry record per (kind, key, layer) for every kind
-- of state kept fresh (tokens, the notification window, users' own kinds), one
-- durable state per (kind, key) for kinds that have no table of their own.
-- Replaces the per-account counters, recent latencies and notify_telemetry,
-- whose figures are carried over (layer "jit" and "foreground" become "use").
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

INSERT INTO fresh_telemetry (kind, key, layer, executions, successes, failures, skips,
                             last_success_at, last_failure_at, last_skip_at, last_error)
SELECT 'notify', 'window', CASE layer WHEN 'foreground' THEN 'use' ELSE layer END,
       executions, successes, failures, skips, last_success_at, last_failure_at,
       last_skip_at, last_error
FROM notify_telemetry;

-- Token refreshes: the old counters did not say which layer failed; failures go to "use".
INSERT INTO fresh_telemetry (kind, key, layer, executions, successes, failures,
                             last_success_at, last_failure_at, last_error,
                             latency_count, latency_sum_ms, le_10ms, le_25ms, le_50ms,
                             le_100ms, le_250ms, le_500ms, le_1s, le_2500ms, le_5s, le_10s)
SELECT 'token', a.name, 'use', a.jit_refreshes + a.failures, a.jit_refreshes, a.failures,
       CASE WHEN a.jit_refreshes > 0 THEN a.last_refresh_at END, a.last_failure_at,
       a.last_error, COUNT(l.latency_ms), COALESCE(SUM(l.latency_ms), 0),
       COUNT(CASE WHEN l.latency_ms <= 10 THEN 1 END),
       COUNT(CASE WHEN l.latency_ms <= 25 THEN 1 END),
       COUNT(CASE WHEN l.latency_ms <= 50 THEN 1 END),
       COUNT(CASE WHEN l.latency_ms <= 100 THEN 1 END),
       COUNT(CASE WHEN l.latency_ms <= 250 THEN 1 END),
       COUNT(CASE WHEN l.latency_ms <= 500 THEN 1 END),
       COUNT(CASE WHEN l.latency_ms <= 1000 THEN 1 END),
       COUNT(CASE WHEN l.latency_ms <= 2500 THEN 1 END),
       COUNT(CASE WHEN l.latency_ms <= 5000 THEN 1 END),
       COUNT(CASE WHEN l.latency_ms <= 10000 THEN 1 END)
FROM accounts a LEFT JOIN refresh_latencies l ON l.account = a.name
WHERE a.jit_refreshes + a.failures > 0
GROUP BY a.name, a.jit_refreshes, a.failures, a.last_refresh_at, a.last_failure_at, a.last_error;

INSERT INTO fresh_telemetry (kind, key, layer, executions, successes, last_success_at)
SELECT 'token', name, 'background', background_refreshes, background_refreshes, last_refresh_at
FROM accounts WHERE background_refreshes > 0;

DROP TABLE notify_telemetry;
DROP TABLE refresh_latencies;
ALTER TABLE accounts DROP COLUMN jit_refreshes;
ALTER TABLE accounts DROP COLUMN background_refreshes;
ALTER TABLE accounts DROP COLUMN failures;
ALTER TABLE accounts DROP COLUMN last_refresh_at;
ALTER TABLE accounts DROP COLUMN last_failure_at;
ALTER TABLE accounts DROP COLUMN last_error;
