//! TLS failures as framework errors whose message names the cause: an
//! unknown CA, an expired certificate, a name that does not match, a
//! missing client certificate, a peer that does not speak TLS. rustls's
//! errors reach us inside `io::Error`s (tokio-rustls wraps them); the
//! alerts a peer sends are how one side learns why the other refused.

use std::io;

use rpc_core::{Error, ErrorKind};
use rustls::{AlertDescription, CertificateError, PeerIncompatible};

use crate::wire::handshake::AuthError;

/// Which side is speaking: the peer is the other one.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Side {
    Client,
    /// A server, with the table its TLS settings come from (`server.tls`,
    /// `http.tls`), which hints name.
    Server(&'static str),
}

impl Side {
    /// The table of this side's TLS settings.
    fn table(self) -> &'static str {
        match self {
            Side::Client => "client.tls",
            Side::Server(table) => table,
        }
    }

    fn peer(self) -> &'static str {
        match self {
            Side::Client => "the server",
            Side::Server(_) => "the client",
        }
    }
}

/// The rustls error inside `e`, if it carries one.
fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// The error for a failed TLS handshake with `peer` (an address, for the message).
pub(crate) fn handshake_failed(e: io::Error, side: Side, peer: &str) -> Error {
    let cause = match rustls_error(&e) {
        Some(tls) => describe(tls, side),
        None if e.kind() == io::ErrorKind::UnexpectedEof => {
            format!(
                "{} closed the connection during the TLS handshake",
                side.peer()
            )
        }
        None => e.to_string(),
    };
    Error::new(
        ErrorKind::Authentication,
        format!("TLS handshake with {peer} failed: {cause}"),
    )
    .with_source(e)
}

/// The error for a failed authkey handshake on the client: one that broke
/// on a TLS alert (the server refused our certificate only after its
/// handshake, while we read its challenge) names the TLS cause.
pub(crate) fn auth_failed(e: AuthError, address: &str) -> Error {
    let tls = match &e {
        AuthError::Io(io) => rustls_error(io).map(|tls| describe(tls, Side::Client)),
        _ => None,
    };
    match tls {
        Some(cause) => Error::new(
            ErrorKind::Authentication,
            format!("TLS session with {address} failed: {cause}"),
        )
        .with_source(e),
        None => crate::wire::session::auth_error(e),
    }
}

/// What a rustls error means, seen from `side`.
pub(super) fn describe(e: &rustls::Error, side: Side) -> String {
    let peer = side.peer();
    match e {
        rustls::Error::InvalidCertificate(cert) => certificate(cert, side),
        rustls::Error::NoCertificatesPresented => format!(
            "{peer} presented no certificate, and `client_ca_file` in [{}] requires one",
            side.table()
        ),
        rustls::Error::AlertReceived(alert) => alert_received(*alert, side),
        rustls::Error::PeerIncompatible(
            PeerIncompatible::ExtendedMasterSecretExtensionRequired,
        ) => {
            format!("{peer} offers TLS 1.2 without extended master secret, which is required")
        }
        // A client of TLS 1.2 at most, at a server of TLS 1.3 alone.
        rustls::Error::PeerIncompatible(
            PeerIncompatible::Tls12NotOffered
            | PeerIncompatible::Tls12NotOfferedOrEnabled
            | PeerIncompatible::SupportedVersionsExtensionRequired,
        ) => format!(
            "{peer} offers no TLS version we accept: TLS 1.2 needs `min_version = \"1.2\"` in [{}]",
            side.table()
        ),
        // A server that answered with TLS 1.2 to a client of TLS 1.3 alone.
        rustls::Error::PeerIncompatible(
            PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig,
        ) => {
            format!(
                "{peer} chose a TLS version we do not offer: TLS 1.2 needs `min_version = \"1.2\"` in [{}]",
                side.table()
            )
        }
        rustls::Error::PeerIncompatible(PeerIncompatible::NoCipherSuitesInCommon) => format!(
            "{peer} offers no cipher suite we accept (`cipher_suites` in [{}])",
            side.table()
        ),
        rustls::Error::PeerIncompatible(why) => format!("{peer} speaks no TLS we accept ({why:?})"),
        other => format!("{other}"),
    }
}

fn certificate(e: &CertificateError, side: Side) -> String {
    let whose = match side {
        Side::Client => "the server's certificate",
        Side::Server(_) => "the client's certificate",
    };
    let trusted = match side {
        Side::Client => "`ca_file` in [client.tls], or the platform's roots".to_owned(),
        Side::Server(table) => format!("`client_ca_file` in [{table}]"),
    };
    match e {
        CertificateError::UnknownIssuer => {
            format!("{whose} is signed by an unknown CA (not in {trusted})")
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            format!("{whose} has expired ({e})")
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            format!("{whose} is not valid yet ({e})")
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!(
                "{whose} does not match the name expected ({e}); \
                 set `server_name` in [client.tls] to a name it holds"
            )
        }
        other => format!("{whose} is invalid: {other}"),
    }
}

fn alert_received(alert: AlertDescription, side: Side) -> String {
    let peer = side.peer();
    let ours = match side {
        Side::Client => "our client certificate",
        Side::Server(_) => "our certificate",
    };
    match alert {
        AlertDescription::CertificateRequired => format!(
            "{peer} requires a client certificate: set `cert_file` and `key_file` in [client.tls]"
        ),
        AlertDescription::UnknownCA => {
            format!("{peer} refused {ours}: it is signed by a CA it does not trust")
        }
        AlertDescription::CertificateExpired => format!("{peer} refused {ours}: it has expired"),
        AlertDescription::BadCertificate | AlertDescription::CertificateUnknown => {
            format!("{peer} refused {ours} (alert {alert:?})")
        }
        AlertDescription::ProtocolVersion => format!(
            "{peer} accepts none of the TLS versions offered (`min_version` in [{}]: \"1.2\" offers \
             TLS 1.2 besides 1.3)",
            side.table()
        ),
        // What rustls answers when no cipher suite is shared, among other causes.
        AlertDescription::HandshakeFailure => format!(
            "{peer} refused the TLS handshake (alert HandshakeFailure): it may accept none of \
             the cipher suites offered (`cipher_suites` in [{}])",
            side.table()
        ),
        other => format!("{peer} refused the TLS handshake (alert {other:?})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_servers_hints_name_the_table_its_settings_come_from() {
        let none = describe(
            &rustls::Error::NoCertificatesPresented,
            Side::Server("http.tls"),
        );
        assert!(none.contains("`client_ca_file` in [http.tls]"), "{none}");
        let unknown = certificate(&CertificateError::UnknownIssuer, Side::Server("server.tls"));
        assert!(
            unknown.contains("`client_ca_file` in [server.tls]"),
            "{unknown}"
        );
        let client = certificate(&CertificateError::UnknownIssuer, Side::Client);
        assert!(client.contains("[client.tls]"), "{client}");
        let suites = describe(
            &rustls::Error::PeerIncompatible(PeerIncompatible::NoCipherSuitesInCommon),
            Side::Server("http.tls"),
        );
        assert!(suites.contains("`cipher_suites` in [http.tls]"), "{suites}");
    }
}
