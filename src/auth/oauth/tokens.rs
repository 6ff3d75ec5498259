//! Authorization codes and tokens (`auth_codes`, `tokens`): issuing a code for a grant,
//! the token endpoint's `authorization_code` and `refresh_token` grants, the bearer check
//! of the resource server and revoking a grant. Access and refresh tokens are opaque random
//! values stored only as SHA-256 digests and checked against the store and
//! [`grants::live`] (the bearer check, with its cache, is `bearer_check`); every revocation
//! here raises the store's [`revocation`] generation in its transaction, so revocation and
//! termination of access take effect on the next request. A request that fails writes nothing, except what RFC 6749 and the
//! OAuth security BCP call for: a replayed code or a reused refresh token revokes every
//! token of its family. It must never log a code or a token.

use super::client_auth::Method;
use super::clients::{Client, Clients};
use super::crypto::{self, digest, parse_ts, random_token, ts};
use super::error::{ClientError, OAuthError};
use super::form::Form;
use super::signing::Signer;
use super::OAuthSettings;
use crate::auth::grants::{self, LiveGrant};
use crate::auth::keyring::KeyEncryptionKey;
use crate::auth::revocation;
use crate::identity::PatientIndex;
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use std::sync::Arc;

/// What `/authorize` hands over once the patient approved: the code is bound to all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRequest {
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    /// The S256 PKCE challenge (base64url of a SHA-256 digest).
    pub code_challenge: String,
    /// The granted scopes, space-separated (possibly narrower than asked).
    pub scopes: String,
    pub nonce: Option<String>,
}

/// Who an access token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An app acting for an account on one patient's record (SMART App Launch).
    App(Bearer),
    /// A backend client (an HIE partner) acting for itself (SMART Backend Services).
    System(super::backend::SystemBearer),
}

/// A valid access token as the resource server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bearer {
    pub grant: LiveGrant,
    pub client_id: String,
    /// The token's scopes (space-separated).
    pub scopes: String,
    pub expires_at: DateTime<Utc>,
}

/// The token endpoint's success answer (RFC 6749 §5.1 plus SMART's `patient` and OIDC's
/// `id_token`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub scope: String,
    /// The patient in context (absent for `client_credentials`, which has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// Token issuance and checks.
#[derive(Clone)]
pub struct Tokens {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub store: Store,
    pub clients: Clients,
    pub index: Arc<PatientIndex>,
    pub settings: OAuthSettings,
    pub signer: Signer,
    /// Grants whose `last_used` was written in the last minute.
    pub(super) touched: moka::future::Cache<String, ()>,
    /// Access-token checks that passed, by token digest.
    pub(super) checked: moka::future::Cache<String, super::bearer_check::Checked>,
}

/// A `tokens` row.
pub(super) struct TokenRow {
    pub hash: String,
    pub kind: String,
    pub grant_id: String,
    pub client_id: String,
    pub family: String,
    pub scopes: String,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub used: bool,
    pub revoked: bool,
}

pub(super) const ACCESS: &str = "access";
const REFRESH: &str = "refresh";

impl Tokens {
    /// The service over `store`; seals signing keys stored in clear and checks that `kek`
    /// opens the stored ones ([`Signer::prepare`]).
    pub async fn new(
        store: Store,
        clients: Clients,
        index: Arc<PatientIndex>,
        settings: OAuthSettings,
        kek: Arc<KeyEncryptionKey>,
    ) -> Result<Tokens, ClientError> {
        // id_tokens live as long as access tokens.
        let signer = Signer::new(store.clone(), kek, settings.access_token_ttl);
        signer.prepare().await?;
        let touched = moka::future::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(std::time::Duration::from_secs(60))
            .build();
        // Stale entries are never used (generation, `until`); the time to live only frees them.
        let checked = moka::future::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(std::time::Duration::from_secs(600))
            .build();
        Ok(Tokens { inner: Arc::new(Inner { store, clients, index, settings, signer, touched, checked }) })
    }

    pub fn settings(&self) -> &OAuthSettings {
        &self.inner.settings
    }

