//! The authorization request of SMART App Launch (standalone, patient context): checking it
//! (client and redirect URI first — before they are verified, errors go to an error page,
//! never to the redirect URI), PKCE S256 required, `aud` must be this FHIR server, scopes in
//! SMART v1 and v2 syntax narrowed to what the app may ask for, and the words the consent
//! page uses for each scope. It knows nothing of HTTP or HTML.

use crate::i18n::{t, tr};
use serde::{Deserialize, Serialize};

/// The app as the authorization endpoint needs it.
#[derive(Debug, Clone)]
pub struct AppView {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub allowed_scopes: Vec<String>,
}

/// The request's parameters, as sent (GET query or POST form).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub aud: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub nonce: Option<String>,
    pub launch: Option<String>,
}

/// A checked request waiting for sign-in, a patient and consent (kept in the session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAuthorization {
    pub client_id: String,
    pub app_name: String,
    pub redirect_uri: String,
    pub state: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    /// The scopes that may be granted (asked for, and allowed for the app).
    pub scopes: Vec<String>,
    /// The account-patient link chosen on the picker.
    pub link_id: Option<String>,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Client or redirect URI not verified: show an error page, redirect nowhere.
    Page(String),
    /// Tell the app, at its verified redirect URI (RFC 6749 §4.1.2.1).
    Redirect { redirect_uri: String, error: &'static str, description: String, state: Option<String> },
}

/// The longest value accepted for each request parameter (bytes). Anything longer is
/// refused on an error page before anything is looked up or stored.
const MAX_LENGTHS: &[(&str, usize)] = &[
    ("response_type", 32),
    ("client_id", 256),
    ("redirect_uri", 2048),
    ("scope", 4096),
    ("state", 512),
    ("aud", 2048),
    ("code_challenge", 128),
    ("code_challenge_method", 16),
    ("nonce", 512),
    ("launch", 512),
];

/// Refuses a request with an over-long parameter (a page, never a redirect: the request
/// has not been checked).
pub fn check_lengths(params: &AuthorizeParams) -> Result<(), Refusal> {
    let values = [
        &params.response_type,
        &params.client_id,
        &params.redirect_uri,
        &params.scope,
        &params.state,
        &params.aud,
        &params.code_challenge,
        &params.code_challenge_method,
        &params.nonce,
        &params.launch,
    ];
    for ((name, max), value) in MAX_LENGTHS.iter().zip(values) {
        if value.as_ref().is_some_and(|v| v.len() > *max) {
            let args = [("name", (*name).into()), ("max", (*max).into())];
            return Err(Refusal::Page(tr("authorize-refused-too-long", &args)));
        }
    }
    Ok(())
}

/// Checks an authorization request against the app's registration.
pub fn check(
    params: &AuthorizeParams,
    app: Option<&AppView>,
    fhir_base: &str,
) -> Result<PendingAuthorization, Refusal> {
    check_lengths(params)?;
    let client_id = params
        .client_id
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Refusal::Page(t("authorize-refused-no-client")))?;
    let app = app.ok_or_else(|| Refusal::Page(tr("authorize-refused-unknown-app", &[("client", client_id.into())])))?;
    let redirect_uri =
        params.redirect_uri.as_deref().ok_or_else(|| Refusal::Page(t("authorize-refused-no-redirect")))?;
    if !app.redirect_uris.iter().any(|r| r == redirect_uri) {
        return Err(Refusal::Page(t("authorize-refused-other-redirect")));
    }
    let state = params.state.clone();
    let refuse = |error: &'static str, description: &str| Refusal::Redirect {
        redirect_uri: redirect_uri.to_string(),
        error,
        description: description.to_string(),
        state: state.clone(),
    };
    if params.response_type.as_deref() != Some("code") {
        return Err(refuse("unsupported_response_type", "response_type must be code"));
    }
    let state =
        params.state.clone().filter(|s| !s.is_empty()).ok_or_else(|| refuse("invalid_request", "state is required"))?;
    let challenge = params.code_challenge.clone().filter(|c| !c.is_empty()).ok_or_else(|| {
        refuse("invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256")
    })?;
    if params.code_challenge_method.as_deref() != Some("S256") {
        return Err(refuse("invalid_request", "code_challenge_method must be S256"));
    }
    if !(43..=128).contains(&challenge.len())
        || !challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(refuse("invalid_request", "code_challenge is not a base64url S256 challenge"));
    }
    if params.aud.as_deref().map(|a| a.trim_end_matches('/')) != Some(fhir_base.trim_end_matches('/')) {
        return Err(refuse("invalid_request", "aud must be this FHIR server's base URL"));
    }
    let asked = params.scope.as_deref().unwrap_or("");
    let scopes = grantable(asked, &app.allowed_scopes);
    if !scopes.iter().any(|s| is_resource_scope(s)) {
        return Err(refuse("invalid_scope", "no patient data scope the app may ask for was requested"));
    }
    Ok(PendingAuthorization {
        client_id: app.client_id.clone(),
        app_name: app.name.clone(),
        redirect_uri: redirect_uri.to_string(),
        state,
        code_challenge: challenge,
        nonce: params.nonce.clone(),
        scopes,
        link_id: None,
    })
}

