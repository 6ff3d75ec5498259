//! TLS towards one source: the HTTP client (reqwest over rustls, the only TLS stack built)
//! that trusts the source's own CA when one is configured — and then only it — and
//! presents the gateway's client certificate for mutual TLS. Files are read once at
//! start-up; errors name the file, never its content, and the key is never logged.

use super::CredentialError;
use crate::config::SourceTls;
use std::path::Path;

/// A reqwest client builder with `tls` applied (nothing else set).
pub fn client_builder(tls: &SourceTls, base_dir: &Path) -> Result<reqwest::ClientBuilder, CredentialError> {
    let mut builder = reqwest::Client::builder();
    if let Some(ca) = &tls.ca_file {
        let path = base_dir.join(ca);
        let pem = std::fs::read(&path).map_err(|e| unreadable(&path, &e))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|_| CredentialError::Tls(format!("{} holds no PEM certificate", path.display())))?;
        if certificates.is_empty() {
            return Err(CredentialError::Tls(format!("{} holds no PEM certificate", path.display())));
        }
        builder = builder.tls_built_in_root_certs(false);
        for c in certificates {
            builder = builder.add_root_certificate(c);
        }
    }
    if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
        let path = base_dir.join(cert);
        let mut pem = std::fs::read(&path).map_err(|e| unreadable(&path, &e))?;
        pem.push(b'\n');
        pem.extend_from_slice(key.reveal(base_dir)?.as_bytes());
        pem.push(b'\n');
        let identity = reqwest::Identity::from_pem(&pem).map_err(|_| {
            CredentialError::Tls(format!("{} and tls.client_key are not a PEM certificate and its key", path.display()))
        })?;
        builder = builder.identity(identity);
    }
    Ok(builder)
}

fn unreadable(path: &Path, e: &std::io::Error) -> CredentialError {
    CredentialError::Tls(format!("cannot read {}: {e}", path.display()))
}
