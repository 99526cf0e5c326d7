//! TLS for the mediator's WebSockets (`wss://`): the relay's certificate and
//! key, and the roots a device trusts. rustls on ring, no OpenSSL.
//!
//! Why TLS at all when envelopes are sealed end to end: the relay's
//! challenge proves the device holds the path key, but without TLS anyone on
//! the path sees the group id in the URL, the device ids and the envelope
//! sizes and times, and could impersonate the relay to a device (which would
//! learn nothing, but would stall its sync). TLS hides that metadata and
//! authenticates the relay.
//!
//! Why a device can trust custom roots: a self-hosted relay often has a
//! certificate from a private CA, or a self-signed one. [`TrustRoots::from_pem`]
//! replaces Mozilla's roots (the default, [`TrustRoots::WebPki`]) with the
//! PEM certificates given, which then are the only ones trusted.
//!
//! ```no_run
//! # fn run() -> Result<(), sealdex::sync::SyncError> {
//! use sealdex::sync::tls::{RelayTls, TrustRoots};
//! // The relay: `sealdex mediator --tls-cert cert.pem --tls-key key.pem`.
//! let relay_tls = RelayTls::from_pem_files("cert.pem".as_ref(), "key.pem".as_ref())?;
//! // A device trusting that relay's own CA (or self-signed certificate).
//! let roots = TrustRoots::from_pem(&std::fs::read("ca.pem").unwrap_or_default())?;
//! # let _ = (relay_tls, roots);
//! # Ok(()) }
//! ```

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::error::{SyncError, SyncResult};

/// rustls on ring. rustls 0.23.48 marks ring's provider deprecated because
/// ring has no post-quantum key exchange (X25519MLKEM768); aws-lc-rs has,
/// but builds a large C library. What this TLS protects is metadata only
/// (group id, device ids, sizes, times): envelopes are sealed end to end
/// under keys the relay never holds, whatever the transport. Moving to
/// aws-lc-rs is a one-line change here and in Cargo.toml.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_err(e: impl std::fmt::Display) -> SyncError {
    SyncError::Tls(e.to_string())
}

fn parse_certs(pem: &[u8], what: &str) -> SyncResult<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SyncError::Tls(format!("{what}: {e}")))?;
    if certs.is_empty() {
        return Err(SyncError::Tls(format!(
            "{what}: no PEM certificate (-----BEGIN CERTIFICATE-----) found"
        )));
    }
    Ok(certs)
}

/// The relay's TLS identity: its certificate chain and private key.
///
/// `Debug` shows nothing of the key.
#[derive(Clone)]
pub struct RelayTls(Arc<rustls::ServerConfig>);

impl std::fmt::Debug for RelayTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RelayTls")
    }
}

impl RelayTls {
    /// A certificate chain (PEM, leaf first) and its private key (PEM:
    /// PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> SyncResult<Self> {
        let certs = parse_certs(cert_chain_pem, "the relay's certificate")?;
        // The key's parse error is not shown: it could quote the file.
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| {
            SyncError::Tls(
                "the relay's key: no PEM private key (PKCS#8, PKCS#1 or SEC1) could be read".into(),
            )
        })?;
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(tls_err)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| {
                SyncError::Tls(format!(
                    "the relay's certificate and key do not go together: {e}"
                ))
            })?;
        Ok(RelayTls(Arc::new(config)))
    }

    /// As [`RelayTls::from_pem`], reading the two files.
    pub fn from_pem_files(cert_chain: &Path, key: &Path) -> SyncResult<Self> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| SyncError::io(format!("reading {}", p.display()), e))
        };
        let key_pem = zeroize::Zeroizing::new(read(key)?);
        Self::from_pem(&read(cert_chain)?, &key_pem)
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.0.clone())
    }
}

/// Which certificate authorities a device trusts for `wss://` relays.
#[derive(Clone, Default)]
pub enum TrustRoots {
    /// Mozilla's root program (the `webpki-roots` crate): what a relay with a
    /// public certificate (e.g. Let's Encrypt) needs.
    #[default]
    WebPki,
    /// Only these roots (a private CA, or the relay's self-signed
    /// certificate). Built with [`TrustRoots::from_pem`].
    Custom(Arc<rustls::RootCertStore>),
}

impl std::fmt::Debug for TrustRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrustRoots::WebPki => f.write_str("TrustRoots::WebPki"),
            TrustRoots::Custom(r) => write!(f, "TrustRoots::Custom({} roots)", r.len()),
        }
    }
}

impl TrustRoots {
    /// Trusts exactly the certificates in `pem` (one or more
    /// `-----BEGIN CERTIFICATE-----` blocks), and no others.
    pub fn from_pem(pem: &[u8]) -> SyncResult<Self> {
        let mut store = rustls::RootCertStore::empty();
        for cert in parse_certs(pem, "the trusted roots")? {
            store.add(cert).map_err(|e| {
                SyncError::Tls(format!("the trusted roots: a certificate was refused: {e}"))
            })?;
        }
        Ok(TrustRoots::Custom(Arc::new(store)))
    }

    /// The client configuration for these roots.
    pub(crate) fn client_config(&self) -> SyncResult<Arc<rustls::ClientConfig>> {
        let roots = match self {
            TrustRoots::WebPki => Arc::new(rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            }),
            TrustRoots::Custom(r) => r.clone(),
        };
        Ok(Arc::new(
            rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(tls_err)?
                .with_root_certificates(roots)
                .with_no_client_auth(),
        ))
    }
}
