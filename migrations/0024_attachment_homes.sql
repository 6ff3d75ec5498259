-- Which record each served attachment (a document's content, an imaging series) was last
-- released from, by its gateway id (issue 13 part 3). Staff and partners read
-- `/fhir/Binary/{id}` by id alone; this says which record to decide on, on any gateway
-- sharing the database. It is only where to look: the content goes out only when that
-- record's released view names the attachment now.
CREATE TABLE attachment_homes (
    attachment_id TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL
);
