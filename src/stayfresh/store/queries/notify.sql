-- Notifications: rules, the rolling window (notify_pending), deliveries, sinks, telemetry.
-- Named blocks, named parameters (see stayfresh/store/_queries.py). One text for both
-- backends: the claim's row locks (FOR UPDATE SKIP LOCKED) are PostgreSQL's and vanish
-- on SQLite, whose BEGIN IMMEDIATE already excludes every other writer.

-- == rules ==============================================================================

-- name: add_rule
INSERT INTO notify_rules (title, body, at, rrule, dtstart, tz, enabled, created_at)
VALUES (:title, :body, :at, :rrule, :dtstart, :tz, :enabled, :now)
RETURNING id, title, body, at, rrule, dtstart, tz, enabled, created_at, snoozed_until

-- name: bump_rules_version
-- every rule change makes the window stale
UPDATE notify_state SET rules_version = rules_version + 1 WHERE id = 1

-- name: get_rule
SELECT id, title, body, at, rrule, dtstart, tz, enabled, created_at, snoozed_until
FROM notify_rules WHERE id = :id

-- name: list_rules
SELECT id, title, body, at, rrule, dtstart, tz, enabled, created_at, snoozed_until
FROM notify_rules ORDER BY id

-- name: update_rule
UPDATE notify_rules SET title = :title, body = :body, at = :at, rrule = :rrule,
       dtstart = :dtstart, tz = :tz, enabled = :enabled
WHERE id = :id
RETURNING id, title, body, at, rrule, dtstart, tz, enabled, created_at, snoozed_until

-- name: snooze_rule
UPDATE notify_rules SET snoozed_until = :until WHERE id = :id
RETURNING id, title, body, at, rrule, dtstart, tz, enabled, created_at, snoozed_until

-- name: delete_rule
DELETE FROM notify_rules WHERE id = :id

-- name: delete_rule_pending
-- its delivery history stays
DELETE FROM notify_pending WHERE rule_id = :id

-- == the window =========================================================================

-- name: freshness
SELECT last_reschedule_at, rules_version, window_rules_version,
       EXISTS (SELECT 1 FROM notify_rules WHERE enabled = TRUE) AS has_rules
FROM notify_state WHERE id = 1

-- name: lock_rules_version
-- PostgreSQL: two reschedules (from two hosts) run one after the other, the second
-- seeing the first's window
SELECT rules_version FROM notify_state WHERE id = 1 FOR UPDATE

-- name: enabled_rules
SELECT id, title, body, at, rrule, dtstart, tz, enabled, created_at, snoozed_until
FROM notify_rules WHERE enabled = TRUE ORDER BY id

-- name: cancel_window
-- the future, and whatever belongs to a rule that is gone or disabled; the overdue rows of
-- live rules stay for the deliverer
DELETE FROM notify_pending
WHERE due_at >= :now OR rule_id NOT IN (SELECT id FROM notify_rules WHERE enabled = TRUE)

-- name: count_pending
SELECT COUNT(*) AS n FROM notify_pending

-- name: add_pending
INSERT INTO notify_pending (rule_id, due_at, title, body)
VALUES (:rule_id, :due_at, :title, :body)
ON CONFLICT DO NOTHING

-- name: window_built
UPDATE notify_state SET window_rules_version = :version, last_reschedule_at = :now,
       window_end = :window_end
WHERE id = 1

-- name: list_pending
-- no limit: the largest BIGINT (SQLite refuses LIMIT NULL, PostgreSQL a negative one)
SELECT rule_id, due_at, title, body FROM notify_pending
ORDER BY due_at, rule_id LIMIT COALESCE(:limit, 9223372036854775807)

-- == sinks ==============================================================================

-- name: add_sink
INSERT INTO notify_sinks (kind, target, at_least_once, created_at)
VALUES (:kind, :target, :at_least_once, :now)
RETURNING *

-- name: list_sinks
SELECT * FROM notify_sinks ORDER BY id

-- name: delete_sink
DELETE FROM notify_sinks WHERE id = :id

-- == delivery ===========================================================================

-- name: take_due_pending
-- due rows leave the window (on PostgreSQL their row locks keep a concurrent claimer
-- from taking them too)
DELETE FROM notify_pending WHERE due_at <= :now RETURNING rule_id, due_at, title, body

-- name: insert_delivery
-- the primary key decides which claimer delivers an occurrence: a second INSERT is a no-op
INSERT INTO notify_deliveries (rule_id, due_at, sink_id, title, body, state, attempts,
                               claimed_until, next_attempt_at, updated_at, error)
VALUES (:rule_id, :due_at, :sink_id, :title, :body, :state, :attempts,
        :claimed_until, :next_attempt_at, :updated_at, :error)
ON CONFLICT DO NOTHING

-- name: stale_deliveries
-- failed rows whose retry has come, sending rows whose claim ran out (their sender died);
-- PostgreSQL: locked in key order, rows another claimer holds are its own
SELECT rule_id, due_at, sink_id, title, body, state, attempts, claimed_until,
       next_attempt_at, updated_at, error
FROM notify_deliveries
WHERE (state = 'failed' AND next_attempt_at <= :now)
   OR (state = 'sending' AND claimed_until < :now)
ORDER BY rule_id, due_at, sink_id
FOR UPDATE SKIP LOCKED

-- name: settle_delivery
-- the new state of a row locked by stale_deliveries (computed by _notify.settle_stale)
UPDATE notify_deliveries SET state = :state, attempts = :attempts,
       claimed_until = :claimed_until, next_attempt_at = :next_attempt_at,
       updated_at = :updated_at, error = :error
WHERE rule_id = :rule_id AND due_at = :due_at AND sink_id = :sink_id

-- name: finish_delivery
-- only while the claim is still this one
UPDATE notify_deliveries SET state = :state, claimed_until = NULL,
       next_attempt_at = :next_attempt_at, updated_at = :at, error = :error
WHERE rule_id = :rule_id AND due_at = :due_at AND sink_id = :sink_id
  AND state = 'sending' AND attempts = :attempts

-- name: next_notification_time
-- each MIN is one index probe (notify_pending_due, notify_deliveries_state)
SELECT MIN(t) AS t FROM (
    SELECT MIN(due_at) AS t FROM notify_pending
    UNION ALL SELECT MIN(next_attempt_at) FROM notify_deliveries WHERE state = 'failed'
    UNION ALL SELECT MIN(claimed_until) FROM notify_deliveries WHERE state = 'sending'
) AS next_times

-- name: list_deliveries
SELECT rule_id, due_at, sink_id, title, body, state, attempts, claimed_until,
       next_attempt_at, updated_at, error
FROM notify_deliveries ORDER BY updated_at DESC, due_at DESC LIMIT :limit
