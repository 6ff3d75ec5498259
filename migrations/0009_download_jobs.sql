-- Whole-record downloads prepared as jobs for the record pages (a record too large to zip
-- while the browser waits). They share the export job tables and queue: a download job is
-- owned by the signed-in account's actor, stores that account's view of one record (the
-- same Access the pages use) and has one unit, which writes one file.

-- bulk | download
ALTER TABLE export_jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'bulk';
-- a download job's steps done so far (shown as "N of M steps"); bulk jobs count patients
ALTER TABLE export_jobs ADD COLUMN step BIGINT NOT NULL DEFAULT 0;
-- JSON array of the policy's notices for the prepared file (the withheld-notice), so the
-- progress page can show them without reading the record again
ALTER TABLE export_jobs ADD COLUMN notices TEXT;
