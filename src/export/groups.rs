//! Groups for `Group/{id}/$export`: partner rosters from the config (`[[export.groups]]`,
//! members named by source record) and Group resources held by a source (named
//! `{source}.{group id}`, members' `entity` references to that source's patients). Either
//! way the members are mapped through the patient index to gateway patient ids. It never
//! reads clinical data and never decides who may export a Group.

use crate::config::ExportGroup;
use crate::identity::PatientIndex;
use crate::sources::SharedSource;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("no such Group")]
    Unknown,
    #[error("the Group's source could not be read: {0}")]
    Source(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

pub struct Groups {
    rosters: Vec<ExportGroup>,
    sources: Vec<SharedSource>,
    index: Arc<PatientIndex>,
    deadline: Duration,
}

/// A Group's members as gateway patient ids, and how many members the index does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Members {
    pub patients: Vec<String>,
    pub unknown: usize,
}

impl Groups {
    pub fn new(
        rosters: Vec<ExportGroup>,
        sources: Vec<SharedSource>,
        index: Arc<PatientIndex>,
        deadline: Duration,
    ) -> Groups {
        Groups { rosters, sources, index, deadline }
    }

    /// The members of Group `id`.
    pub async fn members(&self, id: &str) -> Result<Members, GroupError> {
        if let Some(g) = self.rosters.iter().find(|g| g.id == id) {
            let named: Vec<(&str, &str)> = g.members.iter().filter_map(|m| m.split_once('/')).collect();
            return self.map(named).await;
        }
        let (source_name, group_id) = id.split_once('.').ok_or(GroupError::Unknown)?;
        let source = self.sources.iter().find(|s| s.name() == source_name).ok_or(GroupError::Unknown)?;
        let deadline = tokio::time::Instant::now() + self.deadline;
        let found = source
            .read_many("Group", &[group_id.to_string()], deadline)
            .await
            .map_err(|e| GroupError::Source(e.to_string()))?;
        let group = found.into_iter().find(|g| g.get("id").and_then(Value::as_str) == Some(group_id));
        let group = group.ok_or(GroupError::Unknown)?;
        let references: Vec<String> = group
            .get("member")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|m| m.get("inactive").and_then(Value::as_bool) != Some(true))
            .filter_map(|m| m.pointer("/entity/reference").and_then(Value::as_str))
            // Another server's Patient/x is not this source's patient x.
            .filter_map(|r| crate::fhir::reference::parse_local(r, source.base_url()))
            .filter(|(t, _)| *t == "Patient")
            .map(|(_, pid)| pid.to_string())
            .collect();
        self.map(references.iter().map(|r| (source_name, r.as_str())).collect()).await
    }

    /// Gateway ids of the members; a member in a source that lists no patients is looked
    /// up there first.
    async fn map(&self, named: Vec<(&str, &str)>) -> Result<Members, GroupError> {
        let mut patients = BTreeSet::new();
        let mut unknown = 0;
        let deadline = tokio::time::Instant::now() + self.deadline;
        for (source, id) in named {
            match self.index.member(source, id, deadline).await? {
                Some(g) => {
                    patients.insert(g);
                }
                None => unknown += 1,
            }
        }
        Ok(Members { patients: patients.into_iter().collect(), unknown })
    }
}
