//! TLS server configuration from PEM files, for every listener that offers TLS
//! (the HTTP APIs and the docs today; MQTT over TLS and WSS can take the same).
//!
//! The crypto provider is rustls' `ring`, named explicitly: no process-wide
//! default is installed, so another provider compiled into the same binary (a
//! client library's, in tests) changes nothing here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// Where a listener's certificate material lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates; when set, clients must present a certificate they
    /// signed (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// A certificate, key or CA file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", file.display())]
pub struct TlsError {
    pub file: PathBuf,
    pub message: String,
}

/// The configuration key naming `file` (`cert`, `key`, `client_ca`).
pub fn file_key(file: TlsFile) -> &'static str {
    match file {
        TlsFile::Cert => "cert",
        TlsFile::Key => "key",
        TlsFile::ClientCa => "client_ca",
    }
}

/// Which of the three files an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    Cert,
    Key,
    ClientCa,
}

impl TlsError {
    fn new(file: &Path, message: impl ToString) -> Self {
        TlsError {
            file: file.to_path_buf(),
            message: message.to_string(),
        }
    }
}

/// A rustls server configuration from `files`, offering the ALPN protocols
/// given (e.g. `[b"http/1.1"]`; empty: no ALPN).
pub fn server_config(
    files: &TlsFiles,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, (TlsFile, TlsError)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates(&files.cert).map_err(|e| (TlsFile::Cert, e))?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| (TlsFile::Key, TlsError::new(&files.key, pem_error(e))))?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| (TlsFile::Cert, TlsError::new(&files.cert, e)))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca).map_err(|e| (TlsFile::ClientCa, e))? {
                roots
                    .add(cert)
                    .map_err(|e| (TlsFile::ClientCa, TlsError::new(ca, e)))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| (TlsFile::ClientCa, TlsError::new(ca, e)))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| (TlsFile::Key, TlsError::new(&files.key, e)))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Every certificate in a PEM file; none is an error.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::new(path, pem_error(e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::new(path, pem_error(e)))?;
    if chain.is_empty() {
        return Err(TlsError::new(path, "no PEM certificate in the file"));
    }
    Ok(chain)
}

fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM private key in the file".into(),
        other => format!("not a usable PEM file ({other:?})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path) -> TlsFiles {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let files = TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            client_ca: None,
        };
        std::fs::write(&files.cert, cert.cert.pem()).unwrap();
        std::fs::write(&files.key, cert.key_pair.serialize_pem()).unwrap();
        files
    }

    #[test]
    fn builds_from_a_generated_pair_with_and_without_client_ca() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = write_pair(dir.path());
        let config = server_config(&files, &[b"http/1.1"]).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        files.client_ca = Some(files.cert.clone());
        server_config(&files, &[]).unwrap();
    }

    #[test]
    fn names_the_file_that_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = write_pair(dir.path());
        files.key = files.cert.clone();
        let (which, e) = server_config(&files, &[]).unwrap_err();
        assert_eq!(which, TlsFile::Key);
        assert!(e.to_string().contains("no PEM private key"), "{e}");
        files.cert = dir.path().join("missing.pem");
        let (which, e) = server_config(&files, &[]).unwrap_err();
        assert_eq!(which, TlsFile::Cert);
        assert!(e.to_string().contains("missing.pem"), "{e}");
    }
}
