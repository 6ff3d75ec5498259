-- A source's Bulk Data export is spilled into a table of its own per job and source
-- (`spill_…`, named in `export_spills`), loaded without indexes and indexed once loaded,
-- instead of one shared table whose primary key and by-resource index took a random insert
-- for every row (two thirds of a 10,000-patient bulk export's time). A table goes whole
-- (DROP TABLE) when its job ends. Jobs running across this upgrade lose what they had
-- spilled and forget that they had: their person units search those sources person by
-- person, as for a source whose export failed.
DROP TABLE export_source_parts;
DELETE FROM export_source_runs;

CREATE TABLE export_spills (
    job_id TEXT NOT NULL,
    source_name TEXT NOT NULL,
    table_name TEXT NOT NULL,
    PRIMARY KEY (job_id, source_name)
);
