//! Holds: configured rules (by category, code, label, interpretation) and a patient's own
//! preference keep a result from patient-facing viewers until a clinician releases it or
//! its maximum period ends. Also the store of releases, preferences and partner consents
//! ([`PolicyLedger`]). It never holds anything from partners or staff; that is decided in
//! the decision, which asks this module only "is this resource held, and by what".

use super::config::{HoldRule, HoldsConfig};
use crate::fhir::{self, time::parse_range};
use crate::identity::{LinkMember, PatientLink, RESOLVED_ID};
use crate::store::{inline, Store, StoreError};
use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use std::collections::{BTreeSet, HashSet};
use std::sync::LazyLock;

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

/// A patient's releases (kind 1), preferences (2) and live consents (3), as rows of
/// (kind, a, b, c, d, e) that [`LedgerRow`] reads.
const LEDGER_ROWS: &str =
    "SELECT 1 AS kind, resource AS a, '' AS b, '' AS c, 0 AS d, '' AS e FROM hold_releases WHERE patient_id = $1 \
     UNION ALL SELECT 2, label, '', '', 0, '' FROM hold_preferences WHERE patient_id = $1 \
     UNION ALL SELECT 3, id, partner, purposes, part2, '' FROM consents WHERE patient_id = $1 AND revoked_at IS NULL";

/// One row of a ledger statement: its kind (0 a link member, 1 a release, 2 a preference,
/// 3 a consent), then five columns whose meaning depends on it.
struct LedgerRow {
    kind: i64,
    a: String,
    b: String,
    c: String,
    d: i64,
    e: String,
}

impl LedgerRow {
    fn from_pool(r: &sqlx::any::AnyRow) -> Result<LedgerRow, sqlx::Error> {
        Ok(LedgerRow {
            kind: r.try_get::<i64, _>(0).or_else(|_| r.try_get::<i32, _>(0).map(i64::from))?,
            a: r.try_get(1)?,
            b: r.try_get(2)?,
            c: r.try_get(3)?,
            d: r.try_get::<i64, _>(4).or_else(|_| r.try_get::<i32, _>(4).map(i64::from))?,
            e: r.try_get(5)?,
        })
    }

    fn from_inline(r: &inline::Values) -> Result<LedgerRow, inline::InlineError> {
        use inline::{integer, text};
        Ok(LedgerRow { kind: integer(r, 0)?, a: text(r, 1)?, b: text(r, 2)?, c: text(r, 3)?, d: integer(r, 4)?, e: text(r, 5)? })
    }
}

impl PatientLedger {
    /// Adds one ledger row (kinds 1 to 3).
    fn add(&mut self, r: LedgerRow) {
        match r.kind {
            1 => {
                self.releases.insert(r.a);
            }
            2 => {
                self.preferences.insert(r.a);
            }
            _ => self.consents.push(Consent {
                id: r.a,
                partner: r.b,
                purposes: r.c.split(',').map(str::to_string).collect(),
                part2: r.d != 0,
            }),
        }
    }
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

    /// One statement for all three.
    pub async fn for_patient(&self, patient_id: &str) -> Result<PatientLedger, StoreError> {
        let mut ledger = PatientLedger::default();
        self.rows(LEDGER_ROWS, patient_id).await?.into_iter().for_each(|r| ledger.add(r));
        Ok(ledger)
    }

    /// The rows of a ledger statement: read on the calling thread where the store allows it
    /// (an SQLite file, see [`crate::store::inline`]), else — and whenever that fails —
    /// through the pool.
    async fn rows(&self, sql: &'static str, patient_id: &str) -> Result<Vec<LedgerRow>, StoreError> {
        if let Some(inline) = &self.store.inline {
            match inline.rows(sql, patient_id, LedgerRow::from_inline) {
                Ok(rows) => return Ok(rows),
                Err(e) => tracing::debug!(error = %e, "ledger read inline failed; reading through the pool"),
            }
        }
        let rows = sqlx::query(sql).bind(patient_id).fetch_all(&self.store.pool).await?;
        Ok(rows.iter().map(LedgerRow::from_pool).collect::<Result<_, _>>()?)
    }

