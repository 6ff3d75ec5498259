//! Who is calling and for whom: turns the request's credentials into an [`Access`] — a
//! [`Viewer`] and the patients it may reach. Credentials are SMART App Launch access tokens
//! for apps ([`oauth`], [`authorize`], [`grants`]), SMART Backend Services tokens for HIE
//! partners (`oauth::backend`), browser sessions of local or OpenID Connect accounts
//! ([`accounts`], [`oidc`], [`sessions`]) and the config's static dev tokens (loopback only),
//! each standing for one viewer; without a valid one there is no data access at all. It
//! never reads patient data.

pub mod accounts;
pub mod authorize;
pub mod email;
pub mod grants;
pub mod keyring;
pub mod language;
pub mod hashing;
pub mod oauth;
pub mod oidc;
pub mod revocation;
pub mod sessions;
pub mod sweep;
pub mod throttle;

use crate::policy::{Role, Viewer};
use std::net::IpAddr;
use subtle::ConstantTimeEq;

/// Which patients a caller may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatientScope {
    /// Staff and partners: any patient (what they see is still the policy's decision).
    Any,
    /// A patient or proxy: the one person named by a source record.
    Person { source: String, source_patient_id: String },
}

/// What a caller may reach, and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub viewer: Viewer,
    pub patients: PatientScope,
    /// The Groups this caller may export (Bulk Data): `None` any (staff, dev tokens),
    /// `Some(list)` only those (a partner's roster; empty for patients and proxies).
    pub groups: Option<Vec<String>>,
    /// What this access rests on, when it can end: what it starts (export and download
    /// jobs) belongs to it and ends with it.
    pub basis: Basis,
}

/// The account's link to a record (`account_patients.id`) and, for an app, the grant on
/// it, that an [`Access`] rests on; both `None` for staff, partners and dev tokens (a
/// partner's jobs belong to its client). Terminating the link or revoking the grant ends
/// the access, and with it the jobs started under it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Basis {
    pub link: Option<String>,
    pub grant: Option<String>,
}

impl Access {
    pub fn is_staff(&self) -> bool {
        self.viewer.role == Role::Staff && self.viewer.app_scopes.is_none()
    }
}

/// The access a live SMART token stands for: the account's relationship to the patient
/// decides the viewer (the patient, or a proxy), and the token's scopes narrow it.
pub fn access_from_bearer(b: oauth::Bearer) -> Access {
    let g = &b.grant;
    let role = if g.relationship == "SELF" {
        Role::Patient
    } else {
        Role::Proxy { relationship: g.relationship.clone(), adult_granted: g.adult_granted, teen_assent: g.teen_assent }
    };
    let scopes = crate::policy::viewer::parse_scopes(&b.scopes).unwrap_or_default();
    let viewer =
        Viewer { actor: format!("app:{}:account:{}", b.client_id, g.account_id), role, app_scopes: Some(scopes) };
    Access {
        viewer,
        patients: PatientScope::Person { source: g.source.clone(), source_patient_id: g.source_patient_id.clone() },
        groups: Some(Vec::new()),
        basis: Basis { link: Some(g.link_id.clone()), grant: Some(g.grant_id.clone()) },
    }
}

/// The access a backend services token (an HIE partner's client) stands for: the partner,
/// named by its client id, with its purpose of use; any patient (what it sees is still the
/// policy's decision for that purpose); narrowed by its system scopes exactly as an app's
/// patient scopes narrow; and only its own Groups to export.
pub fn access_for_partner(b: oauth::SystemBearer) -> Access {
    // A stored scope that no longer parses grants nothing (fail closed).
    let scopes = crate::policy::viewer::parse_scopes(&b.scopes).unwrap_or_default();
    let viewer = Viewer {
        actor: format!("client:{}", b.client_id),
        role: Role::Partner { partner: b.client_id, purpose: b.partner.purpose },
        app_scopes: Some(scopes),
    };
    Access { viewer, patients: PatientScope::Any, groups: Some(b.partner.groups), basis: Basis::default() }
}

