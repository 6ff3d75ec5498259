//! Holds: configured rules (by category, code, label, interpretation) and a patient's own
//! preference keep a result from patient-facing viewers until a clinician releases it or
//! its maximum period ends. Also the store of releases, preferences and partner consents
//! ([`PolicyLedger`]). It never holds anything from partners or staff; that is decided in
//! the decision, which asks this module only "is this resource held, and by what".

use super::config::{HoldRule, HoldsConfig};
use crate::fhir::{self, time::parse_range};
use crate::store::{Store, StoreError};
use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use std::collections::{BTreeSet, HashSet};

/// What the store says about one patient, read once per decision.
#[derive(Debug, Clone, Default)]
pub struct PatientLedger {
    /// Gateway `Type/id`s a clinician released.
    pub releases: HashSet<String>,
    /// Labels the patient asked to see only after review.
    pub preferences: BTreeSet<String>,
    pub consents: Vec<Consent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Consent {
    pub id: String,
    pub partner: String,
    pub purposes: Vec<String>,
    pub part2: bool,
}

/// The holds that match `resource` (with `labels`), in order — the configured rules, then the
/// patient's preference — each with the moment it ends (`None`: a result with no date cannot
/// be shown to have waited long enough). None once a clinician released it.
fn matching<'a>(
    holds: &'a HoldsConfig,
    ledger: &'a PatientLedger,
    resource: &'a Value,
    key: &str,
    labels: &'a BTreeSet<String>,
    zone: FixedOffset,
) -> impl Iterator<Item = (String, Option<i64>)> + 'a {
    let released = ledger.releases.contains(key);
    let issued = issued_at(resource, zone);
    let end = move |max: std::time::Duration| issued.map(|at| at + max.as_secs() as i64);
    let by_rules = holds
        .rules
        .iter()
        .filter(move |rule| !released && rule_matches(rule, resource, labels))
        .map(move |rule| (format!("hold:{}", rule.id), end(rule.max.std())));
    let by_preference = std::iter::once(())
        .filter(move |_| !released && labels.iter().any(|l| ledger.preferences.contains(l)))
        .map(move |_| ("hold:patient-preference".to_string(), end(holds.preference_max.std())));
    by_rules.chain(by_preference)
}

/// The id of the hold keeping `resource` (with `labels`) back at `now`, if any.
pub fn active_hold(
    holds: &HoldsConfig,
    ledger: &PatientLedger,
    resource: &Value,
    key: &str,
    labels: &BTreeSet<String>,
    now: DateTime<Utc>,
    zone: FixedOffset,
) -> Option<String> {
    matching(holds, ledger, resource, key, labels, zone)
        .find(|(_, end)| end.is_none_or(|e| now.timestamp() < e))
        .map(|(id, _)| id)
}

/// When the holds keeping `resource` back at `now` could first end (seconds since the
/// epoch): the earliest future end among the rules and the preference that match it. `None`
/// when nothing time-bound holds it (a clinician's release changes the ledger instead). Lets a
/// decision be reused until then and not a moment longer.
pub fn hold_ends(
    holds: &HoldsConfig,
    ledger: &PatientLedger,
    resource: &Value,
    key: &str,
    labels: &BTreeSet<String>,
    now: DateTime<Utc>,
    zone: FixedOffset,
) -> Option<i64> {
    matching(holds, ledger, resource, key, labels, zone)
        .filter_map(|(_, end)| end)
        .filter(|&e| e > now.timestamp())
        .min()
}

fn rule_matches(rule: &HoldRule, r: &Value, labels: &BTreeSet<String>) -> bool {
    let codings = |path: &str| -> Vec<(String, String)> {
        fhir::path_values(r, path)
            .into_iter()
            .flat_map(|cc| fhir::path_values(cc, "coding"))
            .filter_map(|c| Some((c.get("system")?.as_str()?.to_string(), c.get("code")?.as_str()?.to_string())))
            .collect()
    };
    rule.categories.iter().any(|c| codings("category").iter().any(|(_, code)| code == c))
        || rule.codes.iter().any(|c| codings("code").iter().any(|(s, code)| format!("{s}|{code}") == *c))
        || rule.labels.iter().any(|l| labels.contains(l))
        || rule.interpretations.iter().any(|i| codings("interpretation").iter().any(|(_, code)| code == i))
}

