//! SMART Backend Services for HIE partners: the `client_credentials` grant for clients of
//! kind `backend` (authenticated only by a signed assertion — RS384 or ES384, checked by
//! client_auth like any private_key_jwt), the partner profile stored with such a client
//! (its purpose of use and the Groups it may export), the system scopes it is granted (what
//! it asked for, narrowed to what it is allowed), and the resource server's check of the
//! tokens this grant issues. A backend token stands for no patient and no account: it is
//! looked up on every request like every token, dies with its client, and never comes with
//! a refresh token. It must never grant a scope the client was not allowed, accept a shared
//! secret for this grant, or log a token or an assertion.

use super::clients::{Client, ClientKind};
use super::crypto::{digest, random_token, ts};
use super::error::{ClientError, OAuthError};
use super::form::Form;
use super::tokens::{TokenResponse, Tokens};
use crate::store::StoreError;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// The `tokens.kind` of an access token issued by `client_credentials`.
pub(super) const SYSTEM: &str = "system";

/// What an HIE partner's client states with every request: why it asks (a v3-ActReason
/// purpose of use the policy decides on) and which Groups it may export (Bulk Data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartnerProfile {
    pub purpose: String,
    pub groups: Vec<String>,
}

impl PartnerProfile {
    /// A purpose and Groups as given (CLI flags, config keys, admin API fields): None when
    /// neither is given. Checked at registration.
    pub fn given(purpose: Option<&str>, groups: &[String]) -> Option<PartnerProfile> {
        let groups: Vec<String> = groups.iter().filter(|g| !g.trim().is_empty()).cloned().collect();
        (purpose.is_some() || !groups.is_empty())
            .then(|| PartnerProfile { purpose: purpose.unwrap_or_default().to_string(), groups })
    }
}

/// A valid `client_credentials` access token as the resource server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemBearer {
    pub client_id: String,
    /// The granted system scopes (space-separated).
    pub scopes: String,
    /// The client's profile now (a change to the client applies to its live tokens).
    pub partner: PartnerProfile,
    pub expires_at: DateTime<Utc>,
}

/// Checks the partner part of a registration: a `backend` client needs a known purpose of
/// use, system scopes only and well-formed Group ids; other kinds take no partner profile.
/// Errors name `{prefix}purpose`, `{prefix}groups` or `{prefix}allowed_scopes`.
pub(super) fn check_partner(
    kind: ClientKind,
    partner: Option<PartnerProfile>,
    allowed_scopes: &[String],
    prefix: &str,
) -> Result<Option<PartnerProfile>, ClientError> {
    let key = |k: &str| format!("{prefix}{k}");
    if kind != ClientKind::Backend {
        return match partner {
            Some(_) => Err(ClientError::invalid(key("purpose"), "a purpose of use and groups are for backend clients")),
            None => Ok(None),
        };
    }
    let partner = partner.unwrap_or(PartnerProfile { purpose: String::new(), groups: Vec::new() });
    let purpose = partner.purpose.trim().to_ascii_uppercase();
    if purpose.is_empty() {
        return Err(ClientError::invalid(key("purpose"), "a backend client needs a purpose of use (e.g. TREAT)"));
    }
    if !crate::policy::config::KNOWN_PURPOSES.contains(&purpose.as_str()) {
        return Err(ClientError::invalid(
            key("purpose"),
            format!("`{purpose}` is not a known purpose of use ({})", crate::policy::config::KNOWN_PURPOSES.join(", ")),
        ));
    }
    let mut groups: Vec<String> = Vec::new();
    for (j, g) in partner.groups.iter().enumerate() {
        let g = g.trim();
        let ok = !g.is_empty() && g.len() <= 64 && g.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !ok {
            return Err(ClientError::invalid(
                key(&format!("groups[{j}]")),
                format!("`{g}` is not a Group id (1-64 of A-Z a-z 0-9 - .)"),
            ));
        }
        if !groups.iter().any(|x| x == g) {
            groups.push(g.to_string());
        }
    }
    if let Some(bad) = allowed_scopes.iter().find(|s| !s.starts_with("system/")) {
        return Err(ClientError::invalid(
            key("allowed_scopes"),
            format!("`{bad}`: a backend client is allowed system scopes only (system/*.rs, system/Observation.read …)"),
        ));
    }
    for s in allowed_scopes {
        let parsed = SystemScope::parse(s).map_err(|m| ClientError::invalid(key("allowed_scopes"), m))?;
        if parsed.is_some_and(|p| p.perms & READS == 0) {
            return Err(ClientError::invalid(
                key("allowed_scopes"),
                format!("`{s}` grants no read; this gateway only serves reads"),
            ));
        }
    }
    Ok(Some(PartnerProfile { purpose, groups }))
}

