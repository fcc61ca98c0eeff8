//! The HTTP(S) client the recording proxy forwards with: a pooled hyper client over
//! hyper-rustls (ring provider named explicitly: docs/ARCHITECTURE.md, "Traps"), the trust
//! choices of the command
//! line, per-request deadlines, and failures sorted into what a client should be told
//! (refused, reset, TLS, timeout).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::RootCertStore;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::body::Body;
use crate::error::Error;

/// Which upstream certificates are trusted.
#[derive(Debug, Clone, Default)]
pub struct TrustConfig {
    /// Use the operating system's roots instead of the Mozilla (webpki-roots) set.
    pub native_roots: bool,
    /// PEM files of extra CAs (on-premises front-ends use a private CA).
    pub extra_ca: Vec<PathBuf>,
    /// Accept any certificate (explicit opt-in, logged at WARN).
    pub insecure: bool,
}

/// Why an upstream request failed; decides the 502/504 the client gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// Nothing listens there (connection refused, or the name does not resolve).
    Refused,
    /// The connection broke before the response was complete.
    Reset,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// No answer within the deadline.
    Timeout,
    /// Anything else.
    Other,
}

/// An upstream failure with a message that says which.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub(crate) struct UpstreamError {
    pub kind: FailureKind,
    pub message: String,
}

impl UpstreamError {
    /// The status the client gets: 504 for a timeout, 502 otherwise.
    pub fn status(&self) -> http::StatusCode {
        match self.kind {
            FailureKind::Timeout => http::StatusCode::GATEWAY_TIMEOUT,
            _ => http::StatusCode::BAD_GATEWAY,
        }
    }

    /// A UCWA-style subcode naming the failure.
    pub fn subcode(&self) -> &'static str {
        match self.kind {
            FailureKind::Refused => "UpstreamRefused",
            FailureKind::Reset => "UpstreamReset",
            FailureKind::Tls => "UpstreamTlsFailure",
            FailureKind::Timeout => "UpstreamTimeout",
            FailureKind::Other => "UpstreamFailure",
        }
    }

    /// A timeout after `after`.
    pub fn timeout(after: Duration) -> Self {
        UpstreamError {
            kind: FailureKind::Timeout,
            message: format!(
                "upstream timeout: no answer within {} s",
                after.as_secs_f64()
            ),
        }
    }

    /// Classify any error from the client or a response body by walking its source chain.
    pub fn classify(err: &(dyn std::error::Error + 'static)) -> Self {
        let detail = chain_text(err);
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = cur {
            if e.downcast_ref::<rustls::Error>().is_some() {
                return Self::new(FailureKind::Tls, "upstream TLS failure", &detail);
            }
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if io
                    .get_ref()
                    .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
                {
                    return Self::new(FailureKind::Tls, "upstream TLS failure", &detail);
                }
                use std::io::ErrorKind::*;
                match io.kind() {
                    ConnectionRefused | AddrNotAvailable | HostUnreachable | NetworkUnreachable => {
                        return Self::new(
                            FailureKind::Refused,
                            "upstream connection refused",
                            &detail,
                        );
                    }
                    ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => {
                        return Self::new(FailureKind::Reset, "upstream connection reset", &detail);
                    }
                    TimedOut => {
                        return Self::new(FailureKind::Timeout, "upstream timeout", &detail);
                    }
                    _ => {}
                }
            }
            if let Some(h) = e.downcast_ref::<hyper::Error>()
                && (h.is_incomplete_message() || h.is_closed() || h.is_canceled())
            {
                return Self::new(FailureKind::Reset, "upstream connection reset", &detail);
            }
            cur = e.source();
        }
        // Connector errors may arrive boxed twice, out of reach of downcasting: the text
        // still says what happened.
        let lower = detail.to_ascii_lowercase();
        if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
            return Self::new(FailureKind::Tls, "upstream TLS failure", &detail);
        }
        if lower.contains("connection refused") {
            return Self::new(FailureKind::Refused, "upstream connection refused", &detail);
        }
        if let Some(c) = err.downcast_ref::<hyper_util::client::legacy::Error>()
            && c.is_connect()
        {
            // DNS failures and the like: nothing could be reached.
            return Self::new(FailureKind::Refused, "upstream unreachable", &detail);
        }
        Self::new(FailureKind::Other, "upstream failure", &detail)
    }

    fn new(kind: FailureKind, what: &str, detail: &str) -> Self {
        UpstreamError {
            kind,
            message: format!("{what}: {detail}"),
        }
    }
}

