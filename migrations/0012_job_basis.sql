-- The account's link to a record and the app's grant a job was started under (issue 12
-- part 4): terminating the link or revoking the grant cancels its jobs. NULL for staff,
-- partners (their jobs are their client's) and dev tokens.
ALTER TABLE export_jobs ADD COLUMN link_id TEXT;
ALTER TABLE export_jobs ADD COLUMN grant_id TEXT;
CREATE INDEX export_jobs_link ON export_jobs (link_id);
CREATE INDEX export_jobs_grant ON export_jobs (grant_id);
