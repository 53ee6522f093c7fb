//! TLS for `rpc-bench`'s `-tls` codecs, as `../shared/peerbench` runs them:
//! the server makes a fresh self-signed certificate for `localhost` and
//! 127.0.0.1 and writes it, before it announces its address, to the PEM
//! file [`ca_path`]; the client trusts exactly that file and checks the name
//! `localhost`. Both ends go through `[server.tls]` / `[client.tls]`.

use std::io::Write;
use std::path::{Path, PathBuf};

use rpc_transport::config::{ClientTls, ServerTls};

/// The name the client checks in the server's certificate.
pub const SERVER_NAME: &str = "localhost";

/// `$PEERBENCH_TLS_CA` (the harness sets it), else
/// `$TMPDIR/peerbench-tls-ca.pem`, as every peerbench system reads it.
pub fn ca_path() -> PathBuf {
    std::env::var_os("PEERBENCH_TLS_CA")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("peerbench-tls-ca.pem"))
}

/// The codec on the wire: `bincode-tls` is bincode over TLS.
pub fn wire_codec(codec: &str) -> &str {
    codec.strip_suffix("-tls").unwrap_or(codec)
}

/// The server's certificate and key, written for `[server.tls]` to read
/// at bind; the files are removed on drop (the certificate stays at
/// [`ca_path`] for the client).
#[derive(Debug)]
pub struct ServerCert {
    cert_file: PathBuf,
    key_file: PathBuf,
}

impl ServerCert {
    /// Makes a self-signed certificate for `localhost` and 127.0.0.1,
    /// writes it (atomically) to [`ca_path`] and, with its key, to files
    /// of this process under the temp dir.
    pub fn new() -> Result<ServerCert, Box<dyn std::error::Error>> {
        let names = vec![SERVER_NAME.to_string(), "127.0.0.1".to_string()];
        let made = rcgen::generate_simple_self_signed(names)?;
        let (cert, key) = (made.cert.pem(), made.signing_key.serialize_pem());
        let base = std::env::temp_dir().join(format!("rpc-bench-{}", std::process::id()));
        let this = ServerCert {
            cert_file: base.with_extension("pem"),
            key_file: base.with_extension("key"),
        };
        write_private(&this.key_file, &key)?;
        std::fs::write(&this.cert_file, &cert)?;
        write_atomically(&ca_path(), &cert)?;
        Ok(this)
    }

    /// `[server.tls]` with this certificate (TLS 1.3 only, the default).
    pub fn server_tls(&self) -> ServerTls {
        ServerTls::new(&self.cert_file, &self.key_file)
    }
}

impl Drop for ServerCert {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.cert_file);
        let _ = std::fs::remove_file(&self.key_file);
    }
}

/// `[client.tls]` trusting only [`ca_path`], expecting `localhost`.
pub fn client_tls() -> ClientTls {
    ClientTls::new().ca_file(ca_path()).server_name(SERVER_NAME)
}

/// Writes `text` to a temp file beside `path`, then renames it over `path`,
/// so a client never reads half a certificate.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Writes a private key readable by this user only (where the platform has modes).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}
