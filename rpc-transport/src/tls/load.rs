//! Reading the PEM files a [`ServerTls`] or a [`ClientTls`] names into
//! rustls configurations, with the ring provider and the versions allowed.
//! Every failure names the file and the setting.

use std::path::Path;
use std::sync::Arc;

use rpc_core::{Error, ErrorKind};
use rustls::SupportedCipherSuite;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::version::{TLS12, TLS13};
use rustls::{CipherSuite, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{ClientTls, ServerTls, TlsVersion};

/// The only provider: ring, passed to every builder, so no process-wide
/// default is needed (nor another provider built in).
///
/// Its suites are all offered, AES-128-GCM first where rustls puts AES-256-GCM
/// (as Go, BoringSSL and Chrome order them; TLS 1.3's mandatory suite): 10
/// AES rounds to 14, for 128-bit security. A client's order decides, and a
/// server follows the client's (rustls' default), so a peer that prefers
/// AES-256 gets it. `suites`, when not empty, are the only ones offered, in
/// its order; `key` names that setting in errors.
fn provider(suites: &[String], key: &str) -> Result<Arc<CryptoProvider>, Error> {
    let mut provider = ring();
    if suites.is_empty() {
        // TLS 1.3's suites first, as rustls lists them; within each version,
        // AES-128-GCM first and the rest in rustls' order (a stable sort).
        provider.cipher_suites.sort_by_key(|suite| {
            let tls13 = matches!(suite, SupportedCipherSuite::Tls13(_));
            (!tls13, !is_aes_128_gcm(suite.suite()))
        });
        return Ok(Arc::new(provider));
    }
    let known = std::mem::take(&mut provider.cipher_suites);
    for name in suites {
        let suite = known
            .iter()
            .find(|suite| format!("{:?}", suite.suite()) == *name);
        let Some(suite) = suite else {
            let names: Vec<String> = known.iter().map(|s| format!("{:?}", s.suite())).collect();
            return Err(config_error(format!(
                "`{key}` names `{name}`, a cipher suite this build does not offer; it offers {}",
                names.join(", ")
            )));
        };
        provider.cipher_suites.push(*suite);
    }
    Ok(Arc::new(provider))
}

// rustls 0.23.48 deprecates it for lacking post-quantum key exchange, which
// only the aws-lc-rs provider has (a C and CMake build we do not want).
#[allow(deprecated)]
fn ring() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

fn is_aes_128_gcm(suite: CipherSuite) -> bool {
    matches!(
        suite,
        CipherSuite::TLS13_AES_128_GCM_SHA256
            | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            | CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    )
}

fn config_error(message: String) -> Error {
    Error::new(ErrorKind::Config, message)
}

/// rustls refused the versions with the suites (say, TLS 1.2 suites alone
/// where only 1.3 is allowed).
fn unusable(table: &str, e: rustls::Error) -> Error {
    config_error(format!(
        "`{table}`: the TLS versions allowed (`min_version`: TLS 1.3 alone unless \"1.2\") and the \
         cipher suites listed have nothing in common: {e}"
    ))
}

/// The certificates in a PEM file, at least one.
fn certificates(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let unreadable = |e: rustls_pki_types::pem::Error| {
        config_error(format!(
            "cannot read the certificates of `{key}` `{}`: {e}",
            path.display()
        ))
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(unreadable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    if certs.is_empty() {
        let why = format!("`{key}` `{}` holds no PEM certificate", path.display());
        return Err(config_error(why));
    }
    Ok(certs)
}

/// The private key in a PEM file: PKCS#8, PKCS#1 or SEC1.
fn private_key(path: &Path, key: &str) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        config_error(format!(
            "cannot read a private key (PKCS#8, PKCS#1 or SEC1 PEM) from `{key}` `{}`: {e}",
            path.display()
        ))
    })
}

/// The CAs in a PEM file, as roots.
fn roots(path: &Path, key: &str) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path, key)? {
        roots.add(cert).map_err(|e| {
            config_error(format!(
                "a CA of `{key}` `{}` is not usable: {e}",
                path.display()
            ))
        })?;
    }
    Ok(roots)
}

/// The platform's roots (rustls-native-certs), for a client without `ca_file`.
fn platform_roots() -> Result<RootCertStore, Error> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = format!(
            "no CA certificate found among the platform's roots ({} errors); \
             set `ca_file` in [client.tls]",
            found.errors.len()
        );
        return Err(config_error(why));
    }
    Ok(roots)
}

static ONLY_13: [&rustls::SupportedProtocolVersion; 1] = [&TLS13];
static FROM_12: [&rustls::SupportedProtocolVersion; 2] = [&TLS13, &TLS12];

fn versions(min: TlsVersion) -> &'static [&'static rustls::SupportedProtocolVersion] {
    match min {
        TlsVersion::V1_2 => &FROM_12,
        _ => &ONLY_13,
    }
}

