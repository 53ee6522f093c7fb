//! Errors: the rich local [`Error`], and the one table that gives every
//! [`ErrorKind`] its JSON-RPC code, HTTP status, XML-RPC fault code and Python
//! exception class, so every transport reports a failure the same way.
//!
//! What crosses the wire is small: a code, a message and optional data (see
//! [`WireFault`]). The receiving side maps the code back to a
//! kind with [`ErrorKind::from_code`].

use std::fmt;
use std::ops::Range;

/// What went wrong, independent of any transport.
///
/// Each kind has one row in the table behind [`ErrorKind::code`],
/// [`ErrorKind::http_status`], [`ErrorKind::xmlrpc_fault`] and
/// [`ErrorKind::python_exception`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A message could not be decoded at all.
    Parse,
    /// A message decoded but is not a valid request.
    InvalidRequest,
    /// No registered service or method has that name.
    MethodNotFound,
    /// The arguments do not decode into the method's parameters.
    InvalidParams,
    /// The server failed for a reason of its own (encoding a reply, …).
    Internal,
    /// The handler panicked; the message carries the panic's text.
    HandlerPanic,
    /// The method returned its own typed error (see [`crate::CallError`]).
    Application,
    /// The call's deadline passed before a reply arrived.
    Timeout,
    /// The connection closed or failed while the call was pending.
    ConnectionLost,
    /// The authkey handshake failed, on either side.
    Authentication,
    /// The server does not accept the codec the client asked for.
    CodecRejected,
    /// The peer speaks another protocol version or sent a malformed hello.
    Protocol,
    /// A message is larger than the configured frame limit.
    FrameTooLarge,
    /// The server is shutting down and did not run or finish the call.
    ShuttingDown,
    /// The call was cancelled.
    Cancelled,
    /// The configuration is invalid.
    Config,
    /// A local I/O failure (connect, bind, …).
    Io,
    /// A budget of the server's (`[server.limits]`) refused the message or
    /// call: it would have made the server hold more for this peer than it
    /// allows. A call refused this way did not run.
    OverBudget,
    /// A rate limit refused the call (a middleware layer, such as
    /// [`RefuseOverRate`](crate::layer::RefuseOverRate)); it did not run.
    /// Try again later.
    RateLimited,
    /// The server is over a load limit (tower's `LoadShed`, a concurrency
    /// limit that refuses); the call did not run. Try again later, or
    /// elsewhere.
    Overloaded,
    /// The caller is known but may not make this call: an authorization
    /// layer refused it before it ran.
    PermissionDenied,
}

/// One row of the error table.
struct Row {
    kind: ErrorKind,
    code: i32,
    http: u16,
    xmlrpc: i32,
    python: &'static str,
    what: &'static str,
    label: &'static str,
}

const fn row(
    kind: ErrorKind,
    code: i32,
    http: u16,
    xmlrpc: i32,
    python: &'static str,
    what: &'static str,
    label: &'static str,
) -> Row {
    Row {
        kind,
        code,
        http,
        xmlrpc,
        python,
        what,
        label,
    }
}

