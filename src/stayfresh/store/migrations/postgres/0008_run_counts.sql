-- mirrors sqlite/0008: runs of each work by outcome, counted by a trigger when a run ends.
CREATE TABLE work_run_counts (
    work_id  TEXT NOT NULL REFERENCES work(id) ON DELETE CASCADE,
    outcome  TEXT NOT NULL,
    runs     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (work_id, outcome)
);

INSERT INTO work_run_counts (work_id, outcome, runs)
SELECT work_id, outcome, COUNT(*) FROM work_runs WHERE outcome <> 'running'
GROUP BY work_id, outcome;

CREATE FUNCTION stayfresh_count_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO work_run_counts (work_id, outcome, runs) VALUES (NEW.work_id, NEW.outcome, 1)
    ON CONFLICT (work_id, outcome) DO UPDATE SET runs = work_run_counts.runs + 1;
    RETURN NULL;
END $$;

CREATE TRIGGER work_runs_count AFTER UPDATE OF outcome ON work_runs
FOR EACH ROW WHEN (OLD.outcome = 'running' AND NEW.outcome <> 'running')
EXECUTE FUNCTION stayfresh_count_run();
