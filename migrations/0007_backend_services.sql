-- SMART Backend Services: an HIE partner is a registered client of kind `backend`
-- (client_credentials with a signed assertion). It states one purpose of use for every
-- request and may export only the Groups listed for it. Both stay NULL for other clients.

-- v3-ActReason purpose of use (TREAT, ETREAT, HPAYMT …)
ALTER TABLE oauth_clients ADD COLUMN purpose_of_use TEXT;
-- JSON array of the Group ids the partner may export
ALTER TABLE oauth_clients ADD COLUMN export_groups TEXT;
