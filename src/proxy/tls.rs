//! The optional TLS listener (`--tls-cert`/`--tls-key`): UCWA browser clients need https.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use tokio_rustls::TlsAcceptor;

use crate::error::Error;
use crate::upstream::{pem_certificates, provider};

/// A TLS acceptor (h2 and HTTP/1.1 by ALPN) from a PEM certificate chain and a PEM key.
pub fn acceptor_from_pem_files(cert: &Path, key: &Path) -> Result<TlsAcceptor, Error> {
    let certs = pem_certificates(cert)?;
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| Error::tls(key.display().to_string(), e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::tls("protocol versions", e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::tls("certificate and key do not work together", e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