    /// The id_token signer (key rotation).
    pub fn signer(&self) -> &Signer {
        &self.inner.signer
    }

    /// The public signing keys (`/jwks`); the first call may create the signing key.
    pub async fn jwks(&self) -> Result<serde_json::Value, ClientError> {
        self.inner.signer.jwks().await
    }

    /// Stores a one-time code for an approved request and returns it (256 random bits,
    /// base64url; stored as its SHA-256 digest, valid for `auth.code_ttl`). The grant must be
    /// live and belong to the client.
    pub async fn issue_code(&self, req: CodeRequest) -> Result<String, OAuthError> {
        let challenge_ok = req.code_challenge.len() == 43
            && req.code_challenge.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !challenge_ok {
            return Err(OAuthError::invalid_request(
                "code_challenge must be an S256 challenge (43 base64url characters)",
            ));
        }
        if req.redirect_uri.is_empty() || req.scopes.split_whitespace().next().is_none() {
            return Err(OAuthError::invalid_request("a code needs a redirect URI and at least one scope"));
        }
        let s = &self.inner;
        let grant = grants::live(&s.store, &req.grant_id).await?;
        if grant.is_none_or(|g| g.client_id != req.client_id) {
            return Err(OAuthError::invalid_grant("the grant is not live for this client"));
        }
        let code = random_token(32);
        let expires =
            Utc::now() + chrono::Duration::from_std(s.settings.code_ttl).unwrap_or(chrono::Duration::seconds(60));
        sqlx::query(
            "INSERT INTO auth_codes (code_hash, grant_id, client_id, redirect_uri, code_challenge, scopes, nonce, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(digest(&code))
        .bind(&req.grant_id)
        .bind(&req.client_id)
        .bind(&req.redirect_uri)
        .bind(&req.code_challenge)
        .bind(normalise_scopes(&req.scopes))
        .bind(&req.nonce)
        .bind(ts(expires))
        .execute(&s.store.pool)
        .await?;
        Ok(code)
    }

    /// The token endpoint: authenticates the client, then runs the grant type.
    pub async fn token(&self, authorization: Option<&str>, form: &Form) -> Result<TokenResponse, OAuthError> {
        let grant_type = form.require("grant_type")?;
        if !matches!(grant_type, "authorization_code" | "refresh_token" | "client_credentials") {
            return Err(OAuthError::new(
                super::error::ErrorCode::UnsupportedGrantType,
                "grant_type must be authorization_code, refresh_token or client_credentials",
            ));
        }
        let (client, method) = if grant_type == "refresh_token" && !carries_client_authentication(authorization, form) {
            self.refreshing_client(form).await?
        } else {
            self.authenticate(authorization, form).await?
        };
        let result = match grant_type {
            "client_credentials" => self.client_credentials(&client, form).await,
            _ if client.kind == super::clients::ClientKind::Backend => {
                Err(OAuthError::unauthorized_client("a backend client uses grant_type=client_credentials only"))
            }
            "authorization_code" => self.exchange_code(&client, form).await,
            _ => self.refresh(&client, form).await,
        };
        result.map_err(|e| OAuthError { basic_attempted: method == Method::Basic, ..e })
    }

    /// The client a refresh token names, for a refresh request without any client
    /// authentication (RFC 6749 §6 asks it only of confidential clients; browser apps such
    /// as npm `fhirclient` send no `client_id`): a public client's token identifies it, any
    /// other client must authenticate. An unknown token is `invalid_grant`, as it would be
    /// with a `client_id`.
    async fn refreshing_client(&self, form: &Form) -> Result<(Client, Method), OAuthError> {
        let presented = form.require("refresh_token")?;
        let row = self.token_row(&digest(presented)).await?.filter(|r| r.kind == REFRESH);
        let Some(row) = row else {
            return Err(OAuthError::invalid_grant("the refresh token is invalid, expired, revoked or already used"));
        };
        self.inner.clients.public_by_refresh(&row.client_id).await
    }

    pub(super) async fn authenticate(
        &self,
        authorization: Option<&str>,
        form: &Form,
    ) -> Result<(Client, Method), OAuthError> {
        self.inner.clients.authenticate(authorization, form, &self.inner.settings.token_url).await
    }

    async fn exchange_code(&self, client: &Client, form: &Form) -> Result<TokenResponse, OAuthError> {
        let s = &self.inner;
        let code = form.require("code")?;
        let redirect_uri = form.require("redirect_uri")?;
        let verifier = form.require("code_verifier")?;
        let verifier_ok = (43..=128).contains(&verifier.len())
            && verifier.chars().all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c));
        if !verifier_ok {
            return Err(OAuthError::invalid_grant("code_verifier must be 43-128 characters of A-Z a-z 0-9 - . _ ~"));
        }
        let code_hash = digest(code);
        let row = sqlx::query(
            "SELECT grant_id, client_id, redirect_uri, code_challenge, scopes, nonce, expires_at, used_at
             FROM auth_codes WHERE code_hash = $1",
        )
        .bind(&code_hash)
        .fetch_optional(&s.store.pool)
        .await?;
        let unusable = || OAuthError::invalid_grant("the code is invalid, expired or already used");
        let Some(row) = row else { return Err(unusable()) };
        let used: Option<String> = row.get(7);
        if used.is_some() {
            self.revoke_family(&code_hash).await?;
            tracing::warn!(client_id = %client.client_id, "authorization code replayed; its tokens are revoked");
            return Err(unusable());
        }
        let expires: String = row.get(6);
        if parse_ts(&expires).is_none_or(|t| t <= Utc::now()) {
            return Err(unusable());
        }
        let (grant_id, code_client, code_redirect, challenge): (String, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if code_client != client.client_id {
            return Err(unusable());
        }
        if code_redirect != redirect_uri {
            return Err(OAuthError::invalid_grant("redirect_uri differs from the authorization request's"));
        }
        if !crypto::same(&crypto::pkce_s256(verifier), &challenge) {
            return Err(OAuthError::invalid_grant("code_verifier does not match the code_challenge"));
        }
        let (scopes, nonce): (String, Option<String>) = (row.get(4), row.get(5));
        let grant = self.live_grant_of(&grant_id, client).await?;
        let issued = self.prepare(&grant, &scopes, nonce.as_deref(), &code_hash).await?;
        let mut tx = s.store.begin_write().await?;
        let won = sqlx::query("UPDATE auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL")
            .bind(ts(Utc::now()))
            .bind(&code_hash)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if won != 1 {
            tx.rollback().await?;
            self.revoke_family(&code_hash).await?;
            return Err(unusable());
        }
        issued.insert(&mut tx).await?;
        tx.commit().await?;
        Ok(issued.response)
    }

