//! Who will see the output: the patient, a proxy (with relationship), a partner (with
//! purpose of use), staff — possibly through an app whose scopes narrow what that viewer may
//! see (scopes never widen). Also the compact viewer spec HIM uses on the command line
//! (`proxy:MTH`, `partner:hie-north:TREAT` …).

use serde::{Deserialize, Serialize};

/// Why a viewer spec or a scope string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewerError {
    #[error("unknown proxy flag `{0}` (assent, adult-granted)")]
    UnknownProxyFlag(String),
    #[error("`{0}` is not a viewer: patient, staff, proxy:REL[:assent][:adult-granted], partner:NAME:PURPOSE")]
    NotAViewer(String),
    #[error("scope `{0}` has no permissions")]
    NoPermissions(String),
    #[error("scope `{scope}` has unknown permissions `{permissions}`")]
    UnknownPermissions { scope: String, permissions: String },
    #[error("scope `{0}` names an unknown resource type")]
    UnknownResourceType(String),
    #[error("scope `{0}` has a malformed query")]
    MalformedQuery(String),
    #[error("scope `{0}`: only category= is supported in granular scopes")]
    UnsupportedQuery(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Role {
    /// The patient themself (adult or adolescent; the age decides nothing for self).
    Patient,
    /// A parent, guardian or caregiver acting for the patient.
    Proxy {
        /// v3-RoleCode relationship (MTH, FTH, PRN, GUARD, …).
        relationship: String,
        /// The patient, now an adult, has granted this proxy access.
        adult_granted: bool,
        /// The minor has assented to this proxy's access (where the jurisdiction asks).
        teen_assent: bool,
    },
    /// An HIE partner, with the purpose of use it stated.
    Partner { partner: String, purpose: String },
    /// Hospital staff (HIM): everything, nothing held.
    Staff,
}

/// One SMART scope, reduced to what narrows a viewer: a resource type (or `*`) and an
/// optional category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub resource_type: String,
    /// Grants read by id (`.read`, or `r` in v2).
    pub read: bool,
    /// Grants search (`.read`, or `s` in v2).
    pub search: bool,
    /// `(system, code)` from a v2 granular scope `?category=system|code`.
    pub category: Option<(Option<String>, String)>,
}

/// What a request does with a resource type, for scope checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interaction {
    Read,
    Search,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Viewer {
    /// Who is acting, for audit and explanation (never a patient's name).
    pub actor: String,
    pub role: Role,
    /// When an app acts for this viewer: its granted scopes.
    pub app_scopes: Option<Vec<Scope>>,
}

impl Viewer {
    pub fn new(actor: impl Into<String>, role: Role) -> Viewer {
        Viewer { actor: actor.into(), role, app_scopes: None }
    }

    /// Whether an app's scopes allow this interaction on this type at all (without scopes,
    /// nothing is narrowed). Categories narrow further in the decision.
    pub fn permits(&self, resource_type: &str, interaction: Interaction) -> bool {
        let Some(scopes) = &self.app_scopes else { return true };
        scopes.iter().any(|s| {
            (s.resource_type == "*" || s.resource_type == resource_type)
                && match interaction {
                    Interaction::Read => s.read,
                    Interaction::Search => s.search,
                }
        })
    }

    /// Self, proxies and apps acting for them: the viewers holds and exclusions apply to.
    pub fn is_patient_facing(&self) -> bool {
        matches!(self.role, Role::Patient | Role::Proxy { .. })
    }

    /// Sensitivity labels disclose the fact they label: proxies and apps never get them.
    pub fn strips_sensitivity_labels(&self) -> bool {
        matches!(self.role, Role::Proxy { .. }) || (self.app_scopes.is_some() && self.is_patient_facing())
    }