fn is_resource_scope(s: &str) -> bool {
    s.starts_with("patient/")
}

/// The requested scopes that are well formed, patient-level or identity/launch scopes, and
/// allowed for the app (an allowed `patient/*.read` / `patient/*.rs` covers any type's read).
pub fn grantable(asked: &str, allowed: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in asked.split_whitespace() {
        let ok = match s {
            "launch/patient" | "openid" | "fhirUser" | "offline_access" | "online_access" => {
                allowed.iter().any(|a| a == s)
            }
            _ if is_resource_scope(s) => {
                crate::policy::viewer::parse_scopes(s).is_ok_and(|p| !p.is_empty())
                    && allowed.iter().any(|a| covers(a, s))
            }
            _ => false,
        };
        if ok && !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    out
}

/// True when an allowed scope covers a requested one.
fn covers(allowed: &str, asked: &str) -> bool {
    if allowed == asked {
        return true;
    }
    let (Some((a_type, a_perm)), Some((q_type, q_perm))) = (split(allowed), split(asked)) else { return false };
    if allowed.contains('?') || !(a_type == "*" || a_type == q_type) {
        return false;
    }
    let grants = |p: &str| -> (bool, bool) {
        match p {
            "read" | "*" => (true, true),
            v2 => (v2.contains('r'), v2.contains('s')),
        }
    };
    let (ar, as_) = grants(a_perm);
    let (qr, qs) = grants(q_perm);
    let asks_writes = match q_perm {
        "read" => false,
        "write" | "*" => true,
        v2 => v2.chars().any(|c| "cud".contains(c)),
    };
    (ar || !qr) && (as_ || !qs) && !asks_writes
}

/// `patient/Observation.rs?category=x` → ("Observation", "rs").
fn split(scope: &str) -> Option<(&str, &str)> {
    let rest = scope.strip_prefix("patient/")?;
    let rest = rest.split('?').next()?;
    rest.rsplit_once('.')
}

/// The consent page's words for a scope.
pub fn describe(scope: &str) -> String {
    use crate::i18n::{t, tr};
    match scope {
        "launch/patient" => return t("scope-launch-patient"),
        "openid" | "fhirUser" => return t("scope-identity"),
        "offline_access" => return t("scope-offline"),
        "online_access" => return t("scope-online"),
        _ => {}
    }
    let Some((kind, _)) = split(scope) else { return scope.to_string() };
    let category = scope.split_once("category=").map(|(_, c)| c.rsplit('|').next().unwrap_or(c).to_string());
    let key = match (kind, category.as_deref()) {
        ("Observation", Some("laboratory")) => "scope-what-labs",
        ("Observation", Some("vital-signs")) => "scope-what-vitals",
        ("Observation", Some("social-history")) => "scope-what-social-history",
        ("Observation", _) => "scope-what-observations",
        ("Condition", _) => "scope-what-conditions",
        ("MedicationRequest", _) => "scope-what-medications",
        ("AllergyIntolerance", _) => "scope-what-allergies",
        ("Immunization", _) => "scope-what-immunizations",
        ("Encounter", _) => "scope-what-encounters",
        ("DocumentReference", _) => "scope-what-documents",
        ("DiagnosticReport", _) => "scope-what-reports",
        ("Procedure", _) => "scope-what-procedures",
        ("CarePlan", _) => "scope-what-care-plans",
        ("Goal", _) => "scope-what-goals",
        ("CareTeam", _) => "scope-what-care-team",
        ("Patient", _) => "scope-what-patient",
        ("RelatedPerson", _) => "scope-what-related-persons",
        ("Practitioner" | "PractitionerRole" | "Organization" | "Location", _) => "scope-what-places",
        ("Provenance", _) => "scope-what-provenance",
        ("*", _) => "scope-what-everything",
        _ => return tr("scope-read", &[("what", kind.into())]),
    };
    tr("scope-read", &[("what", t(key).into())])
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "http://127.0.0.1:8080/fhir";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn app() -> AppView {
        AppView {
            client_id: "app".into(),
            name: "Tracker".into(),
            redirect_uris: vec!["https://app.example/cb".into()],
            allowed_scopes: [
                "launch/patient",
                "openid",
                "fhirUser",
                "offline_access",
                "patient/*.rs",
                "patient/Observation.read",
            ]
            .iter()
            .map(ToString::to_string)
            .collect(),
        }
    }

    fn params() -> AuthorizeParams {
        AuthorizeParams {
            response_type: Some("code".into()),
            client_id: Some("app".into()),
            redirect_uri: Some("https://app.example/cb".into()),
            scope: Some("launch/patient openid fhirUser patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory patient/Condition.read system/*.read patient/Patient.cruds".into()),
            state: Some("xyz".into()),
            aud: Some(BASE.into()),
            code_challenge: Some(CHALLENGE.into()),
            code_challenge_method: Some("S256".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_good_request_keeps_only_grantable_scopes() {
        let p = check(&params(), Some(&app()), BASE).unwrap();
        assert_eq!(
            p.scopes,
            vec![
                "launch/patient",
                "openid",
                "fhirUser",
                "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
                "patient/Condition.read"
            ]
        );
        assert_eq!(describe(&p.scopes[3]), "Read lab results");
    }

    #[test]
    fn unverified_client_or_redirect_never_redirects() {
        assert!(matches!(check(&params(), None, BASE), Err(Refusal::Page(_))));
        let mut wrong = params();
        wrong.redirect_uri = Some("https://app.example/cb/../evil".into());
        assert!(matches!(check(&wrong, Some(&app()), BASE), Err(Refusal::Page(_))));
    }

    #[test]
    fn pkce_aud_state_and_response_type_are_required() {
        type Edit = Box<dyn Fn(&mut AuthorizeParams)>;
        let cases: Vec<(Edit, &str)> = vec![
            (Box::new(|p| p.code_challenge = None), "invalid_request"),
            (Box::new(|p| p.code_challenge_method = Some("plain".into())), "invalid_request"),
            (Box::new(|p| p.aud = Some("https://elsewhere.example/fhir".into())), "invalid_request"),
            (Box::new(|p| p.state = None), "invalid_request"),
            (Box::new(|p| p.response_type = Some("token".into())), "unsupported_response_type"),
            (Box::new(|p| p.scope = Some("openid patient/Spaceship.rs".into())), "invalid_scope"),
        ];
        for (edit, want) in cases {
            let mut p = params();
            edit(&mut p);
            match check(&p, Some(&app()), BASE) {
                Err(Refusal::Redirect { error, redirect_uri, .. }) => {
                    assert_eq!(error, want);
                    assert_eq!(redirect_uri, "https://app.example/cb");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn over_long_parameters_are_refused_on_a_page() {
        let mut p = params();
        p.state = Some("s".repeat(513));
        assert!(matches!(check(&p, Some(&app()), BASE), Err(Refusal::Page(m)) if m.contains("state")));
        let mut p = params();
        p.nonce = Some("n".repeat(513));
        assert!(matches!(check(&p, Some(&app()), BASE), Err(Refusal::Page(m)) if m.contains("nonce")));
        let mut p = params();
        p.state = Some("s".repeat(512));
        assert!(check(&p, Some(&app()), BASE).is_ok(), "512 is allowed");
    }

    #[test]
    fn allowed_scopes_cover_narrower_ones_only() {
        assert!(covers("patient/*.rs", "patient/Observation.r"));
        assert!(covers("patient/*.read", "patient/Observation.rs?category=x|laboratory"));
        assert!(!covers("patient/Observation.read", "patient/Condition.read"));
        assert!(!covers("patient/*.r", "patient/Observation.rs"));
        assert!(!covers("patient/*.rs", "patient/Observation.cruds"));
        assert!(!covers("patient/Observation.rs?category=x|laboratory", "patient/Observation.rs"));
    }
}
