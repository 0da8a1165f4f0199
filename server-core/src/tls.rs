//! rustls server configuration from PEM files.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::ServeError;

fn file_error(file: &Path, message: impl ToString) -> ServeError {
    ServeError::TlsFile {
        file: file.to_owned(),
        message: message.to_string(),
    }
}

/// Load a PEM certificate chain and private key into a TLS acceptor (HTTP/1.1 over ALPN).
pub fn tls_acceptor(certificate: &Path, key: &Path) -> Result<TlsAcceptor, ServeError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certificate)
        .map_err(|e| file_error(certificate, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(certificate, e))?;
    if certs.is_empty() {
        return Err(file_error(certificate, "no certificate found"));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e))?;
    let mut config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_pem_files_and_names_the_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_path, cert.cert.pem()).unwrap();
        std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
        assert!(tls_acceptor(&cert_path, &key_path).is_ok());

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = tls_acceptor(&empty, &key_path).err().unwrap();
        assert!(err.to_string().contains("empty.pem"), "{err}");
        let err = tls_acceptor(&cert_path, &dir.path().join("missing.pem"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("missing.pem"), "{err}");
    }
}
