-- mirrors sqlite/0007
-- The common shape: one telemetry record per (kind, key, layer) for every kind
-- of state kept fresh (tokens, the notification window, users' own kinds), one
-- durable state per (kind, key) for kinds that have no table of their own.
-- Replaces the per-account counters, recent latencies and notify_telemetry,
-- whose figures are carried over (layer "jit" and "foreground" become "use").
CREATE TABLE fresh_telemetry (
    kind               TEXT NOT NULL,
    key                TEXT NOT NULL,
    layer              TEXT NOT NULL,          -- use | background | manual
    executions         BIGINT NOT NULL DEFAULT 0,  -- successes + failures + skips
    successes          BIGINT NOT NULL DEFAULT 0,
    failures           BIGINT NOT NULL DEFAULT 0,
    transient_failures BIGINT NOT NULL DEFAULT 0,  -- of the failures: retried later
    person_failures    BIGINT NOT NULL DEFAULT 0,  -- of the failures: need a person (a login)
    skips              BIGINT NOT NULL DEFAULT 0,
    last_success_at    DOUBLE PRECISION,
    last_failure_at    DOUBLE PRECISION,
    last_skip_at       DOUBLE PRECISION,
    last_error         TEXT,
    latency_count      BIGINT NOT NULL DEFAULT 0,  -- successes whose latency was measured
    latency_sum_ms     DOUBLE PRECISION NOT NULL DEFAULT 0,
    -- cumulative histogram: refreshes that took at most that long
    le_10ms  BIGINT NOT NULL DEFAULT 0,
    le_25ms  BIGINT NOT NULL DEFAULT 0,
    le_50ms  BIGINT NOT NULL DEFAULT 0,
    le_100ms BIGINT NOT NULL DEFAULT 0,
    le_250ms BIGINT NOT NULL DEFAULT 0,
    le_500ms BIGINT NOT NULL DEFAULT 0,
    le_1s    BIGINT NOT NULL DEFAULT 0,
    le_2500ms BIGINT NOT NULL DEFAULT 0,
    le_5s    BIGINT NOT NULL DEFAULT 0,
    le_10s   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, key, layer)
);

CREATE TABLE fresh_states (
    kind        TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,               -- canonical JSON
    version     BIGINT NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL,
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
