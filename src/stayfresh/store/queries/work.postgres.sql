-- The work statements that differ on PostgreSQL (see work.sql for the shared ones).
-- Reads bring a work's tags and prerequisites along as arrays (one round trip);
-- the claim is one statement (data-modifying CTEs; SQLite has none).

-- name: work_by_ids
SELECT id, name, worker, input, periodic, interval, flex, constraints, backoff_policy,
       backoff_delay, timeout, state, run_attempt, scheduled_at, next_run_at, run_now,
       lease_owner, lease_until, current_run, output, progress, last_outcome, last_error,
       last_run_at, created_at, updated_at, finished_at,
       ARRAY(SELECT tag FROM work_tags t WHERE t.work_id = work.id ORDER BY tag) AS tags,
       ARRAY(SELECT prerequisite_id FROM work_deps d WHERE d.work_id = work.id
             ORDER BY prerequisite_id) AS deps
FROM work WHERE id = ANY(:ids)

-- name: find_work
-- every filter is optional (NULL: not filtering); custom plans fold the unused ones away
SELECT id, name, worker, input, periodic, interval, flex, constraints, backoff_policy,
       backoff_delay, timeout, state, run_attempt, scheduled_at, next_run_at, run_now,
       lease_owner, lease_until, current_run, output, progress, last_outcome, last_error,
       last_run_at, created_at, updated_at, finished_at,
       ARRAY(SELECT tag FROM work_tags t WHERE t.work_id = work.id ORDER BY tag) AS tags,
       ARRAY(SELECT prerequisite_id FROM work_deps d WHERE d.work_id = work.id
             ORDER BY prerequisite_id) AS deps
FROM work
WHERE (CAST(:name AS TEXT) IS NULL OR name = :name)
  AND (CAST(:tag AS TEXT) IS NULL OR id IN (SELECT work_id FROM work_tags WHERE tag = :tag))
  AND (CAST(:id_prefix AS TEXT) IS NULL OR left(id, :prefix_len) = :id_prefix)
  AND (:any_state OR state = ANY(:states))
ORDER BY created_at DESC, rowid DESC
LIMIT :limit

-- name: due_work
-- ENQUEUED and due, RUNNING with a lapsed lease, RUNNING under a dead owner
SELECT id, name, worker, input, periodic, interval, flex, constraints, backoff_policy,
       backoff_delay, timeout, state, run_attempt, scheduled_at, next_run_at, run_now,
       lease_owner, lease_until, current_run, output, progress, last_outcome, last_error,
       last_run_at, created_at, updated_at, finished_at,
       ARRAY(SELECT tag FROM work_tags t WHERE t.work_id = work.id ORDER BY tag) AS tags,
       ARRAY(SELECT prerequisite_id FROM work_deps d WHERE d.work_id = work.id
             ORDER BY prerequisite_id) AS deps
FROM work
WHERE id IN (
    SELECT id FROM work WHERE state = 'ENQUEUED' AND next_run_at <= :now
                          AND (NOT :any_skip OR run_now OR constraints <> ALL(:skip))
    UNION ALL SELECT id FROM work WHERE state = 'RUNNING' AND lease_until <= :now
    UNION ALL SELECT id FROM work WHERE :any_dead AND state = 'RUNNING'
                                    AND lease_until > :now AND lease_owner = ANY(:dead))
ORDER BY next_run_at, rowid
LIMIT :limit

-- name: claim_work
-- one statement for the whole batch: lock what is still claimable (skipping rows
-- another runner holds), close runs lost by dead runners, open a run per work and
-- take the lease; (id, run_id) of each work taken
WITH cand AS (
    SELECT id, state, current_run, run_attempt, scheduled_at, lease_until FROM work
    WHERE id = ANY(:ids)
      AND ((state = 'ENQUEUED' AND next_run_at <= :now)
           OR (state = 'RUNNING' AND (lease_until <= :now OR lease_owner = ANY(:dead))))
    ORDER BY id FOR UPDATE SKIP LOCKED),
lost AS (
    UPDATE work_runs r SET outcome = 'lost', ended_at = :now,
           error = CASE WHEN cand.lease_until <= :now THEN :expired ELSE :gone END
    FROM cand
    WHERE cand.state = 'RUNNING' AND r.id = cand.current_run AND r.ended_at IS NULL),
runs AS (
    INSERT INTO work_runs (work_id, attempt, runner_id, scheduled_at, started_at)
    SELECT id, run_attempt + 1, :runner, scheduled_at, :now FROM cand ORDER BY id
    RETURNING id, work_id)
UPDATE work w SET state = 'RUNNING', run_attempt = w.run_attempt + 1, lease_owner = :runner,
       lease_until = :until, current_run = runs.id, run_now = FALSE, progress = NULL,
       updated_at = :now
FROM runs WHERE w.id = runs.work_id
RETURNING w.id, runs.id AS run_id, NULL AS lease_until, NULL AS current_run

-- name: touch_work
-- a claim or renewal reads its rows first: a lock held on the table is waited for here,
-- before the lease is computed
SELECT count(*) AS n FROM work WHERE id = ANY(:ids)
