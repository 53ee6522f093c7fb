//! The service of each connection: the router, with the peer's address and
//! the arrival of each request's head.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::service::TowerToHyperService;

use super::auth::Accepted;
use super::caller;

/// The service of one connection from `peer`: `router`, with the peer's
/// address in every request as axum's [`ConnectInfo`] (the password
/// throttle counts failures by it, calls see it in their context), and the
/// instant its head arrived (a caller's timeout counts from it).
pub(super) fn service_for(router: &Router, peer: SocketAddr) -> WithPeer {
    WithPeer {
        inner: TowerToHyperService::new(router.clone()),
        peer,
        accepted: Arc::default(),
    }
}

/// See [`service_for`].
pub(super) struct WithPeer {
    inner: TowerToHyperService<Router>,
    peer: SocketAddr,
    /// The credential this connection's last request passed with (see
    /// [`super::auth::Accepted`]), in every request's extensions.
    accepted: Arc<Accepted>,
}

impl<B> hyper::service::Service<axum::http::Request<B>> for WithPeer
where
    TowerToHyperService<Router>: hyper::service::Service<axum::http::Request<B>>,
{
    type Response =
        <TowerToHyperService<Router> as hyper::service::Service<axum::http::Request<B>>>::Response;
    type Error =
        <TowerToHyperService<Router> as hyper::service::Service<axum::http::Request<B>>>::Error;
    type Future =
        <TowerToHyperService<Router> as hyper::service::Service<axum::http::Request<B>>>::Future;

    fn call(&self, mut request: axum::http::Request<B>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        request
            .extensions_mut()
            .insert(caller::Arrived(Instant::now()));
        request.extensions_mut().insert(self.accepted.clone());
        self.inner.call(request)
    }
}
