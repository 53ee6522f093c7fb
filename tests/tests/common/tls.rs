//! TLS for the tests: CAs and certificates made with rcgen at test time
//! into a fresh directory (removed on drop; no key is ever committed), the
//! server and client configurations that use them, and a `Whoami` service
//! that answers with the caller's certificate subject.
//!
//! Included by the `tls_*` tests as `#[path = "common/tls.rs"] mod tls;`
//! beside `mod common;`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};
use rpc_transport::config::{ClientConfigBuilder, ClientTls, ServerConfigBuilder, ServerTls};

use crate::common::{client_builder, server_builder};

/// A directory of PEM files under the temp dir, removed on drop.
pub(crate) struct Pki {
    pub(crate) dir: PathBuf,
}

/// A certificate authority: its certificate on disk, its key in memory.
pub(crate) struct Ca {
    pub(crate) cert_file: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

/// How a leaf certificate is made.
#[derive(Clone, Copy)]
pub(crate) struct Leaf<'a> {
    pub(crate) names: &'a [&'a str],
    pub(crate) common_name: &'a str,
    pub(crate) expired: bool,
}

impl Leaf<'_> {
    /// A server certificate for `localhost` and 127.0.0.1, valid now.
    pub(crate) const SERVER: Leaf<'static> = Leaf {
        names: &["localhost", "127.0.0.1"],
        common_name: "rpc test server",
        expired: false,
    };
}

impl Pki {
    pub(crate) fn new() -> Pki {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rpc-tls-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir for the certificates");
        Pki { dir }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A new CA named `name`, its certificate written to `<name>.pem`.
    pub(crate) fn ca(&self, name: &str) -> Ca {
        let key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("a self-signed CA");
        let cert_file = self.path(&format!("{name}.pem"));
        std::fs::write(&cert_file, cert.pem()).expect("the CA written");
        Ca {
            cert_file,
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate signed by `ca`, written to `<name>.pem` and `<name>.key`.
    pub(crate) fn leaf(&self, ca: &Ca, name: &str, leaf: Leaf<'_>) -> (PathBuf, PathBuf) {
        let names: Vec<String> = leaf.names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, leaf.common_name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "rpc tests");
        if leaf.expired {
            params.not_before = date_time_ymd(2001, 1, 1);
            params.not_after = date_time_ymd(2002, 1, 1);
        }
        let key = KeyPair::generate().expect("a leaf key");
        let cert = params.signed_by(&key, &ca.issuer).expect("a signed leaf");
        let (cert_file, key_file) = (
            self.path(&format!("{name}.pem")),
            self.path(&format!("{name}.key")),
        );
        std::fs::write(&cert_file, cert.pem()).expect("the certificate written");
        std::fs::write(&key_file, key.serialize_pem()).expect("the key written");
        (cert_file, key_file)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A CA, a server certificate for localhost/127.0.0.1 it signed, and a
/// client certificate (`CN=alice`) it signed.
pub(crate) struct Setup {
    pub(crate) pki: Pki,
    pub(crate) ca: Ca,
    pub(crate) server: (PathBuf, PathBuf),
    pub(crate) client: (PathBuf, PathBuf),
}

impl Setup {
    pub(crate) fn new() -> Setup {
        let pki = Pki::new();
        let ca = pki.ca("ca");
        let server = pki.leaf(&ca, "server", Leaf::SERVER);
        let alice = Leaf {
            names: &["alice"],
            common_name: "alice",
            expired: false,
        };
        let client = pki.leaf(&ca, "client", alice);
        Setup {
            pki,
            ca,
            server,
            client,
        }
    }

    /// `[server.tls]` with the server certificate.
    pub(crate) fn server_tls(&self) -> ServerTls {
        ServerTls::new(&self.server.0, &self.server.1)
    }

    /// A server on 127.0.0.1:0 serving TLS with the server certificate.
    pub(crate) fn server(&self) -> ServerConfigBuilder {
        server_builder().tls(self.server_tls())
    }

    /// The same, requiring client certificates signed by the CA.
    pub(crate) fn mtls_server(&self) -> ServerConfigBuilder {
        server_builder().tls(self.server_tls().client_ca_file(&self.ca.cert_file))
    }

    /// `[client.tls]` trusting the CA.
    pub(crate) fn client_tls(&self) -> ClientTls {
        ClientTls::new().ca_file(&self.ca.cert_file)
    }

    /// A client of `address` trusting the CA.
    pub(crate) fn client(&self, address: &str, codec: &str) -> ClientConfigBuilder {
        client_builder(address, codec).tls(self.client_tls())
    }

    /// The same, presenting the client certificate.
    pub(crate) fn mtls_client(&self, address: &str, codec: &str) -> ClientConfigBuilder {
        let tls = self.client_tls().identity(&self.client.0, &self.client.1);
        client_builder(address, codec).tls(tls)
    }
}

/// Writes `bytes` to `path` (to swap a certificate under a server).
pub(crate) fn replace(path: &Path, from: &Path) {
    std::fs::copy(from, path).expect("a certificate file replaced");
}

/// Answers with what the Context knows of the caller.
#[rpc_core::rpc_service]
pub(crate) trait Whoami {
    /// The subject of the caller's certificate, or "" without mTLS.
    async fn whoami(&self) -> String;

    /// Returns `n`.
    async fn echo(&self, n: u64) -> u64;
}

pub(crate) struct WhoamiImpl;

impl Whoami for WhoamiImpl {
    async fn whoami(&self) -> String {
        let context = rpc_core::Context::current();
        let identity = context.as_ref().and_then(|c| c.peer_identity());
        identity.unwrap_or_default().to_owned()
    }

    async fn echo(&self, n: u64) -> u64 {
        n
    }
}

/// A registry offering [`Whoami`].
pub(crate) fn registry() -> rpc_core::Registry {
    rpc_core::Registry::new()
        .with(WhoamiServer::new(WhoamiImpl))
        .expect("whoami registers")
}
