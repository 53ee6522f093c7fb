//! Certificates for the TLS unit tests: a self-signed one for `localhost`,
//! as PEM files in a directory of its own.

use std::path::PathBuf;

use crate::config::{ClientTls, ServerTls};

/// A self-signed certificate for `localhost` and its key, removed on drop.
pub(super) struct Pem {
    dir: PathBuf,
    pub(super) cert: PathBuf,
    key: PathBuf,
}

impl Pem {
    /// Made fresh, in a directory named after `test`.
    pub(super) fn new(test: &str) -> Pem {
        let dir = std::env::temp_dir().join(format!("rpc-tls-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        Pem { dir, cert, key }
    }

    /// `[server.tls]` with this certificate.
    pub(super) fn server(&self) -> ServerTls {
        ServerTls::new(&self.cert, &self.key)
    }

    /// `[client.tls]` trusting this certificate alone.
    pub(super) fn client(&self) -> ClientTls {
        ClientTls::new().ca_file(&self.cert)
    }
}

impl Drop for Pem {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
