-- A spent client-assertion jti is spent for its client only: two clients that happen to
-- pick the same jti must not lock each other out. Key (client_id, jti) instead of jti.
CREATE TABLE client_assertions_by_client (
    client_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
INSERT INTO client_assertions_by_client (client_id, jti, expires_at)
    SELECT client_id, jti, expires_at FROM client_assertions;
DROP TABLE client_assertions;
ALTER TABLE client_assertions_by_client RENAME TO client_assertions;
