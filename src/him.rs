//! What Health Information Management staff do to the policy's inputs: release a held
//! result, record a patient's review-first preference, record or revoke a partner consent.
//! Each checks that the caller is staff and that what it names exists, then writes one row;
//! nothing else changes. The CLI and the admin API both call these. Also the labels report:
//! every record of the patient index as the labeling service labelled it, counted.

use crate::aggregate::Aggregator;
use crate::auth::Access;
use crate::policy::config::is_known_label;
use crate::policy::holds::PolicyLedger;
use std::sync::Arc;

/// How long a staff search waits for a source that lists no patients to answer an
/// on-demand lookup (`crate::identity`).
const LOOKUP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum HimError {
    #[error("this is for staff")]
    NotStaff,
    #[error("no patient {0}")]
    UnknownPatient(String),
    #[error("{0} is not in this patient's record")]
    UnknownResource(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

pub struct Him {
    aggregator: Arc<Aggregator>,
    ledger: PolicyLedger,
}

impl Him {
    pub fn new(aggregator: Arc<Aggregator>, ledger: PolicyLedger) -> Him {
        Him { aggregator, ledger }
    }

    /// The gateway id of a patient named by gateway id or `source/source-id`.
    /// A record of a source that lists no patients is looked up there first.
    pub async fn patient_id(&self, named: &str) -> Result<String, HimError> {
        let index = self.aggregator.index();
        let deadline = tokio::time::Instant::now() + LOOKUP_DEADLINE;
        let found = match named.split_once('/') {
            Some((source, id)) => index.member(source, id, deadline).await?,
            None => index.resolve(named).await?.map(|l| l.gateway_id),
        };
        found.ok_or_else(|| HimError::UnknownPatient(named.to_string()))
    }

    /// The labels report over every person in the patient index (see
    /// [`crate::label::report`]): what was labelled per category, and the unlabelled items
    /// whose words ask for a review. Staff only; each record read is in the access log
    /// (action `labels-report`) before the report is returned, and a failed write fails it.
    pub async fn labels_report(
        &self,
        access: &Access,
        review: &crate::label::report::ReviewTerms,
        audit: &crate::audit::AuditLog,
    ) -> Result<crate::label::report::LabelsReport, HimError> {
        if !access.is_staff() {
            return Err(HimError::NotStaff);
        }
        let mut report = crate::label::report::LabelsReport::default();
        for gateway_id in self.aggregator.index().gateway_ids().await? {
            let Ok(record) = self.aggregator.record(&gateway_id).await else { continue };
            let entry = crate::audit::AuditEntry::of(
                access,
                "labels-report",
                "portico labels report".into(),
                Some(gateway_id.clone()),
                "success",
                None,
            );
            audit.record(&entry).await?;
            report.add_record(&gateway_id, &record.resources, &record.label_rules, review);
        }
        Ok(report)
    }

    /// Releases a held result (`Type/id`) of a patient. True when newly released.
    pub async fn release(&self, access: &Access, patient: &str, resource: &str, by: &str) -> Result<bool, HimError> {
        staff(access)?;
        let patient_id = self.patient_id(patient).await?;
        let record = self.aggregator.record(&patient_id).await.map_err(|_| HimError::UnknownPatient(patient.into()))?;
        let (t, id) =
            resource.split_once('/').ok_or_else(|| HimError::Invalid(format!("`{resource}` is not Type/id")))?;
        let kept = record.get(t, id).ok_or_else(|| HimError::UnknownResource(resource.into()))?;
        // Release under the id the record uses, whichever alias was named.
        let key = format!("{t}/{}", kept["id"].as_str().unwrap_or(id));
        if by.trim().is_empty() {
            return Err(HimError::Invalid("say who releases the result (--by)".into()));
        }
        Ok(self.ledger.release(&patient_id, &key, by).await?)
    }

    /// Sets the labels whose results the patient sees only after clinician review.
    pub async fn set_preferences(&self, access: &Access, patient: &str, labels: &[String]) -> Result<(), HimError> {
        staff(access)?;
        if let Some(bad) = labels.iter().find(|l| !is_known_label(l)) {
            return Err(HimError::Invalid(format!("`{bad}` is not a known security label")));
        }
        let patient_id = self.patient_id(patient).await?;
        Ok(self.ledger.set_preferences(&patient_id, labels).await?)
    }

    /// Records a patient's consent for a partner; returns the consent id.
    pub async fn add_consent(
        &self,
        access: &Access,
        patient: &str,
        partner: &str,
        purposes: &[String],
        part2: bool,
        by: &str,
    ) -> Result<String, HimError> {
        staff(access)?;
        if partner.trim().is_empty() || purposes.is_empty() {
            return Err(HimError::Invalid("a consent names a partner and at least one purpose".into()));
        }
        if let Some(bad) = purposes.iter().find(|p| !crate::policy::config::KNOWN_PURPOSES.contains(&p.as_str())) {
            return Err(HimError::Invalid(format!("`{bad}` is not a known purpose of use")));
        }
        let patient_id = self.patient_id(patient).await?;
        Ok(self.ledger.add_consent(&patient_id, partner, purposes, part2, by).await?)
    }

    pub async fn revoke_consent(&self, access: &Access, id: &str) -> Result<bool, HimError> {
        staff(access)?;
        Ok(self.ledger.revoke_consent(id).await?)
    }
}

fn staff(access: &Access) -> Result<(), HimError> {
    if access.is_staff() {
        Ok(())
    } else {
        Err(HimError::NotStaff)
    }
}