/// The access an OAuth access token stands for (an app's for one patient, or a partner's),
/// looked up now: None when the token is unknown, expired, revoked or its client disabled.
pub async fn access_from_token(
    tokens: &oauth::Tokens,
    token: &str,
) -> Result<Option<Access>, crate::store::StoreError> {
    Ok(tokens.caller(token).await?.map(|c| match c {
        oauth::Caller::App(b) => access_from_bearer(b),
        oauth::Caller::System(b) => access_for_partner(b),
    }))
}

/// The access a signed-in account has to one record it may open (portal pages and
/// downloads): itself or a proxy, with no app scopes narrowing it.
pub fn access_for_link(account_id: &str, link: &accounts::PatientLink) -> Access {
    let role = if link.relationship == "SELF" {
        Role::Patient
    } else {
        Role::Proxy {
            relationship: link.relationship.clone(),
            adult_granted: link.adult_granted,
            teen_assent: link.teen_assent,
        }
    };
    Access {
        viewer: Viewer { actor: format!("account:{account_id}"), role, app_scopes: None },
        patients: PatientScope::Person {
            source: link.source.clone(),
            source_patient_id: link.source_patient_id.clone(),
        },
        groups: Some(Vec::new()),
        basis: Basis { link: Some(link.id.clone()), grant: None },
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("this endpoint needs a bearer token")]
    Missing,
    #[error("the bearer token is not valid")]
    Invalid,
}

/// A dev token with its viewer checked (by [`crate::settings`]).
#[derive(Debug, Clone)]
pub struct DevViewer {
    pub token: String,
    /// The viewer it stands for (`dev-token:{n}:{spec}` as its actor).
    pub viewer: Viewer,
    /// The patient (source, source id) a patient or proxy viewer acts for.
    pub patient: Option<(String, String)>,
    /// The Groups a staff or partner token may export; `None`: any.
    pub groups: Option<Vec<String>>,
}

/// The static tokens the config defines. They stay on the developer's machine: one is
/// accepted only from a loopback peer, and only while the gateway's public base URL is
/// loopback too (behind a reverse proxy every peer is the proxy, often on 127.0.0.1, so the
/// public URL is what tells).
#[derive(Debug, Clone, Default)]
pub struct DevTokens {
    entries: Vec<(String, Access)>,
    /// The public base URL is a loopback one (`http://127.0.0.1:…`, `localhost`, `[::1]`).
    loopback_base: bool,
}