    /// The link a requested patient id resolves to (as `PatientIndex::resolve` finds it)
    /// and that patient's ledger, in one statement: it runs on every data request. `None`
    /// when the id is no one's.
    pub async fn with_link(&self, patient_id: &str) -> Result<Option<(PatientLink, PatientLedger)>, StoreError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "WITH wanted (id) AS (SELECT {RESOLVED_ID}) \
                 SELECT 0 AS kind, l.gateway_id AS a, l.source AS b, l.source_patient_id AS c, 0 AS d, l.reason AS e \
                 FROM patient_links l JOIN wanted w ON l.gateway_id = w.id \
                 UNION ALL SELECT 1, r.resource, '', '', 0, '' FROM hold_releases r JOIN wanted w ON r.patient_id = w.id \
                 UNION ALL SELECT 2, p.label, '', '', 0, '' FROM hold_preferences p JOIN wanted w ON p.patient_id = w.id \
                 UNION ALL SELECT 3, c.id, c.partner, c.purposes, c.part2, '' FROM consents c JOIN wanted w \
                 ON c.patient_id = w.id WHERE c.revoked_at IS NULL"
            )
        });
        if !crate::fhir::is_valid_id(patient_id) {
            return Ok(None);
        }
        let (mut gateway_id, mut members) = (None, Vec::new());
        let mut ledger = PatientLedger::default();
        for r in self.rows(SQL.as_str(), patient_id).await? {
            if r.kind != 0 {
                ledger.add(r);
                continue;
            }
            gateway_id.get_or_insert(r.a);
            members.push(LinkMember { source: r.b, source_patient_id: r.c, reason: r.e });
        }
        Ok(gateway_id.map(|id| (PatientLink::of(id, members), ledger)))
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(store: &Store, sql: &str, binds: &[&str]) {
        let mut q = sqlx::query(sql);
        for b in binds {
            q = q.bind(*b);
        }
        q.execute(&store.pool).await.unwrap();
    }

    #[tokio::test]
    async fn the_link_and_ledger_statement_reads_what_resolve_and_for_patient_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/l.db", dir.path().display()), 2).await.unwrap();
        let link = "INSERT INTO patient_links (source, source_patient_id, gateway_id, reason, linked_at) VALUES ($1, $2, $3, $4, 'now')";
        run(&store, link, &["lab", "L1", "pt-a", "identifier"]).await;
        run(&store, link, &["ehr", "E1", "pt-a", "first"]).await;
        run(&store, link, &["ehr", "E2", "pt-b", "first"]).await;
        run(&store, "INSERT INTO patient_id_aliases (old_id, gateway_id) VALUES ($1, $2)", &["pt-old", "pt-a"]).await;
        let ledger = PolicyLedger::new(store.clone());
        ledger.release("pt-a", "Observation/o1", "dr").await.unwrap();
        ledger.release("pt-b", "Observation/o9", "dr").await.unwrap();
        ledger.set_preferences("pt-a", &["sensitive".into()]).await.unwrap();
        let kept = ledger.add_consent("pt-a", "hie", &["TREAT".into(), "ETREAT".into()], true, "him").await.unwrap();
        let gone = ledger.add_consent("pt-a", "payer", &["HPAYMT".into()], false, "him").await.unwrap();
        assert!(ledger.revoke_consent(&gone).await.unwrap());

        let index = crate::identity::PatientIndex::open(store.clone()).await.unwrap();
        for asked in ["pt-a", "pt-old"] {
            let (got_link, got_ledger) = ledger.with_link(asked).await.unwrap().expect("a link");
            assert_eq!(Some(&got_link), index.resolve(asked).await.unwrap().as_ref(), "{asked}");
            assert_eq!(got_link.gateway_id, "pt-a");
            assert_eq!(got_link.members.len(), 2);
            let alone = ledger.for_patient("pt-a").await.unwrap();
            assert_eq!(got_ledger.releases, alone.releases);
            assert_eq!(got_ledger.releases.iter().collect::<Vec<_>>(), ["Observation/o1"], "not pt-b's");
            assert_eq!(got_ledger.preferences, alone.preferences);
            assert_eq!(got_ledger.consents, alone.consents);
            assert_eq!(got_ledger.consents.len(), 1, "the revoked consent is not read");
            assert_eq!(got_ledger.consents[0].id, kept);
            assert!(got_ledger.consents[0].part2);
            assert_eq!(got_ledger.consents[0].purposes, ["TREAT", "ETREAT"]);
        }
        let (b, b_ledger) = ledger.with_link("pt-b").await.unwrap().unwrap();
        assert_eq!(b.members.len(), 1);
        assert!(b_ledger.preferences.is_empty() && b_ledger.consents.is_empty());
        assert!(ledger.with_link("pt-none").await.unwrap().is_none());
        assert!(ledger.with_link("bad\u{0}id").await.unwrap().is_none(), "not an id: no one, not a store error");

        // Read on the calling thread (an SQLite file), the same as through the pool
        // (PostgreSQL's way, and the fallback).
        assert!(store.inline.is_some());
        let pooled = PolicyLedger::new(Store { inline: None, ..store.clone() });
        for asked in ["pt-a", "pt-old", "pt-b", "pt-none"] {
            let (inline, through_pool) =
                (ledger.with_link(asked).await.unwrap(), pooled.with_link(asked).await.unwrap());
            assert_eq!(inline.is_some(), asked != "pt-none");
            assert_eq!(inline.map(|(l, d)| (l, d.consents)), through_pool.map(|(l, d)| (l, d.consents)), "{asked}");
        }

        // When the inline read fails (here: a file it cannot open), the pool answers.
        let missing = dir.path().join("missing");
        let unreadable = crate::store::inline::InlineReads::new(&missing.join("l.db"), &missing.join("l-audit.db"));
        let failing = PolicyLedger::new(Store { inline: Some(std::sync::Arc::new(unreadable)), ..store.clone() });
        let (link, got) = failing.with_link("pt-old").await.unwrap().expect("a link through the pool");
        assert_eq!((link.gateway_id.as_str(), got.consents.len(), got.preferences.len()), ("pt-a", 1, 1));
    }
}
