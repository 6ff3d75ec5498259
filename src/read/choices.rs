//! The record picker's entries: each record an account may open, named as the account may
//! see it. The name comes from the Patient resource the policy releases to that account for
//! that record — never from the unreleased record — so a record the account may no longer
//! see (a proxy whose access ended) is listed without its name.

use super::Reader;
use crate::auth::accounts::PatientLink;
use serde::Serialize;
use serde_json::Value;

/// One record an account may open, as the pages show it.
#[derive(Debug, Clone, Serialize)]
pub struct RecordChoice {
    pub id: String,
    pub name: String,
    pub relation: String,
}

impl Reader {
    /// The account's records, in link order, named from what each link's viewer is
    /// released. Names are not logged as accesses: opening a record is.
    pub async fn choices(&self, account_id: &str, links: Vec<PatientLink>) -> Vec<RecordChoice> {
        let mut out = Vec::with_capacity(links.len());
        for link in links {
            let access = crate::auth::access_for_link(account_id, &link);
            let Some(own) = self.own_id(&access).await else { continue };
            let name = match self.visible_for_one(&access, &own).await {
                Ok(v) => v.released.patient().as_ref().map(display_name).unwrap_or_else(unnamed),
                Err(_) => unnamed(),
            };
            out.push(RecordChoice { id: link.id, name, relation: relation_words(&link.relationship) });
        }
        out
    }
}

/// The name shown for a record whose Patient the account may not see, in the request's language.
fn unnamed() -> String {
    crate::i18n::t("record-unnamed")
}

/// The relationship in words, in the language of the request (catalogue keys `relation-*`).
fn relation_words(code: &str) -> String {
    crate::i18n::t(match code {
        "SELF" => "relation-self",
        "MTH" | "FTH" | "PRN" => "relation-child",
        "GUARD" => "relation-guardianship",
        "CAREGIVER" => "relation-care",
        _ => "relation-family",
    })
}

fn display_name(patient: &Value) -> String {
    let name = patient.get("name").and_then(|n| n.get(0));
    let given = name.and_then(|n| n.get("given")).and_then(|g| g.get(0)).and_then(|g| g.as_str()).unwrap_or("");
    let family = name.and_then(|n| n.get("family")).and_then(|f| f.as_str()).unwrap_or("");
    let full = format!("{given} {family}").trim().to_string();
    if full.is_empty() {
        unnamed()
    } else {
        full
    }
}
