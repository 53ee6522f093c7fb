//! Bytes on the wire, no tasks: the [`frame`] (a length prefix, then the
//! payload), the authkey [`handshake`] and the [`hello`], as pure functions
//! over bytes with thin async drivers, and the `session` that opens a fresh
//! stream with them. Uses [`crate::net`] (the stream) and [`crate::quiet`]
//! (peer text in errors); nothing here knows a server or a client.

pub mod frame;
pub mod handshake;
pub mod hello;
pub(crate) mod session;
