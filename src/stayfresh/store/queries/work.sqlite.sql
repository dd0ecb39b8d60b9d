-- The work statements that differ on SQLite (see work.sql for the shared ones).
-- Reads bring a work's tags and prerequisites along as JSON arrays (one statement);
-- the due-work scan is two index range scans, not an OR over the table; the claim
-- only reads the candidates here (SQLite has no data-modifying CTE: _work.py then
-- runs lose_run, open_runs and take_lease in the same write transaction).

-- name: work_by_ids
SELECT id, name, worker, input, periodic, interval, flex, constraints, backoff_policy,
       backoff_delay, timeout, state, run_attempt, scheduled_at, next_run_at, run_now,
       lease_owner, lease_until, current_run, output, progress, last_outcome, last_error,
       last_run_at, created_at, updated_at, finished_at,
       (SELECT json_group_array(tag) FROM work_tags t WHERE t.work_id = work.id) AS tags,
       (SELECT json_group_array(prerequisite_id) FROM work_deps d
        WHERE d.work_id = work.id) AS deps
FROM work WHERE id = ANY(:ids)

-- name: find_work
-- every filter is optional (NULL: not filtering). The rows come from one index range
-- picked by the first filter given (name, then states, then tag: a state is usually the
-- narrower of the two), or from a scan when none is: the branch not taken starts with
-- a constant-false term and never runs. Tags and prerequisites are read for the rows
-- kept (after LIMIT), not for every match
SELECT w.*,
       (SELECT json_group_array(tag) FROM work_tags t WHERE t.work_id = w.id) AS tags,
       (SELECT json_group_array(prerequisite_id) FROM work_deps d
        WHERE d.work_id = w.id) AS deps
FROM (
    SELECT id, name, worker, input, periodic, interval, flex, constraints, backoff_policy,
           backoff_delay, timeout, state, run_attempt, scheduled_at, next_run_at, run_now,
           lease_owner, lease_until, current_run, output, progress, last_outcome,
           last_error, last_run_at, created_at, updated_at, finished_at, rowid AS position
    FROM work
    WHERE rowid IN (
        SELECT rowid FROM work WHERE :name IS NOT NULL AND name = :name
        UNION ALL
        SELECT rowid FROM work
        WHERE :name IS NULL AND NOT :any_state AND state = ANY(:states)
        UNION ALL
        SELECT w2.rowid FROM work_tags t2 JOIN work w2 ON w2.id = t2.work_id
        WHERE :name IS NULL AND :any_state AND :tag IS NOT NULL AND t2.tag = :tag)
      AND (:name IS NULL OR name = :name)
      AND (:tag IS NULL OR id IN (SELECT work_id FROM work_tags WHERE tag = :tag))
      AND (:id_prefix IS NULL OR substr(id, 1, :prefix_len) = :id_prefix)
      AND (:any_state OR state = ANY(:states))
    UNION ALL
    SELECT id, name, worker, input, periodic, interval, flex, constraints, backoff_policy,
           backoff_delay, timeout, state, run_attempt, scheduled_at, next_run_at, run_now,
           lease_owner, lease_until, current_run, output, progress, last_outcome,
           last_error, last_run_at, created_at, updated_at, finished_at, rowid AS position
    FROM work
    WHERE :name IS NULL AND :tag IS NULL AND :any_state
      AND (:id_prefix IS NULL OR substr(id, 1, :prefix_len) = :id_prefix)
    ORDER BY created_at DESC, position DESC
    LIMIT coalesce(:limit, -1)) AS w
ORDER BY w.created_at DESC, w.position DESC

-- name: due_work
-- rowids from two index range scans instead of an OR over the whole table (the
-- branches for unmet constraints and dead owners run only when there are some: their
-- first term is constant); tags and prerequisites read for the rows kept (after LIMIT)
SELECT w.*,
       (SELECT json_group_array(tag) FROM work_tags t WHERE t.work_id = w.id) AS tags,
       (SELECT json_group_array(prerequisite_id) FROM work_deps d
        WHERE d.work_id = w.id) AS deps
FROM (
    SELECT id, name, worker, input, periodic, interval, flex, constraints, backoff_policy,
           backoff_delay, timeout, state, run_attempt, scheduled_at, next_run_at, run_now,
           lease_owner, lease_until, current_run, output, progress, last_outcome, last_error,
           last_run_at, created_at, updated_at, finished_at,
           rowid AS position
    FROM work
    WHERE rowid IN (
        SELECT rowid FROM work WHERE NOT :any_skip AND state = 'ENQUEUED'
                                 AND next_run_at <= :now
        UNION ALL SELECT rowid FROM work WHERE :any_skip AND state = 'ENQUEUED'
                                           AND next_run_at <= :now
                                           AND (run_now OR constraints <> ALL(:skip))
        UNION ALL SELECT rowid FROM work WHERE state = 'RUNNING' AND lease_until <= :now
        UNION ALL SELECT rowid FROM work WHERE :any_dead AND state = 'RUNNING'
                                           AND lease_until > :now AND lease_owner = ANY(:dead))
    ORDER BY next_run_at
    LIMIT :limit) AS w
ORDER BY w.next_run_at, w.position

-- name: claim_work
-- the candidates still claimable (the write transaction excludes every other claimer);
-- run_id NULL: no run opened yet. Looked up by id: the unary + keeps the planner off
-- the state indexes (a scan of every due work otherwise)
SELECT id, NULL AS run_id, lease_until, CASE WHEN state = 'RUNNING' THEN current_run END
       AS current_run
FROM work
WHERE id = ANY(:ids)
  AND ((+state = 'ENQUEUED' AND +next_run_at <= :now)
       OR (+state = 'RUNNING' AND (+lease_until <= :now OR lease_owner = ANY(:dead))))
ORDER BY id

-- name: touch_work
-- nothing to wait for here: the write transaction already waited at BEGIN IMMEDIATE
SELECT 0 AS n
