//! The new-results sweep: every so often, for each live record link (an account's own record
//! or one it is a proxy for), the reader decides what that link's viewer may see now; the
//! results among it (reports and laboratory, imaging and procedure observations) are
//! compared with those the link was already told about, kept as SHA-256 hashes of (link,
//! `Type/id`) only. Anything new — a result just arrived, or released after a hold — sends
//! the account one "you have new results" mail. A link's first sweep records what it
//! already sees without a mail. Because the comparison is per link and over what the
//! policy released to that link's viewer, a proxy is never told about an item it cannot
//! see. Reading for the sweep prepares nothing that goes out, so it is not an access to log.

use super::{NoticeError, NoticeKind, Notices};
use crate::auth::accounts::PatientLink;
use crate::read::{Reader, Trail, Use};
use crate::store::Store;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

/// Observation categories that are results.
const RESULT_CATEGORIES: &[&str] = &["laboratory", "imaging", "procedure", "LAB", "RAD", "PAT", "SP"];

/// Whether a released resource is a result the patient may be told is new.
pub fn is_result(r: &Value) -> bool {
    match r.get("resourceType").and_then(Value::as_str) {
        Some("DiagnosticReport") => true,
        Some("Observation") => r["category"].as_array().into_iter().flatten().any(|c| {
            c["coding"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|code| code["code"].as_str().is_some_and(|k| RESULT_CATEGORIES.contains(&k)))
        }),
        _ => false,
    }
}

/// What is kept of a result a link was told about.
fn result_hash(link_id: &str, key: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("portico-notice:{link_id}:{key}").as_bytes()))
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ResultsSwept {
    /// Links looked at.
    pub links: usize,
    /// Links seen for the first time (what they saw recorded, no mail).
    pub baselines: usize,
    /// Accounts mailed.
    pub mailed: usize,
}

pub struct ResultsSweep {
    pub store: Store,
    pub reader: Reader,
    pub notices: Notices,
}

impl ResultsSweep {
    /// One sweep over the links live at `now`.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<ResultsSwept, NoticeError> {
        let at = now.to_rfc3339();
        let rows = sqlx::query(
            "SELECT id, account_id, source, source_patient_id, relationship, valid_until, adult_granted, teen_assent
             FROM account_patients WHERE terminated_at IS NULL
               AND (valid_from IS NULL OR valid_from <= $1) AND (valid_until IS NULL OR valid_until > $1)
             ORDER BY account_id, id",
        )
        .bind(&at)
        .fetch_all(&self.store.pool)
        .await?;
        let mut swept = ResultsSwept::default();
        let mut told: BTreeSet<String> = BTreeSet::new();
        for r in rows {
            let account: String = r.get(1);
            let link = PatientLink {
                id: r.get(0),
                source: r.get(2),
                source_patient_id: r.get(3),
                relationship: r.get(4),
                valid_until: r.get(5),
                adult_granted: r.get::<i32, _>(6) != 0,
                teen_assent: r.get::<i32, _>(7) != 0,
            };
            swept.links += 1;
            match self.new_results(&account, &link, &at).await? {
                Seen::Baseline => swept.baselines += 1,
                Seen::New => {
                    told.insert(account);
                }
                Seen::Nothing => {}
            }
        }
        for account in told {
            if self.notices.notify(&account, NoticeKind::NewResults).await? {
                swept.mailed += 1;
            }
        }
        Ok(swept)
    }

    /// Compares what `link` releases now with what it was told about, and records the new.
    async fn new_results(&self, account: &str, link: &PatientLink, at: &str) -> Result<Seen, NoticeError> {
        let access = crate::auth::access_for_link(account, link);
        let Some(patient_id) = self.reader.whose(&access).await else { return Ok(Seen::Nothing) };
        let trail = Trail::internal("notices: new results");
        let record = match self.reader.record(&access, &trail, Use::Prepare, &patient_id).await {
            Ok(record) => record,
            // Nothing of the record for this viewer now (or its sources down): nothing new.
            Err(e) => {
                tracing::debug!(link = %link.id, error = %e, "new-results sweep: record not read");
                return Ok(Seen::Nothing);
            }
        };
        let now: HashSet<String> = record
            .resources()
            .iter()
            .filter(|r| is_result(r))
            .map(|r| {
                result_hash(
                    &link.id,
                    &format!("{}/{}", r["resourceType"].as_str().unwrap_or(""), r["id"].as_str().unwrap_or("")),
                )
            })
            .collect();
        let baseline = sqlx::query("SELECT 1 FROM notice_baselines WHERE link_id = $1")
            .bind(&link.id)
            .fetch_optional(&self.store.pool)
            .await?
            .is_some();
        let known: HashSet<String> = sqlx::query("SELECT result_hash FROM notice_results WHERE link_id = $1")
            .bind(&link.id)
            .fetch_all(&self.store.pool)
            .await?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        let mut added = 0u64;
        let mut tx = self.store.begin_write().await?;
        for hash in now.difference(&known) {
            // Of two replicas sweeping at once, only the one whose insert lands mails.
            added += sqlx::query(
                "INSERT INTO notice_results (link_id, result_hash) VALUES ($1, $2) ON CONFLICT (link_id, result_hash) DO NOTHING",
            )
            .bind(&link.id)
            .bind(hash)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        if !baseline {
            sqlx::query("INSERT INTO notice_baselines (link_id, at) VALUES ($1, $2) ON CONFLICT (link_id) DO NOTHING")
                .bind(&link.id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(match (baseline, added) {
            (false, _) => Seen::Baseline,
            (true, 0) => Seen::Nothing,
            (true, _) => Seen::New,
        })
    }

    /// Sweeps every `every` until the task is aborted; a failed sweep is logged and retried.
    pub fn start(self: std::sync::Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            // The first sweep one period after start (a restart does not read every record at once).
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match self.sweep(Utc::now()).await {
                    Ok(s) => tracing::debug!(?s, "new-results sweep"),
                    Err(e) => tracing::warn!(error = %e, "new-results sweep failed"),
                }
            }
        })
    }
}

/// What a link's sweep found.
enum Seen {
    /// First look: recorded, not told.
    Baseline,
    New,
    Nothing,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_and_result_observations_are_results_vital_signs_and_problems_are_not() {
        let obs = |cat: &str| json!({"resourceType": "Observation", "category": [{"coding": [{"code": cat}]}]});
        assert!(is_result(&obs("laboratory")));
        assert!(is_result(&obs("imaging")));
        assert!(!is_result(&obs("vital-signs")));
        assert!(!is_result(&obs("social-history")));
        assert!(!is_result(&json!({"resourceType": "Observation"})));
        assert!(is_result(&json!({"resourceType": "DiagnosticReport"})));
        assert!(!is_result(&json!({"resourceType": "Condition", "category": [{"coding": [{"code": "laboratory"}]}]})));
    }

    #[test]
    fn a_kept_hash_names_neither_the_link_nor_the_result() {
        let h = result_hash("link-1", "Observation/ehr.obs-10015");
        assert_eq!(h.len(), 64);
        assert!(!h.contains("obs") && !h.contains("link"));
        assert_ne!(h, result_hash("link-2", "Observation/ehr.obs-10015"), "per link");
    }
}
