//! `wss://` on loopback: the real `sealdex mediator` binary serving TLS with
//! a certificate issued at test time by a private CA (rcgen), devices that
//! trust that CA through `TrustRoots::from_pem`, and devices that do not
//! (Mozilla's roots, or another CA) refused with a TLS error.
#![cfg(feature = "mediator")]

mod mediator_util;

use mediator_util::*;
use sealdex::sync::SyncError;
use sealdex::sync::client::{Device, DeviceConfig};
use sealdex::sync::tls::{RelayTls, TrustRoots};

/// A private CA and a `localhost` certificate it issued: (CA PEM, leaf PEM,
/// leaf key PEM).
fn issue() -> (String, String, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "sealdex test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    (ca.pem(), leaf.pem(), leaf_key.serialize_pem())
}

async fn connect(url: &str, id: u64, roots: TrustRoots) -> Result<Device, SyncError> {
    let mut cfg = DeviceConfig::new(url, keys(61), id);
    cfg.roots = roots;
    cfg.reconnect = false;
    tokio::time::timeout(STEP, Device::connect(cfg))
        .await
        .expect("connect settles in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_sync_over_wss_and_untrusted_certificates_are_refused() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, cert_pem, key_pem) = issue();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, &key_pem).unwrap();
    let data = dir.path().join("relay");
    let (_relay, ws_url) = spawn_mediator(&[
        "--listen",
        "127.0.0.1:0",
        "--data",
        data.to_str().unwrap(),
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    // The certificate names localhost; the socket is on 127.0.0.1.
    let port = ws_url.rsplit(':').next().unwrap();
    let url = format!("wss://localhost:{port}");

    let roots = TrustRoots::from_pem(ca_pem.as_bytes()).unwrap();
    let a = connect(&url, 1, roots.clone()).await.unwrap();
    let mut b = connect(&url, 2, roots).await.unwrap();
    for i in 0..5u8 {
        a.reflect(&[b'x', i]).unwrap().await.unwrap();
    }
    let got = receive(&mut b, 5).await;
    assert_eq!(got, (0..5u8).map(|i| vec![b'x', i]).collect::<Vec<_>>());

    // Mozilla's roots do not include the test CA; nor does another CA.
    let err = connect(&url, 3, TrustRoots::WebPki).await.unwrap_err();
    assert!(matches!(err, SyncError::Tls(_)), "{err:?}");
    let (other_ca, _, _) = issue();
    let err = connect(&url, 3, TrustRoots::from_pem(other_ca.as_bytes()).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, SyncError::Tls(_)), "{err:?}");
    // Plain ws:// to a TLS listener gets no WebSocket either.
    assert!(connect(&ws_url, 4, TrustRoots::WebPki).await.is_err());
}

#[test]
fn bad_pem_is_a_clear_error_that_does_not_quote_the_key() {
    let (ca, cert, key) = issue();
    assert!(RelayTls::from_pem(cert.as_bytes(), key.as_bytes()).is_ok());
    // A key that is not the certificate's.
    let (_, _, other_key) = issue();
    let err = RelayTls::from_pem(cert.as_bytes(), other_key.as_bytes()).unwrap_err();
    assert!(matches!(err, SyncError::Tls(_)), "{err}");
    // Garbage in the key file: the message names the problem, not the bytes.
    let secret =
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw@@\n-----END PRIVATE KEY-----\n";
    let err = RelayTls::from_pem(cert.as_bytes(), secret.as_bytes()).unwrap_err();
    assert!(!err.to_string().contains("c2VjcmV0"), "{err}");
    assert!(RelayTls::from_pem(b"", key.as_bytes()).is_err());
    assert!(TrustRoots::from_pem(b"not pem").is_err());
    assert!(TrustRoots::from_pem(ca.as_bytes()).is_ok());
    // The CLI refuses a certificate without its key.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sealdex"))
        .args([
            "mediator",
            "--listen",
            "127.0.0.1:0",
            "--data",
            "/nonexistent",
        ])
        .args(["--tls-cert", "cert.pem"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
}
