-- Output sized by content (issue 14 part 3): a Bulk Data job's files hold up to this many
-- resources and bytes per type, fixed when the job is accepted, so every replica (whatever
-- its own [export] settings) serves the same manifest and the same bytes for it. A unit's
-- `outputs` now list its pieces with their lengths ({"type", "file", "count", "bytes"}).
ALTER TABLE export_jobs ADD COLUMN file_max_resources BIGINT;
ALTER TABLE export_jobs ADD COLUMN file_max_bytes BIGINT;