/// `a: b: c` from an error and its sources, without repeats.
fn chain_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = e.source();
    }
    parts.join(": ")
}

/// The pooled upstream client. Cheap to clone.
#[derive(Clone)]
pub(crate) struct UpstreamClient {
    client: Client<HttpsConnector<HttpConnector>, Body>,
}

impl fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamClient").finish_non_exhaustive()
    }
}

impl UpstreamClient {
    /// Build the client; unreadable or empty CA files are input errors.
    pub fn new(trust: &TrustConfig) -> Result<Self, Error> {
        let tls = client_tls_config(trust)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(15)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        // HTTP/1.1 upstream: one connection per held P-GET, so the idle pool must be large
        // enough for hundreds of them to be reused rather than re-dialled.
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(1024)
            .build(connector);
        Ok(UpstreamClient { client })
    }

    /// Send `req` and wait for the response head at most `deadline`.
    pub async fn send(
        &self,
        req: Request<Body>,
        deadline: Duration,
    ) -> Result<Response<Incoming>, UpstreamError> {
        match tokio::time::timeout(deadline, self.client.request(req)).await {
            Err(_) => Err(UpstreamError::timeout(deadline)),
            Ok(Err(err)) => Err(UpstreamError::classify(&err)),
            Ok(Ok(resp)) => Ok(resp),
        }
    }
}

/// The rustls crypto provider of both the upstream client and the TLS listener.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// rustls client configuration for the trust choices.
pub(crate) fn client_tls_config(trust: &TrustConfig) -> Result<rustls::ClientConfig, Error> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::tls("protocol versions", e))?;
    if trust.insecure {
        tracing::warn!("--insecure-upstream: upstream certificates are NOT verified");
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth());
    }
    let roots = root_store(trust)?;
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

fn root_store(trust: &TrustConfig) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    if trust.native_roots {
        let found = rustls_native_certs::load_native_certs();
        for err in &found.errors {
            tracing::warn!(%err, "while loading the system's root certificates");
        }
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        tracing::debug!(added, ignored, "system root certificates");
        if added == 0 {
            return Err(Error::Tls {
                context: "--native-roots: no usable root certificate found on this system".into(),
                source: None,
            });
        }
    } else {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    for path in &trust.extra_ca {
        for cert in pem_certificates(path)? {
            roots
                .add(cert)
                .map_err(|e| Error::tls(path.display().to_string(), e))?;
        }
    }
    Ok(roots)
}

/// The certificates of a PEM file; an unreadable file or one without any is an error.
pub(crate) fn pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| Error::tls(path.display().to_string(), e))?
        .collect::<Result<_, _>>()
        .map_err(|e| Error::tls(path.display().to_string(), e))?;
    if certs.is_empty() {
        return Err(Error::Tls {
            context: format!("{}: no PEM certificate in the file", path.display()),
            source: None,
        });
    }
    Ok(certs)
}

/// `--insecure-upstream`: accepts any certificate, still checks handshake signatures.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_with_each_trust_choice() {
        UpstreamClient::new(&TrustConfig::default()).unwrap();
        UpstreamClient::new(&TrustConfig {
            insecure: true,
            ..TrustConfig::default()
        })
        .unwrap();
        let err = UpstreamClient::new(&TrustConfig {
            extra_ca: vec!["/nonexistent/ca.pem".into()],
            ..TrustConfig::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn io_errors_are_classified() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(UpstreamError::classify(&refused).kind, FailureKind::Refused);
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(UpstreamError::classify(&reset).kind, FailureKind::Reset);
        let tls = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let e = UpstreamError::classify(&tls);
        assert_eq!(e.kind, FailureKind::Tls);
        assert!(e.message.contains("certificate"), "{}", e.message);
        assert_eq!(
            UpstreamError::timeout(Duration::from_secs(1)).status(),
            http::StatusCode::GATEWAY_TIMEOUT
        );
    }
}
