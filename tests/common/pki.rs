//! Certificates for the TLS tests, generated per test: a CA, a server
//! certificate for 127.0.0.1 and a client certificate, as PEM files and bytes.

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};

pub struct Pki {
    pub ca_file: PathBuf,
    pub ca_pem: Vec<u8>,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert_pem: Vec<u8>,
    pub client_key_pem: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl Pki {
    pub fn generate() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "mqgate test CA");
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();

        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&server_key, &ca, &ca_key)
            .unwrap();

        let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        client_params
            .distinguished_name
            .push(DnType::CommonName, "a test client");
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = KeyPair::generate().unwrap();
        let client = client_params.signed_by(&client_key, &ca, &ca_key).unwrap();

        let write = |name: &str, text: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        Pki {
            ca_file: write("ca.pem", ca.pem()),
            ca_pem: ca.pem().into_bytes(),
            server_cert: write("server.pem", server.pem()),
            server_key: write("server-key.pem", server_key.serialize_pem()),
            client_cert_pem: client.pem().into_bytes(),
            client_key_pem: client_key.serialize_pem().into_bytes(),
            _dir: dir,
        }
    }

    /// The client certificate and key in one PEM, as reqwest's `Identity` wants.
    pub fn client_identity(&self) -> Vec<u8> {
        [self.client_cert_pem.as_slice(), &self.client_key_pem].concat()
    }
}
