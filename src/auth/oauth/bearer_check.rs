//! The resource server's access-token check ([`Tokens::caller`], [`Tokens::bearer`]): the
//! token row, its client and its grant's liveness, with a check that passed kept in memory
//! only while the store's [`revocation`] generation — read on every call, before anything
//! else — is unchanged, and never past the token's expiry or its link's end. It never
//! trusts a cached check without that read, and never logs a token.

use super::crypto::digest;
use super::tokens::{Bearer, Caller, TokenRow, Tokens, ACCESS};
use crate::auth::grants;
use crate::auth::revocation;
use crate::store::StoreError;
use chrono::{DateTime, Utc};

/// An access-token check that passed: good while the revocation generation is still
/// `generation` and until `until` (the token's expiry or its link's end, if sooner).
#[derive(Clone)]
pub(super) struct Checked {
    generation: i64,
    caller: Caller,
    until: DateTime<Utc>,
}

impl Tokens {
    /// The resource server's check of any access token: an app's (for one patient) or a
    /// backend client's (`client_credentials`). None when the token is not valid now.
    /// The generation is read before anything else, so a revocation that commits during a
    /// full check leaves that check cached under the old generation, which is never used.
    pub async fn caller(&self, token: &str) -> Result<Option<Caller>, StoreError> {
        let s = &self.inner;
        let hash = digest(token);
        let generation = revocation::current(&s.store).await?;
        if let Some(c) = s.checked.get(&hash).await {
            if c.generation == generation && Utc::now() < c.until {
                if let Caller::App(b) = &c.caller {
                    self.touch(&b.grant.grant_id).await?;
                }
                return Ok(Some(c.caller));
            }
            s.checked.invalidate(&hash).await;
        }
        let Some(row) = self.token_row(&hash).await? else { return Ok(None) };
        let checked = if row.kind == super::backend::SYSTEM {
            self.system_bearer(&row).await?.map(|b| (b.expires_at, Caller::System(b)))
        } else {
            self.checked_bearer(row).await?.map(|(b, until)| (until, Caller::App(b)))
        };
        let Some((until, caller)) = checked else { return Ok(None) };
        s.checked.insert(hash, Checked { generation, caller: caller.clone(), until }).await;
        Ok(Some(caller))
    }

    /// The resource server's check of an access token: None when unknown, expired, revoked,
    /// issued to a disabled client, or when its grant is no longer live.
    pub async fn bearer(&self, token: &str) -> Result<Option<Bearer>, StoreError> {
        let Some(row) = self.token_row(&digest(token)).await? else { return Ok(None) };
        self.bearer_of(row).await
    }

    pub(super) async fn bearer_of(&self, row: TokenRow) -> Result<Option<Bearer>, StoreError> {
        Ok(self.checked_bearer(row).await?.map(|(b, _)| b))
    }

    /// [`Tokens::bearer_of`] with the moment the check stops holding by itself: the token's
    /// expiry or the end of the link's dates, whichever comes first.
    async fn checked_bearer(&self, row: TokenRow) -> Result<Option<(Bearer, DateTime<Utc>)>, StoreError> {
        let s = &self.inner;
        if row.kind != ACCESS || row.revoked || row.expires_at <= Utc::now() {
            return Ok(None);
        }
        if !self.client_enabled(&row.client_id).await? {
            return Ok(None);
        }
        let Some((grant, link_end)) = grants::live_until(&s.store, &row.grant_id).await? else { return Ok(None) };
        if grant.client_id != row.client_id {
            return Ok(None);
        }
        self.touch(&grant.grant_id).await?;
        let until = link_end.map_or(row.expires_at, |end| end.min(row.expires_at));
        Ok(Some((Bearer { grant, client_id: row.client_id, scopes: row.scopes, expires_at: row.expires_at }, until)))
    }

    /// Writes the grant's `last_used` at most once a minute.
    async fn touch(&self, grant_id: &str) -> Result<(), StoreError> {
        let s = &self.inner;
        if !s.touched.contains_key(grant_id) {
            s.touched.insert(grant_id.to_string(), ()).await;
            grants::touch(&s.store, grant_id).await?;
        }
        Ok(())
    }
}