// Permission bits, in SMART v2 order (c r u d s).
const C: u8 = 1;
const R: u8 = 2;
const U: u8 = 4;
const D: u8 = 8;
const S: u8 = 16;
const READS: u8 = R | S;

/// One `system/…` scope, structurally.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SystemScope<'a> {
    text: &'a str,
    resource_type: &'a str,
    perms: u8,
    /// The granular query as written (`category=…`) and its decoded value.
    query: Option<(&'a str, String)>,
}

impl<'a> SystemScope<'a> {
    /// `Ok(None)` for a scope that is not a system scope; `Err` for a malformed one.
    fn parse(text: &'a str) -> Result<Option<SystemScope<'a>>, String> {
        let Some(rest) = text.strip_prefix("system/") else { return Ok(None) };
        // The SMART grammar (known types, permissions, category only) is the viewer's.
        crate::policy::viewer::parse_scopes(text).map_err(|e| e.to_string())?;
        let (head, query) = match rest.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (rest, None),
        };
        let (resource_type, perms) =
            head.rsplit_once('.').ok_or_else(|| format!("scope `{text}` has no permissions"))?;
        let perms = match perms {
            "read" => R | S,
            "write" => C | U | D,
            "*" => C | R | U | D | S,
            v2 => {
                let order = "cruds";
                let mut last = None;
                let mut bits = 0;
                for ch in v2.chars() {
                    let at = order.find(ch).ok_or_else(|| format!("scope `{text}` has unknown permissions"))?;
                    if last.is_some_and(|l| at <= l) {
                        return Err(format!("scope `{text}`: permissions must be in the order c r u d s, each once"));
                    }
                    last = Some(at);
                    bits |= 1 << at;
                }
                bits
            }
        };
        let query = query.map(|q| {
            let value = q.split_once('=').map_or("", |(_, v)| v);
            (q, percent_encoding::percent_decode_str(value).decode_utf8_lossy().to_string())
        });
        Ok(Some(SystemScope { text, resource_type, perms, query }))
    }

    /// What both scopes grant (reads only: the gateway serves nothing else), written as
    /// one of them when it is exactly that one, else in v2 syntax.
    fn intersect(&self, other: &SystemScope<'_>) -> Option<String> {
        let resource_type = match (self.resource_type, other.resource_type) {
            ("*", t) | (t, "*") => t,
            (a, b) if a == b => a,
            _ => return None,
        };
        let perms = self.perms & other.perms & READS;
        if perms == 0 {
            return None;
        }
        let query = match (&self.query, &other.query) {
            (None, q) | (q, None) => q.clone(),
            (Some(a), Some(b)) if a.1 == b.1 => Some(a.clone()),
            _ => return None,
        };
        let same_as = |s: &SystemScope<'_>| {
            s.resource_type == resource_type
                && s.perms == perms
                && s.query.as_ref().map(|q| &q.1) == query.as_ref().map(|q| &q.1)
        };
        if same_as(self) {
            return Some(self.text.to_string());
        }
        if same_as(other) {
            return Some(other.text.to_string());
        }
        let letters: String = [(C, 'c'), (R, 'r'), (U, 'u'), (D, 'd'), (S, 's')]
            .iter()
            .filter(|(bit, _)| perms & bit != 0)
            .map(|(_, l)| *l)
            .collect();
        let mut out = format!("system/{resource_type}.{letters}");
        if let Some((q, _)) = query {
            out.push('?');
            out.push_str(q);
        }
        Some(out)
    }
}