    async fn refresh(&self, client: &Client, form: &Form) -> Result<TokenResponse, OAuthError> {
        let s = &self.inner;
        let presented = form.require("refresh_token")?;
        let hash = digest(presented);
        let unusable = || OAuthError::invalid_grant("the refresh token is invalid, expired, revoked or already used");
        let Some(row) = self.token_row(&hash).await? else { return Err(unusable()) };
        if row.kind != REFRESH || row.client_id != client.client_id {
            return Err(unusable());
        }
        if row.used || row.revoked {
            self.revoke_family(&row.family).await?;
            tracing::warn!(client_id = %client.client_id, "refresh token reused; its family is revoked");
            return Err(unusable());
        }
        if row.expires_at <= Utc::now() {
            return Err(unusable());
        }
        let scopes = match form.get("scope") {
            None => row.scopes.clone(),
            Some(asked) => {
                let had: Vec<&str> = row.scopes.split_whitespace().collect();
                let asked = normalise_scopes(asked);
                if let Some(extra) = asked.split_whitespace().find(|a| !had.contains(a)) {
                    return Err(OAuthError::invalid_scope(format!(
                        "scope `{extra}` was not granted; a refresh may only narrow scopes"
                    )));
                }
                if asked.is_empty() {
                    return Err(OAuthError::invalid_scope("scope is empty"));
                }
                asked
            }
        };
        let grant = self.live_grant_of(&row.grant_id, client).await?;
        let issued = self.prepare(&grant, &scopes, None, &row.family).await?;
        let mut tx = s.store.begin_write().await?;
        let won = sqlx::query(
            "UPDATE tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(ts(Utc::now()))
        .bind(&hash)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if won != 1 {
            tx.rollback().await?;
            self.revoke_family(&row.family).await?;
            return Err(unusable());
        }
        issued.insert(&mut tx).await?;
        tx.commit().await?;
        Ok(issued.response)
    }

    async fn live_grant_of(&self, grant_id: &str, client: &Client) -> Result<LiveGrant, OAuthError> {
        let grant = grants::live(&self.inner.store, grant_id).await?;
        match grant {
            Some(g) if g.client_id == client.client_id => Ok(g),
            _ => Err(OAuthError::invalid_grant("the authorization was revoked or access to the record has ended")),
        }
    }

    /// Builds (without storing) the tokens for `grant` with `scopes`.
    async fn prepare(
        &self,
        grant: &LiveGrant,
        scopes: &str,
        nonce: Option<&str>,
        family: &str,
    ) -> Result<Issued, OAuthError> {
        let s = &self.inner;
        let patient = s
            .index
            .gateway_id_of(&grant.source, &grant.source_patient_id)
            .await?
            .ok_or_else(|| OAuthError::invalid_grant("the patient's record is not available"))?;
        let now = Utc::now();
        let has = |scope: &str| scopes.split_whitespace().any(|x| x == scope);
        let access = random_token(32);
        let refresh = (has("offline_access") || has("online_access")).then(|| random_token(32));
        let id_token = if has("openid") { Some(self.id_token(grant, &patient, nonce, now).await?) } else { None };
        let access_ttl = s.settings.access_token_ttl;
        let mut rows = vec![NewToken {
            hash: digest(&access),
            kind: ACCESS,
            expires_at: now + chrono::Duration::from_std(access_ttl).unwrap_or(chrono::Duration::hours(1)),
        }];
        if let Some(r) = &refresh {
            rows.push(NewToken {
                hash: digest(r),
                kind: REFRESH,
                expires_at: now
                    + chrono::Duration::from_std(s.settings.refresh_token_ttl).unwrap_or(chrono::Duration::days(90)),
            });
        }
        Ok(Issued {
            rows,
            grant_id: grant.grant_id.clone(),
            client_id: grant.client_id.clone(),
            family: family.to_string(),
            scopes: scopes.to_string(),
            created_at: now,
            response: TokenResponse {
                access_token: access,
                token_type: "Bearer",
                expires_in: access_ttl.as_secs(),
                scope: scopes.to_string(),
                patient: Some(patient),
                refresh_token: refresh,
                id_token,
            },
        })
    }

    async fn id_token(
        &self,
        grant: &LiveGrant,
        patient: &str,
        nonce: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<String, OAuthError> {
        let s = &self.inner;
        let fhir_base = &s.settings.fhir_base;
        let fhir_user = if grant.relationship == "SELF" {
            Some(format!("{fhir_base}/Patient/{patient}"))
        } else {
            let related: Option<Option<String>> = sqlx::query(
                "SELECT p.related_person FROM grants g JOIN account_patients p ON p.id = g.account_patient_id WHERE g.id = $1",
            )
            .bind(&grant.grant_id)
            .fetch_optional(&s.store.pool)
            .await?
            .map(|r| r.get(0));
            related.flatten().and_then(|rp| {
                let (source, id) = rp.split_once('/')?;
                Some(format!(
                    "{fhir_base}/RelatedPerson/{}",
                    crate::aggregate::provenance::gateway_resource_id(source, id)
                ))
            })
        };
        let claims = IdTokenClaims {
            iss: &s.settings.issuer,
            sub: &grant.account_id,
            aud: &grant.client_id,
            iat: now.timestamp(),
            exp: now.timestamp() + s.settings.access_token_ttl.as_secs() as i64,
            nonce,
            fhir_user,
        };
        s.signer.sign(&claims).await.map_err(|e| OAuthError::server(&e))
    }

    /// Revokes a grant and every token issued under it (the patient's "revoke this app",
    /// staff termination). Revoking a revoked grant changes nothing.
    pub async fn revoke_grant(&self, grant_id: &str) -> Result<(), StoreError> {
        let now = ts(Utc::now());
        let mut tx = self.inner.store.begin_write().await?;
        sqlx::query("UPDATE grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(&now)
            .bind(grant_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE grant_id = $2 AND revoked_at IS NULL")
            .bind(&now)
            .bind(grant_id)
            .execute(&mut *tx)
            .await?;
        revocation::bump(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn client_enabled(&self, client_id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT disabled_at FROM oauth_clients WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&self.inner.store.pool)
            .await?;
        Ok(row.is_some_and(|r| r.get::<Option<String>, _>(0).is_none()))
    }

    pub(super) async fn token_row(&self, hash: &str) -> Result<Option<TokenRow>, StoreError> {
        let row = sqlx::query(
            "SELECT kind, grant_id, client_id, family, scopes, expires_at, created_at, used_at, revoked_at
             FROM tokens WHERE token_hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.inner.store.pool)
        .await?;
        Ok(row.map(|r| {
            let time = |i: usize| parse_ts(&r.get::<String, _>(i)).unwrap_or(DateTime::<Utc>::MIN_UTC);
            TokenRow {
                hash: hash.to_string(),
                kind: r.get(0),
                grant_id: r.get(1),
                client_id: r.get(2),
                family: r.get(3),
                scopes: r.get(4),
                expires_at: time(5),
                created_at: time(6),
                used: r.get::<Option<String>, _>(7).is_some(),
                revoked: r.get::<Option<String>, _>(8).is_some(),
            }
        }))
    }

    pub(super) async fn revoke_family(&self, family: &str) -> Result<(), StoreError> {
        let mut tx = self.inner.store.begin_write().await?;
        sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE family = $2 AND revoked_at IS NULL")
            .bind(ts(Utc::now()))
            .bind(family)
            .execute(&mut *tx)
            .await?;
        revocation::bump(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn revoke_token(&self, hash: &str) -> Result<(), StoreError> {
        let mut tx = self.inner.store.begin_write().await?;
        sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL")
            .bind(ts(Utc::now()))
            .bind(hash)
            .execute(&mut *tx)
            .await?;
        revocation::bump(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(rename = "fhirUser", skip_serializing_if = "Option::is_none")]
    fhir_user: Option<String>,
}

struct NewToken {
    hash: String,
    kind: &'static str,
    expires_at: DateTime<Utc>,
}

/// Tokens built for a response, stored only once the request is sure to succeed.
struct Issued {
    rows: Vec<NewToken>,
    grant_id: String,
    client_id: String,
    family: String,
    scopes: String,
    created_at: DateTime<Utc>,
    response: TokenResponse,
}

impl Issued {
    async fn insert(&self, tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<(), sqlx::Error> {
        for t in &self.rows {
            sqlx::query(
                "INSERT INTO tokens (token_hash, kind, grant_id, client_id, family, scopes, expires_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&t.hash)
            .bind(t.kind)
            .bind(&self.grant_id)
            .bind(&self.client_id)
            .bind(&self.family)
            .bind(&self.scopes)
            .bind(ts(t.expires_at))
            .bind(ts(self.created_at))
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}

/// Whether a token request carries any client authentication or identification (HTTP
/// Basic, `client_id`, `client_secret`, a client assertion).
fn carries_client_authentication(authorization: Option<&str>, form: &Form) -> bool {
    authorization.is_some()
        || ["client_id", "client_secret", "client_assertion", "client_assertion_type"]
            .iter()
            .any(|k| form.get(k).is_some())
}

/// Scopes as one space-separated string, each once, in the order given.
fn normalise_scopes(s: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for scope in s.split_whitespace() {
        if !out.contains(&scope) {
            out.push(scope);
        }
    }
    out.join(" ")
}
