-- The common shape's telemetry and durable states (see store/_fresh.py).

-- name: count_fresh
-- one execution of (:kind, :key, :layer); the outcome's counters are 1 in the parameters
INSERT INTO fresh_telemetry AS t (kind, key, layer, executions, successes, failures,
    transient_failures, person_failures, skips, last_success_at, last_failure_at,
    last_skip_at, last_error, latency_count, latency_sum_ms, le_10ms, le_25ms, le_50ms,
    le_100ms, le_250ms, le_500ms, le_1s, le_2500ms, le_5s, le_10s)
VALUES (:kind, :key, :layer, 1, :successes, :failures, :transient_failures,
    :person_failures, :skips, :last_success_at, :last_failure_at, :last_skip_at,
    :last_error, :latency_count, :latency_sum_ms, :le_10ms, :le_25ms, :le_50ms, :le_100ms,
    :le_250ms, :le_500ms, :le_1s, :le_2500ms, :le_5s, :le_10s)
ON CONFLICT (kind, key, layer) DO UPDATE SET
    executions = t.executions + 1,
    successes = t.successes + excluded.successes,
    failures = t.failures + excluded.failures,
    transient_failures = t.transient_failures + excluded.transient_failures,
    person_failures = t.person_failures + excluded.person_failures,
    skips = t.skips + excluded.skips,
    last_success_at = COALESCE(excluded.last_success_at, t.last_success_at),
    last_failure_at = COALESCE(excluded.last_failure_at, t.last_failure_at),
    last_skip_at = COALESCE(excluded.last_skip_at, t.last_skip_at),
    last_error = CASE WHEN excluded.failures > 0 THEN excluded.last_error ELSE t.last_error END,
    latency_count = t.latency_count + excluded.latency_count,
    latency_sum_ms = t.latency_sum_ms + excluded.latency_sum_ms,
    le_10ms = t.le_10ms + excluded.le_10ms,
    le_25ms = t.le_25ms + excluded.le_25ms,
    le_50ms = t.le_50ms + excluded.le_50ms,
    le_100ms = t.le_100ms + excluded.le_100ms,
    le_250ms = t.le_250ms + excluded.le_250ms,
    le_500ms = t.le_500ms + excluded.le_500ms,
    le_1s = t.le_1s + excluded.le_1s,
    le_2500ms = t.le_2500ms + excluded.le_2500ms,
    le_5s = t.le_5s + excluded.le_5s,
    le_10s = t.le_10s + excluded.le_10s

-- name: fresh_telemetry
SELECT * FROM fresh_telemetry
WHERE (CAST(:kind AS TEXT) IS NULL OR kind = :kind) AND (CAST(:key AS TEXT) IS NULL OR key = :key)
ORDER BY kind, key, layer

-- name: forget_fresh
DELETE FROM fresh_telemetry WHERE kind = :kind AND key = :key

-- name: forget_fresh_state
DELETE FROM fresh_states WHERE kind = :kind AND key = :key

-- name: get_fresh_state
SELECT * FROM fresh_states WHERE kind = :kind AND key = :key

-- name: insert_fresh_state
INSERT INTO fresh_states (kind, key, value, version, updated_at)
VALUES (:kind, :key, :value, 1, :now)
ON CONFLICT (kind, key) DO NOTHING

-- name: swap_fresh_state
UPDATE fresh_states SET value = :value, version = version + 1, updated_at = :now
WHERE kind = :kind AND key = :key AND version = :expected_version
