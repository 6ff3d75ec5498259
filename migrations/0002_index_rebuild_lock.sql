-- One row that every patient-index rebuild updates first inside its transaction, so
-- rebuilds by several gateway replicas run one after another and each sees the ids the
-- previous one assigned (a portable lock for SQLite and PostgreSQL alike).
CREATE TABLE index_rebuild_lock (
    id INTEGER PRIMARY KEY,
    generation BIGINT NOT NULL
);
INSERT INTO index_rebuild_lock (id, generation) VALUES (1, 0);
