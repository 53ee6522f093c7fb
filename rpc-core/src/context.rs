//! The context of the call a handler is running: its deadline, its peer,
//! the door it came in by, its metadata and, under mutual TLS, the subject
//! of the peer's certificate,
//! reached with [`Context::current`] rather than through a parameter, so new
//! fields never break an implementation.

use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Poll, ready};
use std::time::Instant;

use crate::metadata::Metadata;

thread_local! {
    static CURRENT: RefCell<Option<Context>> = const { RefCell::new(None) };
}

/// What a handler can know about the call it serves.
///
/// ```
/// # use rpc_core::Context;
/// async fn handler() -> String {
///     match Context::current().and_then(|c| c.peer()) {
///         Some(peer) => format!("hello, {peer}"),
///         None => "hello".to_owned(),
///     }
/// }
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Context {
    deadline: Option<Instant>,
    peer: Option<SocketAddr>,
    peer_identity: Option<Arc<str>>,
    transport: Option<&'static str>,
    metadata: Option<Arc<Metadata>>,
}

/// No metadata, for a context that has none.
static EMPTY: std::sync::LazyLock<Metadata> = std::sync::LazyLock::new(Metadata::new);

impl Context {
    /// An empty context.
    #[inline]
    pub fn new() -> Context {
        Context::default()
    }

    /// Sets the instant after which the caller no longer waits.
    #[inline]
    pub fn with_deadline(mut self, deadline: Option<Instant>) -> Context {
        self.deadline = deadline;
        self
    }

    /// Sets the caller's address.
    #[inline]
    pub fn with_peer(mut self, peer: Option<SocketAddr>) -> Context {
        self.peer = peer;
        self
    }

    /// Sets the subject of the caller's verified certificate.
    #[inline]
    pub fn with_peer_identity(mut self, identity: Option<Arc<str>>) -> Context {
        self.peer_identity = identity;
        self
    }

    /// Sets the door the call came in by; see [`Context::transport`].
    #[inline]
    pub fn with_transport(mut self, transport: &'static str) -> Context {
        self.transport = Some(transport);
        self
    }

    /// Sets the call's metadata.
    #[inline]
    pub fn with_metadata(mut self, metadata: Option<Arc<Metadata>>) -> Context {
        self.metadata = metadata.filter(|m| !m.is_empty());
        self
    }

    /// The context of the call being served on this task, if any.
    pub fn current() -> Option<Context> {
        CURRENT.with(|c| c.borrow().clone())
    }

    /// `f` of the context of the call being served on this task, if any,
    /// without cloning it.
    pub fn with_current<R>(f: impl FnOnce(&Context) -> R) -> Option<R> {
        CURRENT.with(|c| c.borrow().as_ref().map(f))
    }

    /// The instant after which the caller no longer waits.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The caller's address, when the transport has one.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The subject of the caller's certificate, RFC 4514 (`CN=alice,O=Example`),
    /// when the server requires client certificates (`client_ca_file` in
    /// `[server.tls]`): verified against those CAs, so an authorization check
    /// can rely on it. `None` without mutual TLS.
    ///
    /// ```
    /// # use rpc_core::Context;
    /// fn may_write() -> bool {
    ///     let who = Context::current().and_then(|c| c.peer_identity().map(str::to_owned));
    ///     who.is_some_and(|subject| subject.starts_with("CN=writer,"))
    /// }
    /// ```
    pub fn peer_identity(&self) -> Option<&str> {
        self.peer_identity.as_deref()
    }

    /// The door the call came in by: `"tcp"` (either codec, with or without
    /// TLS), `"python"` (a `multiprocessing` peer), `"http"` (JSON-RPC,
    /// XML-RPC and REST over the gateway), `"sse"` or `"websocket"`;
    /// `None` outside a server.
    pub fn transport(&self) -> Option<&'static str> {
        self.transport
    }

    /// The metadata the caller sent with the call (empty if none): over
    /// TCP, what the client set with `with_metadata`; over HTTP, the
    /// headers the gateway maps (every `x-rpc-<key>` as `<key>`,
    /// `traceparent` and `tracestate`; never `Authorization`, the gateway's
    /// own password) and a JSON-RPC request's `"meta"`.
    ///
    /// ```
    /// # use rpc_core::Context;
    /// fn token() -> Option<String> {
    ///     let context = Context::current()?;
    ///     context.metadata().text("authorization").map(str::to_owned)
    /// }
    /// ```
    pub fn metadata(&self) -> &Metadata {
        self.metadata.as_deref().unwrap_or(&EMPTY)
    }

    /// Runs `f` with `self` as [`Context::current`]: for the synchronous
    /// part of a call, where its arguments are decoded and a service's
    /// `call` starts it.
    pub fn within<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let mut slot = Some(std::mem::take(self));
        let out = Context::within_slot(&mut slot, f);
        *self = slot.unwrap_or_default();
        out
    }

    /// [`Context::within`] for a context kept in an `Option` (a transport's
    /// hot path: no move in or out of the option around the install).
    #[inline]
    pub fn within_slot<R>(slot: &mut Option<Context>, f: impl FnOnce() -> R) -> R {
        let _guard = Installed::new(slot);
        f()
    }

    /// Runs `future` with `self` as [`Context::current`] during every poll.
    pub fn scope<F: Future + Unpin>(self, future: F) -> Scoped<F> {
        Scoped {
            context: Some(self),
            future,
        }
    }
}

/// A future that runs with a [`Context`] installed; see [`Context::scope`].
#[derive(Debug)]
pub struct Scoped<F> {
    context: Option<Context>,
    future: F,
}

impl<F: Future + Unpin> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let _guard = Installed::new(&mut this.context);
        let out = ready!(Pin::new(&mut this.future).poll(cx));
        Poll::Ready(out)
    }
}

/// Puts a context into the thread-local slot and puts the outer one back on
/// drop, so scopes nest and a panicking handler leaves no stale context.
struct Installed<'a> {
    slot: &'a mut Option<Context>,
    outer: Option<Context>,
}

impl<'a> Installed<'a> {
    #[inline]
    fn new(slot: &'a mut Option<Context>) -> Installed<'a> {
        let outer = CURRENT.with(|c| c.replace(slot.take()));
        Installed { slot, outer }
    }
}

impl Drop for Installed<'_> {
    #[inline]
    fn drop(&mut self) {
        *self.slot = CURRENT.with(|c| c.replace(self.outer.take()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn current_is_set_only_inside_the_scope() {
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let seen = Context::new()
            .with_peer(Some(peer))
            .scope(Box::pin(async {
                Context::current().and_then(|c| c.peer())
            }))
            .await;
        assert_eq!(seen, Some(peer));
        assert!(Context::current().is_none());
    }

    #[test]
    fn within_installs_for_a_synchronous_call_and_gives_the_context_back() {
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut context = Context::new().with_peer(Some(peer));
        let seen = context.within(|| Context::current().and_then(|c| c.peer()));
        assert_eq!(seen, Some(peer));
        assert_eq!(context.peer(), Some(peer));
        assert!(Context::current().is_none());
    }
}
