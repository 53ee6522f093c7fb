//! The service of each connection: the router, with the peer's address and
//! the arrival of each request's head.

use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::service::TowerToHyperService;

use super::caller;

/// The service of one connection from `peer`: `router`, with the peer's
/// address in every request as axum's [`ConnectInfo`] (the password
/// throttle counts failures by it, calls see it in their context), and the
/// instant its head arrived (a caller's timeout counts from it).
pub(super) fn service_for(router: &Router, peer: SocketAddr) -> WithPeer {
    WithPeer {
        inner: TowerToHyperService::new(router.clone()),
        peer,
    }
}

/// See [`service_for`].
pub(super) struct WithPeer {
    inner: TowerToHyperService<Router>,
    peer: SocketAddr,
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
        self.inner.call(request)
    }
}