/// The error table. JSON-RPC reserves -32768..=-32000; the standard codes come
/// first, the framework's own follow in the "server error" range.
#[rustfmt::skip]
const TABLE: &[Row] = &[
    row(ErrorKind::Parse,          -32700, 400, -32700, "ValueError",         "parse error",           "parse"),
    row(ErrorKind::InvalidRequest, -32600, 400, -32600, "ValueError",         "invalid request",       "invalid_request"),
    row(ErrorKind::MethodNotFound, -32601, 404, -32601, "AttributeError",     "method not found",      "method_not_found"),
    row(ErrorKind::InvalidParams,  -32602, 400, -32602, "TypeError",          "invalid params",        "invalid_params"),
    row(ErrorKind::Internal,       -32603, 500, -32603, "RuntimeError",       "internal error",        "internal"),
    row(ErrorKind::Application,    -32000, 422, 1,      "RuntimeError",       "application error",     "application"),
    row(ErrorKind::HandlerPanic,   -32001, 500, -32500, "RuntimeError",       "handler panicked",      "handler_panic"),
    row(ErrorKind::Timeout,        -32002, 504, -32502, "TimeoutError",       "deadline exceeded",     "timeout"),
    row(ErrorKind::ShuttingDown,   -32003, 503, -32503, "ConnectionError",    "server shutting down",  "shutting_down"),
    row(ErrorKind::Cancelled,      -32004, 499, -32504, "RuntimeError",       "call cancelled",        "cancelled"),
    row(ErrorKind::FrameTooLarge,  -32005, 413, -32505, "ValueError",         "message too large",     "frame_too_large"),
    row(ErrorKind::CodecRejected,  -32006, 415, -32506, "ValueError",         "codec rejected",        "codec_rejected"),
    row(ErrorKind::Protocol,       -32007, 400, -32507, "ValueError",         "protocol error",        "protocol"),
    row(ErrorKind::Authentication, -32008, 401, -32508, "AuthenticationError", "authentication failed", "authentication"),
    row(ErrorKind::ConnectionLost, -32009, 502, -32509, "ConnectionError",    "connection lost",       "connection_lost"),
    row(ErrorKind::Config,         -32010, 500, -32510, "ValueError",         "invalid configuration", "config"),
    row(ErrorKind::Io,             -32011, 502, -32511, "OSError",            "i/o error",             "io"),
    row(ErrorKind::OverBudget,     -32012, 413, -32512, "ValueError",         "over budget",           "over_budget"),
    row(ErrorKind::RateLimited,    -32013, 429, -32513, "ConnectionRefusedError", "rate limited",      "rate_limited"),
    row(ErrorKind::Overloaded,     -32014, 503, -32514, "ConnectionRefusedError", "overloaded",        "overloaded"),
    row(ErrorKind::PermissionDenied, -32015, 403, -32515, "PermissionError",  "permission denied",     "permission_denied"),
];

impl ErrorKind {
    /// Every kind, in the table's order; [`ErrorKind::index`] is a position in it.
    pub const ALL: [ErrorKind; TABLE.len()] = {
        let mut all = [ErrorKind::Parse; TABLE.len()];
        let mut i = 0;
        while i < TABLE.len() {
            all[i] = TABLE[i].kind;
            i += 1;
        }
        all
    };

    fn row(self) -> &'static Row {
        &TABLE[self.index()]
    }

    /// This kind's position in [`ErrorKind::ALL`], for arrays of counters.
    pub fn index(self) -> usize {
        TABLE
            .iter()
            .position(|r| r.kind == self)
            .expect("every kind has a row")
    }

    /// A snake_case name for metrics labels and logs (`"method_not_found"`).
    pub fn label(self) -> &'static str {
        self.row().label
    }

    /// The JSON-RPC error code.
    pub fn code(self) -> i32 {
        self.row().code
    }

    /// The HTTP status a gateway answers with.
    pub fn http_status(self) -> u16 {
        self.row().http
    }

    /// The XML-RPC `faultCode`.
    pub fn xmlrpc_fault(self) -> i32 {
        self.row().xmlrpc
    }

    /// The builtin Python exception class a Python peer raises.
    pub fn python_exception(self) -> &'static str {
        self.row().python
    }

    /// A short lower-case description ("method not found").
    pub fn describe(self) -> &'static str {
        self.row().what
    }

    /// The kind behind a JSON-RPC code; unknown codes are [`ErrorKind::Internal`].
    pub fn from_code(code: i32) -> ErrorKind {
        TABLE
            .iter()
            .find(|r| r.code == code)
            .map_or(ErrorKind::Internal, |r| r.kind)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A framework failure: its [`ErrorKind`], a message that says what failed and
/// why, and the underlying error where there is one.
///
/// Application errors of a method declared `-> Result<T, E>` do not use this
/// type on the client; they arrive typed as [`crate::CallError::Application`].
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Source>,
    /// The call was refused before its handler started.
    not_run: bool,
}

