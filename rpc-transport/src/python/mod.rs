//! Python interop on the wire: serving stock Python `multiprocessing`
//! clients, and calling Python servers, in the Python Cookbook's RPC pattern.
//!
//! ```text
//! Python client                                   our server (python_compat = true)
//!   | ==== authkey handshake (legacy MD5 needs allow_legacy_auth) ==== |
//!   | -- pickle frame: (name, args, kwargs), wrapped as sent --------> |   first byte 0x80: a Python peer
//!   | <------------------------ reply, wrapped the same way ---------- |   our clients' hello starts `{`
//!   | -- next request -----------------------------------------------> |   strictly one at a time
//! ```
//!
//! The server side (`serve`, from [`Server::serve_stream`](crate::Server::serve_stream)) runs when `python_compat = true` in `[server]`
//! and the first frame after authentication is a pickle; both kinds of peer
//! share one port. The client side ([`PythonConnection`]) runs when a
//! client's `codec` is `"pickle"` or `"py-json"` (see
//! [`PYTHON_CODECS`](crate::config::PYTHON_CODECS)); it sends no hello.
//! What crosses the wire, and how errors look, is in
//! [`rpc_core::python::call`].

mod client;
mod serve;

pub use self::client::PythonConnection;
pub(crate) use self::serve::{PythonPeer, serve};

use rpc_core::Codec;

/// The codec a Python-pattern client configured as `name` speaks.
pub(crate) fn codec(name: &str) -> Option<&'static dyn Codec> {
    match name {
        "pickle" => Some(&rpc_core::python::Pickle),
        "py-json" => Some(&rpc_core::python::PyJson),
        _ => None,
    }
}