/// Whether `url`'s host is a loopback address or `localhost`.
pub fn is_loopback_url(url: &str) -> bool {
    match url::Url::parse(url).ok().and_then(|u| u.host().map(|h| h.to_owned())) {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl DevTokens {
    /// From `server.dev_token` (staff) and the dev tokens' viewers the settings checked;
    /// `public_base_url` is the gateway's (the FHIR base clients see).
    pub fn from_settings(staff_token: Option<&str>, viewers: &[DevViewer], public_base_url: &str) -> DevTokens {
        let mut entries = Vec::new();
        if let Some(t) = staff_token {
            entries.push((
                t.to_string(),
                Access {
                    viewer: Viewer::new("dev-token:staff", Role::Staff),
                    patients: PatientScope::Any,
                    groups: None,
                    basis: Basis::default(),
                },
            ));
        }
        for t in viewers {
            let patients = match &t.patient {
                Some((source, id)) => PatientScope::Person { source: source.clone(), source_patient_id: id.clone() },
                None => PatientScope::Any,
            };
            entries.push((
                t.token.clone(),
                Access { viewer: t.viewer.clone(), patients, groups: t.groups.clone(), basis: Basis::default() },
            ));
        }
        let loopback_base = is_loopback_url(public_base_url);
        if !entries.is_empty() && !loopback_base {
            tracing::warn!(
                public_base_url,
                "dev tokens are configured but the public base URL is not loopback: every dev token is refused"
            );
        }
        DevTokens { entries, loopback_base }
    }

    /// Checks an `Authorization` header value from `peer`; every token is compared in
    /// constant time. A dev token from a peer that is not loopback, or on a gateway whose
    /// public base URL is not, is refused like an unknown one (`Invalid`).
    pub fn authenticate(&self, authorization: Option<&str>, peer: IpAddr) -> Result<Access, AuthError> {
        let header = authorization.ok_or(AuthError::Missing)?;
        let (scheme, token) = header.trim().split_once(' ').ok_or(AuthError::Invalid)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Invalid);
        }
        let token = token.trim().as_bytes();
        let mut found = None;
        for (expected, access) in &self.entries {
            if bool::from(token.ct_eq(expected.as_bytes())) {
                found = Some(access.clone());
            }
        }
        let access = found.ok_or(AuthError::Invalid)?;
        if !(self.loopback_base && peer.to_canonical().is_loopback()) {
            tracing::warn!(%peer, "a dev token was refused: dev tokens are accepted only on loopback");
            return Err(AuthError::Invalid);
        }
        Ok(access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_tokens_pass_and_each_stands_for_its_viewer() {
        let mother = DevViewer {
            token: "mother-of-maya-0123".into(),
            viewer: Viewer::from_spec("proxy:MTH", None).unwrap(),
            patient: Some(("ehr".into(), "pt-10007".into())),
            groups: None,
        };
        let t = DevTokens::from_settings(Some("0123456789abcdef-demo"), &[mother], "http://127.0.0.1:8080/fhir");
        let here = IpAddr::from([127, 0, 0, 1]);
        assert_eq!(t.authenticate(Some("Bearer 0123456789abcdef-demo"), here).unwrap().viewer.role, Role::Staff);
        let proxy = t.authenticate(Some("bearer mother-of-maya-0123"), here).unwrap();
        assert!(matches!(proxy.viewer.role, Role::Proxy { .. }));
        assert_eq!(proxy.patients, PatientScope::Person { source: "ehr".into(), source_patient_id: "pt-10007".into() });
        assert_eq!(t.authenticate(None, here), Err(AuthError::Missing));
        assert_eq!(t.authenticate(Some("Bearer 0123456789abcdef-dem"), here), Err(AuthError::Invalid));
        assert_eq!(t.authenticate(Some("Basic 0123456789abcdef-demo"), here), Err(AuthError::Invalid));
        assert_eq!(
            DevTokens::default().authenticate(Some("Bearer 0123456789abcdef-demo"), here),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn dev_tokens_pass_only_from_loopback_peers_on_a_loopback_public_url() {
        let token = Some("Bearer 0123456789abcdef-demo");
        let v6_loopback: IpAddr = "::1".parse().unwrap();
        let mapped_loopback: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        for base in ["http://127.0.0.1:8080/fhir", "http://localhost:8080/fhir", "http://[::1]:8080/fhir"] {
            let t = DevTokens::from_settings(Some("0123456789abcdef-demo"), &[], base);
            for peer in [IpAddr::from([127, 0, 0, 1]), IpAddr::from([127, 1, 2, 3]), v6_loopback, mapped_loopback] {
                assert!(t.authenticate(token, peer).is_ok(), "{base} from {peer}");
            }
            for peer in ["192.0.2.7", "10.0.0.1", "::ffff:192.0.2.7", "fd00::2", "0.0.0.0"] {
                let peer: IpAddr = peer.parse().unwrap();
                assert_eq!(t.authenticate(token, peer), Err(AuthError::Invalid), "{base} from {peer}");
            }
        }
        // Behind a reverse proxy on the same machine: the peer is loopback, the public URL is not.
        for base in
            ["https://portal.example.org/fhir", "http://192.0.2.7:8080/fhir", "http://localhost.example.org/fhir"]
        {
            let t = DevTokens::from_settings(Some("0123456789abcdef-demo"), &[], base);
            assert_eq!(t.authenticate(token, IpAddr::from([127, 0, 0, 1])), Err(AuthError::Invalid), "{base}");
        }
    }
}