/// When an item came to be: `issued`, else the clinically relevant time of its type
/// (effective, occurrence, authored, recorded, onset, period start, date), else
/// `meta.lastUpdated`.
fn issued_at(r: &Value, zone: FixedOffset) -> Option<i64> {
    const INSTANTS: &[&str] = &[
        "/issued",
        "/effectiveDateTime",
        "/effectiveInstant",
        "/effectivePeriod/start",
        "/occurrenceDateTime",
        "/performedDateTime",
        "/performedPeriod/start",
        "/authoredOn",
        "/recordedDate",
        "/onsetDateTime",
        "/onsetPeriod/start",
        "/period/start",
        "/date",
        "/recorded",
        "/meta/lastUpdated",
    ];
    INSTANTS
        .iter()
        .find_map(|p| r.pointer(p).and_then(Value::as_str))
        .and_then(|t| parse_range(t, zone))
        .map(|range| range.start)
}

/// Releases, preferences and consents in the store.
#[derive(Clone)]
pub struct PolicyLedger {
    store: Store,
}

impl PolicyLedger {
    pub fn new(store: Store) -> PolicyLedger {
        PolicyLedger { store }
    }

    /// One statement for all three (it runs on every data request).
    pub async fn for_patient(&self, patient_id: &str) -> Result<PatientLedger, StoreError> {
        let rows = sqlx::query(
            "SELECT 1 AS kind, resource AS a, '' AS b, '' AS c, 0 AS d FROM hold_releases WHERE patient_id = $1 \
             UNION ALL SELECT 2, label, '', '', 0 FROM hold_preferences WHERE patient_id = $1 \
             UNION ALL SELECT 3, id, partner, purposes, part2 FROM consents WHERE patient_id = $1 AND revoked_at IS NULL",
        )
        .bind(patient_id)
        .fetch_all(&self.store.pool)
        .await?;
        let mut ledger = PatientLedger::default();
        for r in rows {
            match r.get::<i32, _>(0) {
                1 => {
                    ledger.releases.insert(r.get(1));
                }
                2 => {
                    ledger.preferences.insert(r.get(1));
                }
                _ => ledger.consents.push(Consent {
                    id: r.get(1),
                    partner: r.get(2),
                    purposes: r.get::<String, _>(3).split(',').map(str::to_string).collect(),
                    part2: r.get::<i32, _>(4) != 0,
                }),
            }
        }
        Ok(ledger)
    }

    /// Records a clinician's release of a held result. Releasing twice keeps the first.
    pub async fn release(&self, patient_id: &str, resource: &str, by: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO hold_releases (patient_id, resource, released_by, released_at) VALUES ($1, $2, $3, $4) ON CONFLICT (patient_id, resource) DO NOTHING",
        )
        .bind(patient_id)
        .bind(resource)
        .bind(by)
        .bind(Utc::now().to_rfc3339())
        .execute(&self.store.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Replaces the patient's review-first labels.
    pub async fn set_preferences(&self, patient_id: &str, labels: &[String]) -> Result<(), StoreError> {
        let mut tx = self.store.begin_write().await?;
        sqlx::query("DELETE FROM hold_preferences WHERE patient_id = $1").bind(patient_id).execute(&mut *tx).await?;
        for l in labels {
            sqlx::query("INSERT INTO hold_preferences (patient_id, label, set_at) VALUES ($1, $2, $3)")
                .bind(patient_id)
                .bind(l)
                .bind(Utc::now().to_rfc3339())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a consent; returns its id.
    pub async fn add_consent(
        &self,
        patient_id: &str,
        partner: &str,
        purposes: &[String],
        part2: bool,
        by: &str,
    ) -> Result<String, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query("INSERT INTO consents (id, patient_id, partner, purposes, part2, recorded_by, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&id)
            .bind(patient_id)
            .bind(partner)
            .bind(purposes.join(","))
            .bind(i32::from(part2))
            .bind(by)
            .bind(Utc::now().to_rfc3339())
            .execute(&self.store.pool)
            .await?;
        Ok(id)
    }

    /// Revokes a consent; false when there was no such live consent.
    pub async fn revoke_consent(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE consents SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(Utc::now().to_rfc3339())
            .bind(id)
            .execute(&self.store.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
