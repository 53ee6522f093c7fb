//! TLS failures as framework errors whose message names the cause: an
//! unknown CA, an expired certificate, a name that does not match, a
//! missing client certificate, a peer that does not speak TLS. rustls's
//! errors reach us inside `io::Error`s (tokio-rustls wraps them); the
//! alerts a peer sends are how one side learns why the other refused.

use std::io;

use rpc_core::{Error, ErrorKind};
use rustls::{AlertDescription, CertificateError, PeerIncompatible};

use crate::config::TlsVersion;
use crate::wire::handshake::AuthError;

/// Which side is speaking (the peer is the other one), with the oldest TLS
/// version it allows, which version hints depend on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Side {
    Client(TlsVersion),
    /// A server, with the table its TLS settings come from (`server.tls`,
    /// `http.tls`), which hints name.
    Server(&'static str, TlsVersion),
}

impl Side {
    /// The table of this side's TLS settings.
    fn table(self) -> &'static str {
        match self {
            Side::Client(_) => "client.tls",
            Side::Server(table, _) => table,
        }
    }

    fn peer(self) -> &'static str {
        match self {
            Side::Client(_) => "the server",
            Side::Server(..) => "the client",
        }
    }

    /// Whether this side allows TLS 1.3 alone.
    fn only_13(self) -> bool {
        match self {
            Side::Client(min) | Side::Server(_, min) => min == TlsVersion::V1_3,
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

/// The error for a failed authkey handshake on the client (which allows
/// TLS versions from `min`): one that broke on a TLS alert (the server
/// refused our certificate only after its handshake, while we read its
/// challenge) names the TLS cause.
pub(crate) fn auth_failed(e: AuthError, address: &str, min: TlsVersion) -> Error {
    let tls = match &e {
        AuthError::Io(io) => rustls_error(io).map(|tls| describe(tls, Side::Client(min))),
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
        rustls::Error::PeerIncompatible(
            PeerIncompatible::Tls12NotOffered | PeerIncompatible::ServerDoesNotSupportTls12Or13,
        ) => format!("{peer} speaks only TLS 1.1 or older, which is never accepted"),
        // A server's: the client offers neither version allowed (with TLS
        // 1.3 allowed, most likely a client of TLS 1.2 at most).
        rustls::Error::PeerIncompatible(
            PeerIncompatible::Tls12NotOfferedOrEnabled
            | PeerIncompatible::SupportedVersionsExtensionRequired,
        ) => version_hint(format!("{peer} offers no TLS version we accept"), side),
        // A client's: the server answered with a version not offered, TLS 1.2.
        rustls::Error::PeerIncompatible(
            PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig,
        ) => version_hint(format!("{peer} chose a TLS version we do not offer"), side),
        rustls::Error::PeerIncompatible(PeerIncompatible::NoCipherSuitesInCommon) => format!(
            "{peer} offers no cipher suite we accept (`cipher_suites` in [{}])",
            side.table()
        ),
        rustls::Error::PeerIncompatible(why) => format!("{peer} speaks no TLS we accept ({why:?})"),
        other => format!("{other}"),
    }
}

/// `what` went wrong with the TLS version: while this side allows TLS 1.3
/// alone, with how to allow 1.2; else with the versions it allows.
fn version_hint(what: String, side: Side) -> String {
    match side.only_13() {
        true => format!(
            "{what}: TLS 1.3 alone is allowed, and `min_version = \"1.2\"` in [{}] allows TLS 1.2 too",
            side.table()
        ),
        false => format!("{what} (TLS 1.2 and 1.3 are allowed)"),
    }
}

fn certificate(e: &CertificateError, side: Side) -> String {
    let whose = match side {
        Side::Client(_) => "the server's certificate",
        Side::Server(..) => "the client's certificate",
    };
    let trusted = match side {
        Side::Client(_) => "`ca_file` in [client.tls], or the platform's roots".to_owned(),
        Side::Server(table, _) => format!("`client_ca_file` in [{table}]"),
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
        Side::Client(_) => "our client certificate",
        Side::Server(..) => "our certificate",
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
        AlertDescription::ProtocolVersion => match side {
            Side::Client(_) => version_hint(
                format!("{peer} accepts none of the TLS versions offered"),
                side,
            ),
            Side::Server(..) => format!("{peer} refused the TLS version chosen (alert {alert:?})"),
        },
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

    const SERVER: Side = Side::Server("server.tls", TlsVersion::V1_3);
    const CLIENT: Side = Side::Client(TlsVersion::V1_3);

    #[test]
    fn a_servers_hints_name_the_table_its_settings_come_from() {
        let http = Side::Server("http.tls", TlsVersion::V1_3);
        let none = describe(&rustls::Error::NoCertificatesPresented, http);
        assert!(none.contains("`client_ca_file` in [http.tls]"), "{none}");
        let unknown = certificate(&CertificateError::UnknownIssuer, SERVER);
        assert!(
            unknown.contains("`client_ca_file` in [server.tls]"),
            "{unknown}"
        );
        let client = certificate(&CertificateError::UnknownIssuer, CLIENT);
        assert!(client.contains("[client.tls]"), "{client}");
        let suites = describe(
            &rustls::Error::PeerIncompatible(PeerIncompatible::NoCipherSuitesInCommon),
            http,
        );
        assert!(suites.contains("`cipher_suites` in [http.tls]"), "{suites}");
    }

    #[test]
    fn a_version_refused_says_how_to_allow_tls_1_2_only_where_that_helps() {
        let said =
            |why: PeerIncompatible, side| describe(&rustls::Error::PeerIncompatible(why), side);
        let hint = "`min_version = \"1.2\"` in [server.tls] allows TLS 1.2 too";
        let at_13 = said(PeerIncompatible::SupportedVersionsExtensionRequired, SERVER);
        assert!(at_13.contains(hint), "{at_13}");
        let at_12 = said(
            PeerIncompatible::Tls12NotOfferedOrEnabled,
            Side::Server("server.tls", TlsVersion::V1_2),
        );
        assert!(!at_12.contains("min_version"), "{at_12}");
        assert!(at_12.contains("TLS 1.2 and 1.3 are allowed"), "{at_12}");
        // TLS 1.1 or older: no setting helps.
        for old in [
            said(PeerIncompatible::Tls12NotOffered, SERVER),
            said(PeerIncompatible::ServerDoesNotSupportTls12Or13, CLIENT),
        ] {
            assert!(old.contains("TLS 1.1 or older"), "{old}");
            assert!(!old.contains("min_version"), "{old}");
        }
        // A server that answered with TLS 1.2 to a client of 1.3 alone.
        let chose = said(
            PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig,
            CLIENT,
        );
        assert!(
            chose.contains("`min_version = \"1.2\"` in [client.tls]"),
            "{chose}"
        );
        // Its alert: a hint to a client of 1.3 alone, none to one of 1.2 or to a server.
        let alert = |side| alert_received(AlertDescription::ProtocolVersion, side);
        assert!(
            alert(CLIENT).contains("in [client.tls]"),
            "{}",
            alert(CLIENT)
        );
        let both = alert(Side::Client(TlsVersion::V1_2));
        assert!(!both.contains("min_version"), "{both}");
        assert!(!alert(SERVER).contains("min_version"), "{}", alert(SERVER));
    }
}