impl Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            source: None,
            not_run: false,
        }
    }

    /// The same error, marked as a refusal made before the call's handler
    /// started: the call did not run, so sending it again cannot run it
    /// twice. The mark travels to the caller (protocol 2).
    pub fn did_not_run(mut self) -> Error {
        self.not_run = true;
        self
    }

    /// Whether the call was refused before its handler started (see
    /// [`Error::did_not_run`]): safe to send again, whatever the method.
    /// `false` says nothing either way: the call may or may not have run.
    pub fn not_run(&self) -> bool {
        self.not_run
    }

    /// Attaches the underlying error.
    pub fn with_source(mut self, source: impl Into<Source>) -> Error {
        self.source = Some(source.into());
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JSON-RPC code of this error's kind.
    pub fn code(&self) -> i32 {
        self.kind.code()
    }

    /// `method` is not one the registry knows; `known` lists what exists.
    pub fn method_not_found(method: &str, known: &str) -> Error {
        Error::new(
            ErrorKind::MethodNotFound,
            format!("unknown method `{method}`; known methods: {known}"),
        )
    }

    /// The one message of a call that ran out of time, whichever side saw
    /// it first: "`Inventory.slow` did not finish within 100ms".
    pub fn timed_out(method: &str, limit: std::time::Duration) -> Error {
        Error::new(
            ErrorKind::Timeout,
            format!("`{method}` did not finish within {limit:?}"),
        )
    }

    /// The arguments of `method` did not decode.
    pub fn invalid_params(method: &str, why: impl fmt::Display) -> Error {
        Error::new(
            ErrorKind::InvalidParams,
            format!("invalid arguments for `{method}`: {why}"),
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as _)
    }
}

/// The outcome of a call to a method declared `-> Result<T, E>`: the method's
/// own error `E`, or a framework failure.
///
/// ```
/// # use rpc_core::{CallError, Error, ErrorKind};
/// fn describe(e: CallError<String>) -> String {
///     match e {
///         CallError::Application(e) => format!("the method said: {e}"),
///         CallError::Rpc(e) if e.kind() == ErrorKind::Timeout => "too slow".into(),
///         CallError::Rpc(e) => e.to_string(),
///     }
/// }
/// ```
#[derive(Debug)]
pub enum CallError<E> {
    /// The method's own typed error.
    Application(E),
    /// The call failed in the framework (see [`Error::kind`]).
    Rpc(Error),
}

impl<E> From<Error> for CallError<E> {
    fn from(e: Error) -> Self {
        CallError::Rpc(e)
    }
}

impl<E: fmt::Display> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Application(e) => write!(f, "application error: {e}"),
            CallError::Rpc(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for CallError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CallError::Application(e) => Some(e),
            CallError::Rpc(e) => Some(e),
        }
    }
}

/// A failed call as the wire carries it: code, message, and where the error's
/// typed data lies in the frame.
#[derive(Clone, Debug, PartialEq)]
pub struct WireFault {
    /// The JSON-RPC code (see [`ErrorKind::from_code`]).
    pub code: i32,
    /// The server's message.
    pub message: String,
    /// The bytes of the error's `data`, as a range of the frame.
    pub data: Option<Range<usize>>,
    /// The server refused the call before its handler started.
    pub not_run: bool,
}

impl WireFault {
    /// The error it stands for: its kind (from the code), message, and the
    /// did-not-run mark.
    pub fn into_error(self) -> Error {
        let error = Error::new(ErrorKind::from_code(self.code), self.message);
        if self.not_run {
            error.did_not_run()
        } else {
            error
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_back_to_its_kind() {
        for r in TABLE {
            assert_eq!(ErrorKind::from_code(r.code), r.kind);
        }
    }

    #[test]
    fn codes_are_unique() {
        for (i, a) in TABLE.iter().enumerate() {
            assert!(
                TABLE[i + 1..]
                    .iter()
                    .all(|b| b.code != a.code && b.kind != a.kind)
            );
        }
    }

    #[test]
    fn display_leads_with_the_kind() {
        let e = Error::method_not_found("mul", "Calculator.add");
        assert_eq!(
            e.to_string(),
            "method not found: unknown method `mul`; known methods: Calculator.add"
        );
    }
}
