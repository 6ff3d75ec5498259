//! Token introspection (RFC 7662) and revocation (RFC 7009). Introspection answers only
//! authenticated confidential clients and only about their own tokens: anything else —
//! unknown, expired, revoked, used, another client's, a grant no longer live — is
//! `{"active": false}` and nothing more. Revocation lets any authenticated client revoke
//! its own tokens (a refresh token takes its whole family with it); unknown tokens and
//! other clients' tokens are answered with success and left alone, so the endpoint reveals
//! nothing. It never logs a token.

use super::client_auth::Method;
use super::crypto::digest;
use super::error::OAuthError;
use super::form::Form;
use super::tokens::Tokens;
use crate::auth::grants;
use chrono::Utc;
use serde_json::{json, Value};

impl Tokens {
    /// `/introspect`.
    pub async fn introspect(&self, authorization: Option<&str>, form: &Form) -> Result<Value, OAuthError> {
        let (client, method) = self.authenticate(authorization, form).await?;
        let with_method = |e: OAuthError| OAuthError { basic_attempted: method == Method::Basic, ..e };
        if !client.kind.is_confidential() {
            return Err(OAuthError::unauthorized_client("token introspection is for confidential clients"));
        }
        let token = form.require("token").map_err(with_method)?;
        let inactive = json!({ "active": false });
        let Some(row) = self.token_row(&digest(token)).await.map_err(|e| with_method(e.into()))? else {
            return Ok(inactive);
        };
        if row.client_id != client.client_id || row.revoked || row.used || row.expires_at <= Utc::now() {
            return Ok(inactive);
        }
        let s = &self.inner;
        if row.kind == super::backend::SYSTEM {
            // A backend services token: no account, no patient; live while its client is.
            let Some(b) = self.system_bearer(&row).await? else { return Ok(inactive) };
            return Ok(json!({
                "active": true,
                "scope": b.scopes,
                "client_id": b.client_id,
                "sub": b.client_id,
                "exp": b.expires_at.timestamp(),
                "iat": row.created_at.timestamp(),
                "iss": s.settings.issuer,
                "token_type": "Bearer",
            }));
        }
        let Some(grant) = grants::live(&s.store, &row.grant_id).await? else { return Ok(inactive) };
        let Some(patient) = s.index.gateway_id_of(&grant.source, &grant.source_patient_id).await? else {
            return Ok(inactive);
        };
        let mut answer = json!({
            "active": true,
            "scope": row.scopes,
            "client_id": row.client_id,
            "exp": row.expires_at.timestamp(),
            "iat": row.created_at.timestamp(),
            "sub": grant.account_id,
            "patient": patient,
            "iss": s.settings.issuer,
        });
        answer["token_type"] = json!(if row.kind == "access" { "Bearer" } else { "refresh_token" });
        Ok(answer)
    }

    /// `/revoke`.
    pub async fn revoke(&self, authorization: Option<&str>, form: &Form) -> Result<(), OAuthError> {
        let (client, method) = self.authenticate(authorization, form).await?;
        let with_method = |e: OAuthError| OAuthError { basic_attempted: method == Method::Basic, ..e };
        let token = form.require("token").map_err(with_method)?;
        let Some(row) = self.token_row(&digest(token)).await? else { return Ok(()) };
        if row.client_id != client.client_id {
            return Ok(());
        }
        if row.kind == "refresh" {
            self.revoke_family(&row.family).await?;
        } else {
            self.revoke_token(&row.hash).await?;
        }
        Ok(())
    }
}
