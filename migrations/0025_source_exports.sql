-- Bulk from the sources (issue 14 part 2). A system- or Group-level export job asks each
-- source that offers Bulk Data `$export` for its own export first: one unit per such source
-- (`source_name`, and `source_group` for a source Group's export), claimed and leased like
-- any unit; the job's person units are claimed only once every source unit is done.
-- What a source's export held is spilled here grouped by the source's patient (`patient`,
-- '' for resources of no one patient: Practitioners, Organizations …), so memory stays
-- bounded and any replica can build any person's record from it; rows go when the job
-- finishes, fails or is deleted. `export_source_runs` says per job and source whether its
-- export was spilled or failed (then that source is searched person by person).
ALTER TABLE export_units ADD COLUMN source_name TEXT;
ALTER TABLE export_units ADD COLUMN source_group TEXT;

CREATE TABLE export_source_runs (
    job_id TEXT NOT NULL,
    source_name TEXT NOT NULL,
    outcome TEXT NOT NULL,
    resources BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, source_name)
);

CREATE TABLE export_source_parts (
    job_id TEXT NOT NULL,
    source_name TEXT NOT NULL,
    patient TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (job_id, source_name, patient, resource_type, resource_id)
);

CREATE INDEX export_source_parts_by_resource ON export_source_parts (job_id, source_name, resource_type, resource_id);