/// A server configuration from `tls`'s files (read now: call again to
/// reload); `table` (`"server.tls"`, `"http.tls"`) names the settings in errors.
pub(crate) fn server_config(tls: &ServerTls, table: &str) -> Result<rustls::ServerConfig, Error> {
    let chain = certificates(tls.cert_file(), &format!("{table}.cert_file"))?;
    let key = private_key(tls.key_file(), &format!("{table}.key_file"))?;
    let provider = provider(tls.suites(), &format!("{table}.cipher_suites"))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions(tls.min_version()))
        .map_err(|e| unusable(table, e))?;
    let builder = match tls.client_cas() {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let roots = roots(path, &format!("{table}.client_ca_file"))?;
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .map_err(|e| config_error(format!("cannot verify client certificates: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        config_error(format!(
            "the key `{}` does not fit the certificate `{}`: {e}",
            tls.key_file().display(),
            tls.cert_file().display()
        ))
    })?;
    // TLS 1.2 only with extended master secret (RFC 7627): without it a
    // 1.2 session's exporter does not bind the handshake to the channel.
    config.require_ems = true;
    Ok(config)
}

/// A client configuration from `tls`'s files, or the platform's roots.
pub(crate) fn client_config(tls: &ClientTls) -> Result<rustls::ClientConfig, Error> {
    let roots = match tls.trusted() {
        Some(path) => roots(path, "client.tls.ca_file")?,
        None => platform_roots()?,
    };
    let provider = provider(tls.suites(), "client.tls.cipher_suites")?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions(tls.min_version()))
        .map_err(|e| unusable("client.tls", e))?
        .with_root_certificates(roots);
    let mut config = match tls.client_identity() {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = certificates(cert, "client.tls.cert_file")?;
            let key_der = private_key(key, "client.tls.key_file")?;
            builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                config_error(format!(
                    "the key `{}` does not fit the certificate `{}`: {e}",
                    key.display(),
                    cert.display()
                ))
            })?
        }
    };
    // As the server's: TLS 1.2, when allowed, only with extended master secret.
    config.require_ems = true;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use rustls::{ClientConnection, ServerConnection};

    use super::*;
    use crate::tls::explain::{Side, describe};
    use crate::tls::test_pem::Pem;

    /// A client built by hand: `provider`'s suites, `version` alone.
    fn rustls_client(
        pem: &Pem,
        provider: Arc<CryptoProvider>,
        version: &'static rustls::SupportedProtocolVersion,
    ) -> rustls::ClientConfig {
        rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots(&pem.cert, "ca").unwrap())
            .with_no_client_auth()
    }

    /// What a handshake in memory came to: the suite the client got, or the
    /// error each side saw (a side that refuses still sends its alert).
    #[derive(Debug, Default)]
    struct Outcome {
        suite: Option<CipherSuite>,
        client: Option<rustls::Error>,
        server: Option<rustls::Error>,
    }

    /// Runs the handshake between the two in memory.
    fn handshake(client: rustls::ClientConfig, server: rustls::ServerConfig) -> Outcome {
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let mut client = ClientConnection::new(Arc::new(client), name).unwrap();
        let mut server = ServerConnection::new(Arc::new(server)).unwrap();
        let mut outcome = Outcome::default();
        for _ in 0..10 {
            let mut flight = Vec::new();
            client.write_tls(&mut flight).unwrap();
            server.read_tls(&mut &flight[..]).unwrap();
            outcome.server = outcome.server.or(server.process_new_packets().err());
            flight.clear();
            server.write_tls(&mut flight).unwrap();
            client.read_tls(&mut &flight[..]).unwrap();
            outcome.client = client.process_new_packets().err();
            if outcome.client.is_some() || outcome.server.is_some() {
                return outcome;
            }
            if !client.is_handshaking() && !server.is_handshaking() {
                outcome.suite = Some(client.negotiated_cipher_suite().unwrap().suite());
                return outcome;
            }
        }
        panic!("no handshake in 10 flights");
    }

    /// [`handshake`], which must succeed: the suite the client got.
    fn negotiate(client: rustls::ClientConfig, server: rustls::ServerConfig) -> CipherSuite {
        let outcome = handshake(client, server);
        outcome
            .suite
            .unwrap_or_else(|| panic!("no handshake: {outcome:?}"))
    }

    /// A server built by hand: our suites, `version` alone.
    fn rustls_server(
        pem: &Pem,
        version: &'static rustls::SupportedProtocolVersion,
    ) -> rustls::ServerConfig {
        let tls = pem.server();
        rustls::ServerConfig::builder_with_provider(provider(&[], "k").unwrap())
            .with_protocol_versions(&[version])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                certificates(tls.cert_file(), "cert").unwrap(),
                private_key(tls.key_file(), "key").unwrap(),
            )
            .unwrap()
    }

    #[test]
    fn our_client_offers_tls_1_2_only_when_told_and_says_so() {
        let pem = Pem::new("client12");
        let refused = handshake(
            client_config(&pem.client()).unwrap(),
            rustls_server(&pem, &TLS12),
        );
        let seen = refused
            .client
            .expect("a TLS 1.2 server is refused by default");
        let said = describe(&seen, Side::Client(TlsVersion::V1_3));
        assert!(
            said.contains("`min_version = \"1.2\"` in [client.tls]"),
            "{said}"
        );
        let allowed = pem.client().with_min_version(TlsVersion::V1_2);
        assert_eq!(
            negotiate(
                client_config(&allowed).unwrap(),
                rustls_server(&pem, &TLS12)
            ),
            CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        );
    }

    #[test]
    fn our_server_refuses_a_tls_1_2_client_naming_min_version() {
        let pem = Pem::new("server13");
        let client = rustls_client(&pem, provider(&[], "k").unwrap(), &TLS12);
        let refused = handshake(client, server_config(&pem.server(), "server.tls").unwrap());
        let seen = refused
            .server
            .expect("a TLS 1.2 client is refused by default");
        let said = describe(&seen, Side::Server("server.tls", TlsVersion::V1_3));
        assert!(
            said.contains("`min_version = \"1.2\"` in [server.tls]"),
            "{said}"
        );
    }

    #[test]
    fn our_client_and_server_agree_on_aes_128_gcm() {
        let pem = Pem::new("aes128");
        let server = server_config(&pem.server(), "server.tls").unwrap();
        let client = client_config(&pem.client()).unwrap();
        assert_eq!(
            negotiate(client, server),
            CipherSuite::TLS13_AES_128_GCM_SHA256
        );
    }

    #[test]
    fn over_tls_1_2_aes_128_gcm_comes_first_too() {
        let pem = Pem::new("tls12");
        let server = pem.server().with_min_version(TlsVersion::V1_2);
        let server = server_config(&server, "server.tls").unwrap();
        // Our client's suites, with TLS 1.2 alone allowed.
        let client = rustls_client(&pem, provider(&[], "k").unwrap(), &TLS12);
        assert_eq!(
            negotiate(client, server),
            CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        );
    }

    #[test]
    fn a_client_that_prefers_aes_256_gets_it() {
        let pem = Pem::new("aes256");
        let server = server_config(&pem.server(), "server.tls").unwrap();
        let client = rustls_client(&pem, Arc::new(ring()), &TLS13);
        assert_eq!(
            negotiate(client, server),
            CipherSuite::TLS13_AES_256_GCM_SHA384
        );
    }

    #[test]
    fn every_suite_is_still_offered_tls_1_3_first() {
        let all = ring().cipher_suites;
        let ours = provider(&[], "k").unwrap().cipher_suites.clone();
        assert_eq!(ours.len(), all.len());
        assert!(all.iter().all(|suite| ours.contains(suite)));
        let names: Vec<String> = ours.iter().map(|s| format!("{:?}", s.suite())).collect();
        assert_eq!(
            names[..4],
            [
                "TLS13_AES_128_GCM_SHA256",
                "TLS13_AES_256_GCM_SHA384",
                "TLS13_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            ]
        );
    }

    #[test]
    fn a_server_that_lists_suites_accepts_only_those() {
        let pem = Pem::new("only256");
        let only = pem.server().cipher_suites(["TLS13_AES_256_GCM_SHA384"]);
        let server = server_config(&only, "server.tls").unwrap();
        let client = client_config(&pem.client()).unwrap();
        assert_eq!(
            negotiate(client, server),
            CipherSuite::TLS13_AES_256_GCM_SHA384
        );
    }

    #[test]
    fn a_client_that_lists_suites_offers_those_in_its_order() {
        let pem = Pem::new("chacha");
        let server = server_config(&pem.server(), "server.tls").unwrap();
        let chacha = pem
            .client()
            .cipher_suites(["TLS13_CHACHA20_POLY1305_SHA256", "TLS13_AES_128_GCM_SHA256"]);
        let client = client_config(&chacha).unwrap();
        assert_eq!(
            negotiate(client, server),
            CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
        );
    }

    #[test]
    fn an_unknown_suite_is_refused_naming_the_setting_and_the_suites() {
        let e = provider(
            &["TLS13_AES_128_CCM_SHA256".to_owned()],
            "server.tls.cipher_suites",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("`server.tls.cipher_suites` names `TLS13_AES_128_CCM_SHA256`"),
            "{e}"
        );
        assert!(
            e.contains("TLS13_AES_256_GCM_SHA384, TLS13_AES_128_GCM_SHA256"),
            "{e}"
        );
    }

    #[test]
    fn suites_no_allowed_version_can_use_are_refused() {
        let pem = Pem::new("tls12only");
        let tls = pem
            .server()
            .cipher_suites(["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]);
        let e = server_config(&tls, "server.tls").unwrap_err().to_string();
        assert!(e.contains("`server.tls`"), "{e}");
        assert!(e.contains("nothing in common"), "{e}");
        // A client's TLS 1.2 suites need TLS 1.2 allowed, and the error says so.
        let tls = pem
            .client()
            .cipher_suites(["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]);
        let e = client_config(&tls).unwrap_err().to_string();
        assert!(e.contains("`client.tls`"), "{e}");
        assert!(e.contains("`min_version`"), "{e}");
        assert!(client_config(&tls.with_min_version(TlsVersion::V1_2)).is_ok());
    }
}
