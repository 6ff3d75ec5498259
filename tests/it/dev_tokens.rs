//! Dev tokens stay on the developer's machine (issue 12 part 5): the config's static tokens
//! are accepted only from a loopback peer and only while the public base URL is loopback
//! too. Behind a reverse proxy on the same host every peer is 127.0.0.1, so a public base
//! URL that is not loopback refuses them; a peer on another address is refused even when
//! the gateway believes it listens on loopback. SMART tokens are not affected.

use crate::common::*;
use std::sync::Arc;

/// A FHIR read and the staff client registry.
fn staff_paths(gw: &Gateway) -> [String; 2] {
    [format!("/fhir/Patient/{}", gw.patient_id("ehr", "pt-10001")), "/admin/clients".to_string()]
}

async fn status_with_dev_token(gw: &Gateway, path: &str) -> (u16, String) {
    let r = gw.http.get(format!("{}{path}", gw.origin)).bearer_auth(TOKEN).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

#[tokio::test]
async fn a_public_base_url_that_is_not_loopback_refuses_dev_tokens_even_from_loopback() {
    // The demo's setting: loopback listen, no public base URL. Dev tokens work.
    let gw = Gateway::start(&fixture_file_sources()).await;
    for path in staff_paths(&gw) {
        let (status, body) = status_with_dev_token(&gw, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    gw.stop().await;

    // The same gateway behind a reverse proxy: it still listens on 127.0.0.1 and the proxy
    // connects from 127.0.0.1, but the public base URL says it is served to the world.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let server = "public_base_url = \"https://records.example-hospital.org/fhir\"";
    let gw = Gateway::start_on(listener, dir, server, &fixture_file_sources(), None).await;
    for path in staff_paths(&gw).iter().chain(&["/fhir/$export".to_string()]) {
        let (status, body) = status_with_dev_token(&gw, path).await;
        assert_eq!(status, 401, "{path}: {body}");
    }
    let (status, _) = gw.get_with(&format!("{}/fhir/metadata", gw.origin), None, &[]).await;
    assert_eq!(status, 200, "the gateway itself answers");
}

/// A local address of this machine that is not loopback (the interface a default route
/// would use; no packet is sent), if there is one.
fn non_loopback_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn a_peer_that_is_not_loopback_is_refused_dev_tokens() {
    let Some(ip) = non_loopback_address() else {
        eprintln!("skipped: this machine has no non-loopback interface address to listen on");
        return;
    };
    // The gateway is reached on a non-loopback interface address, so the peer (this test,
    // connecting to that address) is not loopback; its config still says 127.0.0.1.
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let gw = Gateway::start_on(listener, dir, "", &fixture_file_sources(), None).await;
    for path in staff_paths(&gw) {
        let (status, body) = status_with_dev_token(&gw, &path).await;
        assert_eq!(status, 401, "{path} from {ip}: {body}");
    }
    let (status, _) = gw.get_with(&format!("{}/fhir/metadata", gw.origin), None, &[]).await;
    assert_eq!(status, 200, "the gateway itself answers on {ip}");
}
