-- A snoozed reminder fires no occurrence before snoozed_until (POSIX seconds); NULL: not snoozed.
ALTER TABLE notify_rules ADD COLUMN snoozed_until DOUBLE PRECISION;
