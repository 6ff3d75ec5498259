//! What `portico client register|list|disable|assertion` needs beyond [`Clients`]: opening
//! the client registry from a config without starting the gateway, reading a JWKS file, a
//! backend client's partner profile, signing a client assertion for ops testing, and the
//! text the commands print. A generated secret is printed once, by `register`, and never
//! again; nothing here prints a hash or a private key.

use super::clients::{ClientKeys, ClientSummary, Clients};
use super::error::ClientError;
use crate::config::Config;
use crate::store::Store;
use std::fmt::Write;
use std::path::Path;

/// The client registry of the store `config` names (migrated if needed; no sources read).
pub async fn open_clients(config: &Config) -> Result<Clients, ClientError> {
    let store = Store::open(&config.database.url, 1).await?;
    Ok(Clients::new(store))
}

/// `--jwks-file` or `--jwks-uri` as [`ClientKeys`] (the file is read now; both validated at
/// registration).
pub fn keys_from_args(jwks_file: Option<&Path>, jwks_uri: Option<&str>) -> Result<Option<ClientKeys>, ClientError> {
    match (jwks_file, jwks_uri) {
        (Some(_), Some(_)) => Err(ClientError::invalid("--jwks-file", "give --jwks-file or --jwks-uri, not both")),
        (Some(f), None) => std::fs::read_to_string(f)
            .map(|t| Some(ClientKeys::Jwks(t)))
            .map_err(|e| ClientError::invalid("--jwks-file", format!("cannot read {}: {e}", f.display()))),
        (None, Some(u)) => Ok(Some(ClientKeys::JwksUri(u.to_string()))),
        (None, None) => Ok(None),
    }
}

/// A client assertion (RFC 7523) for `client_id`, signed with the PEM private key at `key`:
/// RS384 for an RSA key, ES384 for an EC P-384 key; `aud` = `token_url`, `exp` four
/// minutes ahead, a random `jti`.
pub fn sign_assertion(client_id: &str, token_url: &str, key: &Path, kid: &str) -> Result<String, ClientError> {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let pem =
        std::fs::read(key).map_err(|e| ClientError::invalid("--key", format!("cannot read {}: {e}", key.display())))?;
    let (alg, encoding) = if let Ok(k) = EncodingKey::from_rsa_pem(&pem) {
        (Algorithm::RS384, k)
    } else if let Ok(k) = EncodingKey::from_ec_pem(&pem) {
        (Algorithm::ES384, k)
    } else {
        return Err(ClientError::invalid("--key", format!("{} is not an RSA or EC private key in PEM", key.display())));
    };
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "exp": now + 240,
        "iat": now,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    let header = Header { kid: Some(kid.to_string()), typ: Some("JWT".into()), ..Header::new(alg) };
    // An EC key of another curve is refused here (ES384 needs P-384).
    jsonwebtoken::encode(&header, &claims, &encoding)
        .map_err(|e| ClientError::invalid("--key", format!("cannot sign {alg:?} with this key: {e}")))
}

/// What `client register` prints.
pub fn render_registered(client_id: &str, secret: Option<&str>) -> String {
    let mut out = format!("client_id: {client_id}\n");
    if let Some(s) = secret {
        let _ = writeln!(out, "client_secret: {s}");
        out.push_str("Store the secret now: it is shown only this once (Portico keeps only a hash).\n");
    }
    out
}

/// What `client list` prints: one block per client.
pub fn render_list(clients: &[ClientSummary]) -> String {
    if clients.is_empty() {
        return "no clients registered\n".into();
    }
    let mut out = String::new();
    for c in clients {
        let state = match (&c.disabled_at, &c.disabled_by) {
            (Some(at), Some(by)) => format!("disabled {at} ({by})"),
            (Some(at), None) => format!("disabled {at}"),
            (None, _) => "enabled".into(),
        };
        let origin = if c.from_config { "config" } else { "registered" };
        let _ =
            writeln!(out, "{}  {}  [{}, {origin}, {state}]", c.client.client_id, c.client.name, c.client.kind.as_str());
        for uri in &c.client.redirect_uris {
            let _ = writeln!(out, "    redirect_uri: {uri}");
        }
        let _ = writeln!(out, "    scopes: {}", c.client.allowed_scopes.join(" "));
        if let Some(p) = &c.client.partner {
            let _ = writeln!(out, "    purpose of use: {}", p.purpose);
            let groups = if p.groups.is_empty() { "(none)".to_string() } else { p.groups.join(", ") };
            let _ = writeln!(out, "    groups: {groups}");
        }
        if let Some(u) = &c.jwks_uri {
            let _ = writeln!(out, "    jwks_uri: {u}");
        }
        if c.has_inline_jwks {
            out.push_str("    jwks: inline\n");
        }
    }
    out
}
