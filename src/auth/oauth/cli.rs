//! What `portico client register|list|disable` needs beyond [`Clients`]: opening the
//! client registry from a config without starting the gateway, reading a JWKS file, and
//! the text the commands print. A generated secret is printed once, by `register`, and
//! never again; nothing here prints a hash.

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
        if let Some(u) = &c.jwks_uri {
            let _ = writeln!(out, "    jwks_uri: {u}");
        }
        if c.has_inline_jwks {
            out.push_str("    jwks: inline\n");
        }
    }
    out
}