    /// Parses `patient`, `staff`, `proxy:REL[:assent][:adult-granted]`,
    /// `partner:NAME:PURPOSE`, with optional app scopes.
    pub fn from_spec(spec: &str, scopes: Option<&str>) -> Result<Viewer, ViewerError> {
        let parts: Vec<&str> = spec.split(':').collect();
        let role = match parts.as_slice() {
            ["patient" | "self"] => Role::Patient,
            ["staff"] => Role::Staff,
            ["proxy", rel, flags @ ..] if !rel.is_empty() => {
                if let Some(bad) = flags.iter().find(|f| !matches!(**f, "assent" | "adult-granted")) {
                    return Err(ViewerError::UnknownProxyFlag((*bad).to_string()));
                }
                Role::Proxy {
                    relationship: rel.to_uppercase(),
                    adult_granted: flags.contains(&"adult-granted"),
                    teen_assent: flags.contains(&"assent"),
                }
            }
            ["partner", name, purpose] if !name.is_empty() && !purpose.is_empty() => {
                Role::Partner { partner: name.to_string(), purpose: purpose.to_uppercase() }
            }
            _ => return Err(ViewerError::NotAViewer(spec.to_string())),
        };
        let app_scopes = scopes.map(parse_scopes).transpose()?;
        Ok(Viewer { actor: format!("viewer-spec:{spec}"), role, app_scopes })
    }
}

/// Parses SMART v1 (`patient/Observation.read`) and v2 (`patient/Observation.rs`,
/// `patient/Observation.rs?category=http://…|laboratory`) scopes that grant reading. Scopes
/// that grant no read (`launch`, `openid`, writes only) are skipped.
pub fn parse_scopes(text: &str) -> Result<Vec<Scope>, ViewerError> {
    let mut out = Vec::new();
    for s in text.split_whitespace() {
        let Some((context, rest)) = s.split_once('/') else { continue };
        if !matches!(context, "patient" | "user" | "system") {
            continue;
        }
        let (resource_and_perm, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        let (resource_type, perms) =
            resource_and_perm.rsplit_once('.').ok_or_else(|| ViewerError::NoPermissions(s.to_string()))?;
        let (read, search) = match perms {
            "read" | "*" => (true, true),
            "write" => (false, false),
            v2 if !v2.is_empty() && v2.chars().all(|c| "cruds".contains(c)) => (v2.contains('r'), v2.contains('s')),
            _ => return Err(ViewerError::UnknownPermissions { scope: s.to_string(), permissions: perms.to_string() }),
        };
        let reads = read || search;
        if !(resource_type == "*" || crate::fhir::is_served_type(resource_type)) {
            return Err(ViewerError::UnknownResourceType(s.to_string()));
        }
        let category = match query {
            None => None,
            Some(q) => {
                let (k, v) = q.split_once('=').ok_or_else(|| ViewerError::MalformedQuery(s.to_string()))?;
                if k != "category" {
                    return Err(ViewerError::UnsupportedQuery(s.to_string()));
                }
                let v = percent_encoding::percent_decode_str(v).decode_utf8_lossy().to_string();
                Some(match v.split_once('|') {
                    Some((sys, code)) => (Some(sys.to_string()).filter(|s| !s.is_empty()), code.to_string()),
                    None => (None, v),
                })
            }
        };
        if reads {
            out.push(Scope { resource_type: resource_type.to_string(), read, search, category });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_refuse_clearly() {
        assert_eq!(Viewer::from_spec("patient", None).unwrap().role, Role::Patient);
        assert_eq!(
            Viewer::from_spec("proxy:mth:assent", None).unwrap().role,
            Role::Proxy { relationship: "MTH".into(), adult_granted: false, teen_assent: true }
        );
        assert_eq!(
            Viewer::from_spec("partner:hie:treat", None).unwrap().role,
            Role::Partner { partner: "hie".into(), purpose: "TREAT".into() }
        );
        assert!(Viewer::from_spec("proxy:MTH:maybe", None).unwrap_err().to_string().contains("maybe"));
        assert!(Viewer::from_spec("nobody", None).is_err());
    }

    #[test]
    fn scopes_v1_v2_and_granular() {
        let s = parse_scopes("launch/patient openid patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory patient/Condition.read patient/Patient.c").unwrap();
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(
            s[0].category,
            Some((Some("http://terminology.hl7.org/CodeSystem/observation-category".into()), "laboratory".into()))
        );
        assert_eq!(s[1].resource_type, "Condition");
        assert!(parse_scopes("patient/Observation.xyz").is_err());
        assert!(parse_scopes("patient/Spaceship.rs").is_err());
    }
}
