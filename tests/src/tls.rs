//! A certificate authority and a server certificate for `example.com` and `*.example.com`, generated
//! once per test process; clients trust the authority (no verification is switched off).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use tokio_rustls::rustls;

/// PEM texts of the generated certificates.
#[derive(Debug, Clone)]
pub struct Pem {
    /// The authority.
    pub ca: String,
    /// The server certificate.
    pub cert: String,
    /// The server key.
    pub key: String,
}

/// The per-process certificates.
pub fn pem() -> &'static Pem {
    static PEM: OnceLock<Pem> = OnceLock::new();
    PEM.get_or_init(|| {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "Portcullis end-to-end test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let key = KeyPair::generate().expect("server key");
        let mut leaf =
            CertificateParams::new(vec!["example.com".to_owned(), "*.example.com".to_owned()])
                .expect("server params");
        leaf.distinguished_name
            .push(DnType::CommonName, "*.example.com");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = leaf
            .signed_by(&key, &ca_cert, &ca_key)
            .expect("server certificate");
        Pem {
            ca: ca_cert.pem(),
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    })
}

/// Certificate files written into a test's directory.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// Server certificate followed by the authority (nginx `ssl_certificate`, Caddy `tls`).
    pub chain: PathBuf,
    /// Server key.
    pub key: PathBuf,
    /// Chain and key in one file (HAProxy `crt`).
    pub combined: PathBuf,
    /// The authority alone.
    pub ca: PathBuf,
}

/// Write the certificates into `dir`.
pub fn write(dir: &Path) -> CertFiles {
    let pem = pem();
    let files = CertFiles {
        chain: dir.join("example.com.crt"),
        key: dir.join("example.com.key"),
        combined: dir.join("example.com.pem"),
        ca: dir.join("ca.crt"),
    };
    let chain = format!("{}{}", pem.cert, pem.ca);
    std::fs::write(&files.chain, &chain).expect("write certificate");
    std::fs::write(&files.key, &pem.key).expect("write key");
    std::fs::write(&files.combined, format!("{chain}{}", pem.key)).expect("write combined");
    std::fs::write(&files.ca, &pem.ca).expect("write CA");
    files
}

/// A rustls client configuration (ring) that trusts only the test authority; HTTP/1.1.
pub fn client_config() -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem().ca.as_bytes()) {
        roots.add(cert.expect("CA pem")).expect("CA root");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}