/// The scopes to grant: each asked system scope narrowed to what the client is allowed
/// (asked ∩ allowed). Other scopes asked for are not granted; a malformed one, or nothing
/// left, is `invalid_scope`.
pub fn grant_system_scopes(asked: &str, allowed: &[String]) -> Result<String, OAuthError> {
    let allowed: Vec<SystemScope<'_>> = allowed.iter().filter_map(|s| SystemScope::parse(s).ok().flatten()).collect();
    let mut granted: Vec<String> = Vec::new();
    for text in asked.split_whitespace() {
        let Some(a) = SystemScope::parse(text).map_err(OAuthError::invalid_scope)? else { continue };
        for b in &allowed {
            if let Some(g) = a.intersect(b) {
                if !granted.contains(&g) {
                    granted.push(g);
                }
            }
        }
    }
    if granted.is_empty() {
        return Err(OAuthError::invalid_scope(
            "none of the scopes asked for is allowed for this client (backend clients get system/ read scopes)",
        ));
    }
    Ok(granted.join(" "))
}

impl Tokens {
    /// `grant_type=client_credentials`: an access token with the granted system scopes, for
    /// a `backend` client (already authenticated by its assertion). Nothing else is issued.
    pub(super) async fn client_credentials(&self, client: &Client, form: &Form) -> Result<TokenResponse, OAuthError> {
        if client.kind != ClientKind::Backend || client.partner.is_none() {
            return Err(OAuthError::unauthorized_client(
                "client_credentials is only for backend clients (HIE partners registered with --kind backend)",
            ));
        }
        let asked = form.get("scope").ok_or_else(|| {
            OAuthError::invalid_scope("scope is required: the system scopes asked for (e.g. system/*.rs)")
        })?;
        let scopes = grant_system_scopes(asked, &client.allowed_scopes)?;
        let s = &self.inner;
        let ttl = s.settings.backend_token_ttl;
        let now = Utc::now();
        let expires = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::minutes(5));
        let token = random_token(32);
        let hash = digest(&token);
        sqlx::query(
            "INSERT INTO tokens (token_hash, kind, grant_id, client_id, family, scopes, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&hash)
        .bind(SYSTEM)
        .bind(format!("client:{}", client.client_id))
        .bind(&client.client_id)
        .bind(&hash)
        .bind(&scopes)
        .bind(ts(expires))
        .bind(ts(now))
        .execute(&s.store.pool)
        .await?;
        tracing::info!(client_id = %client.client_id, "backend services token issued");
        Ok(TokenResponse {
            access_token: token,
            token_type: "bearer",
            expires_in: ttl.as_secs(),
            scope: scopes,
            patient: None,
            refresh_token: None,
            id_token: None,
        })
    }

