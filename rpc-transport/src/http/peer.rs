//! The service of each connection: `POST /rpc` straight to its handling
//! ([`super::post_rpc`]), every other request through the router, with
//! the peer's address and the arrival of each request's head; both behind
//! the same outer layers ([`super::routes::outer`]).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request};
use axum::response::Response;
use axum::routing::future::RouteFuture;
use futures::future::Either;
use hyper::body::Incoming;
use tower::Service;

use super::auth::Accepted;
use super::routes::{Outer, outer};
use super::{Gateway, caller, post_rpc};

/// The service of one connection: [`Split`] inside the outer layers,
/// called as hyper calls a service. Every layer is always ready, so each
/// request calls a copy of the stack at once (what hyper-util's
/// `TowerToHyperService` does, without polling it ready first).
pub(super) struct WithPeer(Outer<Split>);

impl hyper::service::Service<Request<Incoming>> for WithPeer {
    type Response = <Outer<Split> as Service<Request<Incoming>>>::Response;
    type Error = <Outer<Split> as Service<Request<Incoming>>>::Error;
    type Future = <Outer<Split> as Service<Request<Incoming>>>::Future;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.0.clone().call(request)
    }
}

/// The service of one connection from `peer`: `router`, or `POST /rpc`'s
/// own path, behind the outer layers.
pub(super) fn service_for(gateway: &Arc<Gateway>, router: &Router, peer: SocketAddr) -> WithPeer {
    let split = Split {
        router: router.clone(),
        connection: Arc::new(Connection {
            gateway: gateway.clone(),
            peer,
            accepted: Arc::default(),
        }),
    };
    WithPeer(outer(gateway, split))
}

/// What a connection's requests share.
struct Connection {
    gateway: Arc<Gateway>,
    peer: SocketAddr,
    /// The credential this connection's last request passed with (see
    /// [`super::auth::Accepted`]).
    accepted: Arc<Accepted>,
}

/// `POST /rpc` to [`post_rpc::answer`], any other request to the router
/// with the peer's address as axum's [`ConnectInfo`] (the password
/// throttle counts failures by it, calls see it in their context), the
/// instant its head arrived (a caller's timeout counts from it) and the
/// connection's accepted credential in its extensions.
#[derive(Clone)]
pub(super) struct Split {
    router: Router,
    connection: Arc<Connection>,
}

type Answering = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl Service<Request<Incoming>> for Split {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Answering, RouteFuture<Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Incoming>) -> Self::Future {
        let arrived = Instant::now();
        if request.method() == Method::POST && request.uri().path() == post_rpc::PATH {
            let connection = self.connection.clone();
            return Either::Left(Box::pin(async move {
                let Connection {
                    gateway,
                    peer,
                    accepted,
                } = &*connection;
                Ok(post_rpc::answer(gateway, *peer, accepted, arrived, request).await)
            }));
        }
        let extensions = request.extensions_mut();
        extensions.insert(ConnectInfo(self.connection.peer));
        extensions.insert(caller::Arrived(arrived));
        extensions.insert(self.connection.accepted.clone());
        Either::Right(self.router.call(request))
    }
}
