-- The durable work engine: enqueueing, claiming, finishing, cancelling, history.
-- Named blocks, named parameters (see stayfresh/store/_queries.py). The reads that
-- bring a work's tags and prerequisites along, the due-work scan and the claim
-- differ per backend: work.sqlite.sql / work.postgres.sql.

-- -- enqueueing ----------------------------------------------------------------------

-- name: unique_existing
-- the works a unique-name policy looks at, newest first (locked: see _work.py)
SELECT id FROM work WHERE name = :name AND state = ANY(:states)
ORDER BY created_at DESC, rowid DESC FOR UPDATE

-- name: prerequisites
-- shared locks: a prerequisite cannot finish while a dependent is inserted after it
SELECT id, state, output FROM work WHERE id = ANY(:ids) ORDER BY rowid FOR SHARE

-- name: insert_work
INSERT INTO work (id, name, worker, input, periodic, interval, flex, constraints,
                  backoff_policy, backoff_delay, timeout, state, scheduled_at, next_run_at,
                  created_at, updated_at, finished_at)
VALUES (:id, :name, :worker, :input, :periodic, :interval, :flex, :constraints,
        :backoff_policy, :backoff_delay, :timeout, :state, :scheduled_at, :next_run_at,
        :now, :now, :finished_at)

-- name: insert_tag
INSERT INTO work_tags (work_id, tag) VALUES (:work_id, :tag)

-- name: insert_dep
INSERT INTO work_deps (work_id, prerequisite_id) VALUES (:work_id, :prerequisite_id)

-- name: update_in_place
UPDATE work SET worker = :worker, input = :input, interval = :interval, flex = :flex,
       constraints = :constraints, backoff_policy = :backoff_policy,
       backoff_delay = :backoff_delay, timeout = :timeout, updated_at = :now
WHERE id = :id

-- name: delete_tags
DELETE FROM work_tags WHERE work_id = :work_id

-- -- running -------------------------------------------------------------------------

-- name: lose_run
-- a RUNNING work taken over: its open history row is closed as lost (SQLite claim)
UPDATE work_runs SET outcome = 'lost', ended_at = :now, error = :error
WHERE id = :run_id AND ended_at IS NULL

-- name: open_runs
-- one history row per claimed work, in id order (SQLite claim)
INSERT INTO work_runs (work_id, attempt, runner_id, scheduled_at, started_at)
SELECT id, run_attempt + 1, :runner, scheduled_at, :now FROM work WHERE id = ANY(:ids)
ORDER BY id
RETURNING work_id, id

-- name: take_lease
-- (SQLite claim)
UPDATE work SET state = 'RUNNING', run_attempt = run_attempt + 1, lease_owner = :runner,
       lease_until = :until, current_run = :run_id, run_now = FALSE, progress = NULL,
       updated_at = :now
WHERE id = :id

-- name: renew_leases
UPDATE work SET lease_until = :until
WHERE id = ANY(:ids) AND state = 'RUNNING' AND lease_owner = :runner
RETURNING id

-- name: finish_work
-- the work changes only while this run still holds its lease
UPDATE work SET state = :state, scheduled_at = :scheduled_at, next_run_at = :next_run_at,
       run_attempt = :run_attempt, lease_owner = NULL, lease_until = NULL,
       current_run = NULL, progress = NULL, output = COALESCE(:output, output),
       last_outcome = :outcome, last_error = :error, last_run_at = :ended_at,
       updated_at = :ended_at, finished_at = :finished_at
WHERE id = :work_id AND current_run = :run_id AND lease_owner = :runner_id
  AND state = 'RUNNING'

-- name: close_run
UPDATE work_runs SET ended_at = :ended_at, outcome = :outcome, output = :output,
       error = :error
WHERE id = :run_id AND ended_at IS NULL

-- name: note_late_result
-- the run had been closed as lost: it keeps that outcome, the late result is noted
UPDATE work_runs SET error = COALESCE(error, '') || :note, output = COALESCE(output, :output)
WHERE id = :run_id AND outcome = 'lost'

-- name: trim_runs
-- keep the newest :keep history rows of the work
DELETE FROM work_runs WHERE work_id = :work_id AND id <= (
    SELECT id FROM work_runs WHERE work_id = :work_id ORDER BY id DESC LIMIT 1 OFFSET :keep)

