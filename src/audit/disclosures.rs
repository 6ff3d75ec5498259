//! The access log's entries that are disclosures of one patient's data to others (the
//! accounting of 45 CFR 164.528): successful accesses by partners (`partner`), apps
//! (`app for …`) and share links (`share link`) since a moment. Which entries count is
//! decided here, in the query; who may see them is the reader's decision.

use super::{to_record, AuditLog, AuditRecord};
use crate::store::StoreError;

/// The most entries one accounting lists (newest first).
pub const MAX_DISCLOSURES: i64 = 5000;

impl AuditLog {
    /// The disclosures of `patient_id`'s data recorded at or after `since` (a stored
    /// instant), newest first, at most [`MAX_DISCLOSURES`].
    pub async fn disclosures_of(&self, patient_id: &str, since: &str) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, recorded, actor, role, patient_id, action, what, purpose, outcome, source_ip FROM audit_events
             WHERE patient_id = $1 AND recorded >= $2 AND outcome = 'success'
               AND (role = 'partner' OR role = 'share link' OR role LIKE 'app for %')
             ORDER BY seq DESC LIMIT $3",
        )
        .bind(patient_id)
        .bind(since)
        .bind(MAX_DISCLOSURES)
        .fetch_all(&self.store.pool)
        .await?;
        Ok(rows.iter().map(to_record).collect())
    }
}