    /// The resource server's check of a `client_credentials` token (by its stored row):
    /// None when expired, revoked, or its client is disabled or no longer a backend client.
    pub(super) async fn system_bearer(
        &self,
        row: &super::tokens::TokenRow,
    ) -> Result<Option<SystemBearer>, StoreError> {
        if row.kind != SYSTEM || row.revoked || row.expires_at <= Utc::now() {
            return Ok(None);
        }
        let record = match self.inner.clients.record(&row.client_id).await {
            Ok(r) => r,
            Err(ClientError::Store(e)) => return Err(e),
            Err(e) => {
                tracing::warn!(client_id = %row.client_id, error = %e, "unreadable client: its token is refused");
                None
            }
        };
        let Some(record) = record.filter(|r| r.disabled_at.is_none()) else { return Ok(None) };
        let (ClientKind::Backend, Some(partner)) = (record.client.kind, record.client.partner) else { return Ok(None) };
        Ok(Some(SystemBearer {
            client_id: row.client_id.clone(),
            scopes: row.scopes.clone(),
            partner,
            expires_at: row.expires_at,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn asked_scopes_are_narrowed_to_what_is_allowed() {
        let wide = allowed("system/*.rs");
        assert_eq!(grant_system_scopes("system/*.read", &wide).unwrap(), "system/*.read");
        assert_eq!(grant_system_scopes("system/Observation.rs", &wide).unwrap(), "system/Observation.rs");
        assert_eq!(grant_system_scopes("system/*.cruds", &wide).unwrap(), "system/*.rs");
        assert_eq!(grant_system_scopes("system/Condition.r", &wide).unwrap(), "system/Condition.r");
        let narrow = allowed("system/Observation.rs system/Condition.read");
        assert_eq!(grant_system_scopes("system/*.rs", &narrow).unwrap(), "system/Observation.rs system/Condition.read");
        assert_eq!(
            grant_system_scopes("system/*.read openid patient/*.rs", &narrow).unwrap(),
            "system/Observation.rs system/Condition.read"
        );
        assert_eq!(
            grant_system_scopes("system/Condition.s system/Observation.read", &narrow).unwrap(),
            "system/Condition.s system/Observation.read"
        );
    }

    #[test]
    fn granular_category_scopes_intersect() {
        let lab =
            "system/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory";
        assert_eq!(grant_system_scopes(lab, &allowed("system/*.rs")).unwrap(), lab);
        assert_eq!(grant_system_scopes("system/*.rs", &allowed(lab)).unwrap(), lab);
        assert_eq!(
            grant_system_scopes("system/Observation.r", &allowed(lab)).unwrap(),
            "system/Observation.r?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
        );
        let vitals =
            "system/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs";
        assert_eq!(grant_system_scopes(vitals, &allowed(lab)).unwrap_err().code, super::super::ErrorCode::InvalidScope);
    }

    #[test]
    fn nothing_left_or_malformed_is_invalid_scope() {
        let narrow = allowed("system/Observation.rs");
        for asked in ["system/Condition.rs", "patient/*.rs openid", "system/Observation.cud", "system/*.write"] {
            assert_eq!(
                grant_system_scopes(asked, &narrow).unwrap_err().code,
                super::super::ErrorCode::InvalidScope,
                "{asked}"
            );
        }
        for asked in
            ["system/Spaceship.rs", "system/Observation.xyz", "system/Observation.sr", "system/Observation.rs?code=1"]
        {
            assert_eq!(
                grant_system_scopes(asked, &narrow).unwrap_err().code,
                super::super::ErrorCode::InvalidScope,
                "{asked}"
            );
        }
    }

    #[test]
    fn a_backend_client_needs_a_known_purpose_and_system_scopes() {
        let p = |purpose: &str, groups: &[&str]| {
            Some(PartnerProfile { purpose: purpose.into(), groups: groups.iter().map(ToString::to_string).collect() })
        };
        let sys = allowed("system/*.rs");
        let ok = check_partner(ClientKind::Backend, p("treat", &["g1", "g2", "g1"]), &sys, "").unwrap().unwrap();
        assert_eq!(ok, PartnerProfile { purpose: "TREAT".into(), groups: vec!["g1".into(), "g2".into()] });
        let err = |r: Result<Option<PartnerProfile>, ClientError>| r.unwrap_err().to_string();
        assert!(err(check_partner(ClientKind::Backend, None, &sys, "x.")).starts_with("x.purpose:"));
        assert!(err(check_partner(ClientKind::Backend, p("WHATEVER", &[]), &sys, "")).contains("WHATEVER"));
        assert!(err(check_partner(ClientKind::Backend, p("TREAT", &["bad id"]), &sys, "")).starts_with("groups[0]"));
        assert!(err(check_partner(ClientKind::Backend, p("TREAT", &[]), &allowed("patient/*.rs"), ""))
            .starts_with("allowed_scopes"));
        assert!(
            err(check_partner(ClientKind::Backend, p("TREAT", &[]), &allowed("system/*.cud"), "")).contains("no read")
        );
        assert!(err(check_partner(ClientKind::Public, p("TREAT", &[]), &sys, "")).starts_with("purpose"));
        assert_eq!(check_partner(ClientKind::Public, None, &allowed("patient/*.rs"), "").unwrap(), None);
    }
}