-- name: blocked_dependents
-- locked first: two prerequisites finishing at once cannot both leave it BLOCKED
SELECT id, input, scheduled_at FROM work
WHERE state = 'BLOCKED'
  AND id IN (SELECT work_id FROM work_deps WHERE prerequisite_id = :id)
ORDER BY id FOR UPDATE

-- name: prerequisite_outcomes
SELECT p.state, p.output FROM work p JOIN work_deps d ON d.prerequisite_id = p.id
WHERE d.work_id = :id ORDER BY p.finished_at, p.rowid

-- name: unblock
UPDATE work SET state = 'ENQUEUED', input = :input, next_run_at = :next_run_at,
       updated_at = :now
WHERE id = :id

-- name: unfinished_dependents
-- every unfinished transitive dependent of :roots
WITH RECURSIVE down(id) AS (
    SELECT work_id FROM work_deps WHERE prerequisite_id = ANY(:roots)
    UNION SELECT d.work_id FROM work_deps d JOIN down ON d.prerequisite_id = down.id)
SELECT w.id FROM work w JOIN down ON w.id = down.id
WHERE w.state IN ('ENQUEUED', 'RUNNING', 'BLOCKED') ORDER BY w.id

-- name: end_open_runs
UPDATE work_runs SET outcome = 'cancelled', ended_at = :now
WHERE ended_at IS NULL AND id IN (SELECT current_run FROM work WHERE id = ANY(:ids))

-- name: set_finished
UPDATE work SET state = :state, lease_owner = NULL, lease_until = NULL, current_run = NULL,
       progress = NULL, finished_at = :now, updated_at = :now
WHERE id = ANY(:ids)

-- -- cancelling, run-now, progress, pruning ------------------------------------------

-- name: cancel_targets
-- periodic work is never SUCCEEDED/FAILED for good: it is cancellable in any state
-- (chosen by ids, name or tag, each an index lookup; or every work)
SELECT id FROM work
WHERE id IN (SELECT id FROM work WHERE id = ANY(:ids)
             UNION SELECT id FROM work WHERE name = :name
             UNION SELECT work_id FROM work_tags WHERE tag = :tag
             UNION SELECT id FROM work WHERE :everything)
  AND (state IN ('ENQUEUED', 'RUNNING', 'BLOCKED') OR (periodic AND state <> 'CANCELLED'))
ORDER BY id FOR UPDATE

-- name: run_now
UPDATE work SET next_run_at = :now, run_now = TRUE, updated_at = :now
WHERE id = ANY(:ids) AND state = 'ENQUEUED'
RETURNING id

-- name: set_progress
UPDATE work SET progress = :progress
WHERE id = :id AND current_run = :run_id AND state = 'RUNNING'

-- name: prune_work
DELETE FROM work
WHERE NOT periodic AND state IN ('SUCCEEDED', 'FAILED', 'CANCELLED')
  AND finished_at < :finished_before
  AND NOT EXISTS (SELECT 1 FROM work_deps d JOIN work w2 ON w2.id = d.work_id
                  WHERE d.prerequisite_id = work.id
                    AND w2.state IN ('ENQUEUED', 'RUNNING', 'BLOCKED'))

-- -- reading -------------------------------------------------------------------------

-- name: next_wake_times
SELECT (SELECT MIN(next_run_at) FROM work
        WHERE state = 'ENQUEUED' AND next_run_at > :now) AS due,
       (SELECT MIN(lease_until) FROM work
        WHERE state = 'RUNNING' AND lease_until > :now AND lease_owner <> :runner) AS expiry

-- name: work_runs
SELECT * FROM work_runs WHERE work_id = ANY(:ids) ORDER BY id DESC LIMIT :limit

-- name: run_counts
-- kept by the work_runs_count trigger (migration 0008)
SELECT work_id, outcome, runs FROM work_run_counts ORDER BY work_id, outcome

-- == daemons' heartbeats ==================================================================

-- name: beat
INSERT INTO daemons (id, host, pid, started_at, last_seen_at)
VALUES (:id, :host, :pid, :started_at, :now)
ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at

-- name: forget_old_daemons
DELETE FROM daemons WHERE last_seen_at < :before

-- name: forget_daemon
DELETE FROM daemons WHERE id = :id

-- name: daemons
SELECT * FROM daemons WHERE last_seen_at >= :since ORDER BY started_at, id
