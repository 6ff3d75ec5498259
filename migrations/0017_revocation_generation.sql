-- Revocation generation (issue 15 part 3). One row whose number every path that revokes
-- or ends access (token and grant revocation, refresh reuse, app disabled, proxy link
-- terminated or its terms changed) raises in the same transaction. Gateways cache
-- validated access tokens only while this number is unchanged, so reading it is the one
-- query left on the bearer check and revocation still takes effect on the next request,
-- on every gateway sharing the database.
CREATE TABLE revocation_generation (
    id INTEGER PRIMARY KEY,
    generation BIGINT NOT NULL
);
INSERT INTO revocation_generation (id, generation) VALUES (1, 0);
