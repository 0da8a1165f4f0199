//! The rustls client configuration: the ring provider, the system roots plus configured extra
//! roots, or no certificate verification at all when an application says so.

use std::sync::Arc;

use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::{self, ClientConfig, DigitallySignedStruct, RootCertStore};

use crate::{ClientOptions, ProxyError};

/// Builds the TLS configuration (without ALPN: the client sets it per pool).
pub(crate) fn client_config(options: &ClientOptions) -> Result<ClientConfig, ProxyError> {
    let provider = Arc::new(crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|error| ProxyError::Options {
            reason: error.to_string(),
        })?;
    let config = if options.verify_tls {
        builder
            .with_root_certificates(roots(&options.extra_roots)?)
            .with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
            .with_no_client_auth()
    };
    Ok(config)
}

/// The system's trusted roots (`SSL_CERT_FILE`/`SSL_CERT_DIR` or the platform store) and the
/// extra ones.
fn roots(extra: &[CertificateDer<'static>]) -> Result<RootCertStore, ProxyError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::warn!(%error, "cannot load some of the system's trusted certificates");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(added, ignored, "system trusted certificates loaded");
    for (index, cert) in extra.iter().enumerate() {
        roots
            .add(cert.clone())
            .map_err(|error| ProxyError::Options {
                reason: format!("extra root #{index} cannot be trusted: {error}"),
            })?;
    }
    if roots.is_empty() {
        tracing::warn!(
            "no trusted root certificates: HTTPS upstreams will fail unless verification is off"
        );
    }
    Ok(roots)
}

/// `verify_tls: false`: any certificate is accepted, for any name. The handshake signatures are
/// still checked, so the peer holds the key of the certificate it sent (which says nothing about
/// who it is).
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

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
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
