//! A throw-away PKI for the TLS tests, made with rcgen and written as PEM files: a CA, a server
//! certificate for `localhost` and 127.0.0.1 signed by it, a client certificate (CN `sensor-7`)
//! signed by it, and a client certificate signed by another CA. Shared by `sim/tests/tls.rs`
//! and the unit tests of `sim/src/tls.rs` (through `#[path]`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// The files, in `dir`.
pub struct Pki {
    pub dir: PathBuf,
}

/// The client certificate's subject CN.
pub const CLIENT_CN: &str = "sensor-7";

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = p.self_signed(&key).unwrap();
    Ca { cert, key }
}

/// A certificate signed by `ca`, with `cn` as subject CN when given, written as `name.pem` and
/// `name.key`.
fn leaf(dir: &Path, name: &str, ca: &Ca, sans: &[&str], cn: Option<&str>, client: bool) {
    let key = KeyPair::generate().unwrap();
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut p = CertificateParams::new(sans).unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(cn) = cn {
        p.distinguished_name.push(DnType::CommonName, cn);
    }
    p.distinguished_name
        .push(DnType::OrganizationName, "mqsim tests");
    p.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    let cert = p.signed_by(&key, &ca.cert, &ca.key).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
}

impl Pki {
    /// Makes the files in a new directory under the system's temp dir, named after `tag`.
    pub fn new(tag: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("mqsim-pki-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ca1 = ca("mqsim test CA");
        std::fs::write(dir.join("ca.pem"), ca1.cert.pem()).unwrap();
        leaf(
            &dir,
            "server",
            &ca1,
            &["localhost", "127.0.0.1"],
            Some("localhost"),
            false,
        );
        leaf(&dir, "client", &ca1, &[], Some(CLIENT_CN), true);
        leaf(&dir, "client-no-cn", &ca1, &[], None, true);
        let ca2 = ca("some other CA");
        std::fs::write(dir.join("other-ca.pem"), ca2.cert.pem()).unwrap();
        leaf(&dir, "rogue", &ca2, &[], Some("rogue"), true);
        Pki { dir }
    }

    /// The path of one of the files (`ca.pem`, `server.pem`, `server.key`, `client.pem`, ...).
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_string()
    }

    /// A tokio-rustls client that trusts `ca.pem`, presenting `client` (`"client"`,
    /// `"client-no-cn"`, `"rogue"`) as its certificate when given.
    pub fn connector(&self, client: Option<&str>) -> tokio_rustls::TlsConnector {
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        use tokio_rustls::rustls::{ClientConfig, RootCertStore};
        let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(self.path("ca.pem")).unwrap())
            .unwrap();
        let b = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = match client {
            Some(name) => b
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_file(self.path(&format!("{name}.pem"))).unwrap()],
                    PrivateKeyDer::from_pem_file(self.path(&format!("{name}.key"))).unwrap(),
                )
                .unwrap(),
            None => b.with_no_client_auth(),
        };
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
