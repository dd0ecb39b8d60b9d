-- Runs of each work by outcome, counted for ever (the history in work_runs is trimmed).
-- A trigger counts a run when it ends, whichever path ends it (finished, lost, cancelled).
CREATE TABLE work_run_counts (
    work_id  TEXT NOT NULL REFERENCES work(id) ON DELETE CASCADE,
    outcome  TEXT NOT NULL,
    runs     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (work_id, outcome)
);

INSERT INTO work_run_counts (work_id, outcome, runs)
SELECT work_id, outcome, COUNT(*) FROM work_runs WHERE outcome <> 'running'
GROUP BY work_id, outcome;

CREATE TRIGGER work_runs_count AFTER UPDATE OF outcome ON work_runs
WHEN OLD.outcome = 'running' AND NEW.outcome <> 'running'
BEGIN
    INSERT INTO work_run_counts (work_id, outcome, runs) VALUES (NEW.work_id, NEW.outcome, 1)
    ON CONFLICT (work_id, outcome) DO UPDATE SET runs = runs + 1;
END;
