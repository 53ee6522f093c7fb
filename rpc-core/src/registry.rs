//! The registry: every service a server offers, found by name.
//!
//! A method is addressed as `Service.method`; a bare `method` resolves too
//! when exactly one service has it (Python-style clients call `add`). The
//! registry knows nothing of connections or formats: [`Registry::dispatch`]
//! takes a method name and any deserializer of its arguments, and returns the
//! handler's future.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use tower::Layer;

use crate::codec::Codec;
use crate::context::Context;
use crate::discover::{self, Discover, Info};
use crate::error::{Error, ErrorKind};
use crate::layer::{BoxError, Call, Next, Shared, Stack, Watch};
use crate::service::{CallFuture, MethodInfo, Reply, Service, ServiceInfo};

/// Service names the framework keeps for its own services.
pub const RESERVED: &[&str] = &["rpc", "system"];

/// Several services, resolved by method name; and the framework's own
/// `rpc.discover`, which answers their OpenRPC document ([`crate::discover`]).
#[derive(Clone, Default)]
pub struct Registry {
    services: Vec<Arc<dyn Service>>,
    /// The document's title and version, if set ([`Registry::openrpc_info`]).
    info: Option<Info>,
    /// The `rpc` service, rebuilt whenever a service is added.
    discover: Option<Arc<Discover>>,
    /// `Service.method` and unambiguous bare names → (service, method).
    routes: HashMap<String, Route, BuildHasherDefault<Fnv>>,
    /// The middleware every call runs through, if any (see [`crate::layer`]).
    layers: Option<Arc<Stack>>,
}

/// [`Route::service`] of the framework's `rpc` service.
const FRAMEWORK: usize = usize::MAX;

/// A resolved method: which service, and its description.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    service: usize,
    method: &'static MethodInfo,
    /// Position among all methods of the registry, in registration order.
    slot: usize,
}

impl Route {
    /// This method's position among all the registry's methods (in
    /// registration order, from 0 to [`Registry::method_count`]): an index
    /// for per-method tables such as counters. The framework's own
    /// `rpc.discover` is past the end (`method_count + 1`): such tables
    /// leave it out.
    pub fn slot(self) -> usize {
        self.slot
    }
}

impl Registry {
    /// An empty registry (which answers `rpc.discover` already).
    pub fn new() -> Registry {
        let mut registry = Registry::default();
        registry.reroute();
        registry
    }

    /// Names the API in the OpenRPC document `rpc.discover` answers: its
    /// `info.title` and `info.version`. Without it the title is the
    /// services' names and the version rpc-core's.
    ///
    /// ```
    /// let mut registry = rpc_core::Registry::new();
    /// registry.openrpc_info("Calculator API", "1.2.0");
    /// assert_eq!(registry.openrpc()["info"]["title"], "Calculator API");
    /// ```
    pub fn openrpc_info(
        &mut self,
        title: impl Into<String>,
        version: impl Into<String>,
    ) -> &mut Registry {
        self.info = Some(Info::new(title, version));
        self.reroute();
        self
    }

    /// The OpenRPC document of the services, as `rpc.discover` answers it.
    pub fn openrpc(&self) -> serde_json::Value {
        self.discover
            .as_ref()
            .map_or_else(|| self.rpc_service().document(), |d| d.document())
            .0
            .clone()
    }

    fn rpc_service(&self) -> Discover {
        let info = self.info.clone().unwrap_or_else(|| {
            let names: Vec<&str> = self.services().map(|s| s.name).collect();
            let title = if names.is_empty() {
                "rpc".to_owned()
            } else {
                names.join(", ")
            };
            Info::new(title, env!("CARGO_PKG_VERSION"))
        });
        Discover::new(info, self.services().collect())
    }

    /// The service at `index` of a route, the framework's own included.
    fn service_at(&self, index: usize) -> &dyn Service {
        match (self.services.get(index), &self.discover) {
            (Some(service), _) => &**service,
            (None, Some(discover)) => &**discover,
            (None, None) => unreachable!("a route to the `rpc` service exists only with it"),
        }
    }

    /// Adds `service`. Fails if its name is taken or reserved.
    pub fn register(&mut self, service: impl Service) -> Result<&mut Registry, Error> {
        let info = service.info();
        if RESERVED.contains(&info.name) {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "the service name `{}` is reserved for the framework",
                    info.name
                ),
            ));
        }
        if self.services.iter().any(|s| s.info().name == info.name) {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "a service named `{}` is already registered; two services of one server \
                     need two names: give one another with `#[rpc_service(name = \"…\")]`",
                    info.name
                ),
            ));
        }
        self.services.push(Arc::new(service));
        self.reroute();
        Ok(self)
    }

    /// Adds `service`, builder-style; see [`Registry::register`].
    pub fn with(mut self, service: impl Service) -> Result<Registry, Error> {
        self.register(service)?;
        Ok(self)
    }

    /// Wraps every call, from every door, in `layer`: see [`crate::layer`].
    /// Each call wraps what was added before, so the last added runs
    /// first. Add layers before serving: a clone of the registry made
    /// before keeps the layers it had.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let mut registry = rpc_core::Registry::new();
    /// registry
    ///     .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(5)))
    ///     .layer(tower::load_shed::LoadShedLayer::new());
    /// ```
    pub fn layer<L>(&mut self, layer: L) -> &mut Registry
    where
        L: Layer<Next>,
        L::Service: tower::Service<Call, Response = Reply> + Send + 'static,
        <L::Service as tower::Service<Call>>::Error: Into<BoxError>,
        <L::Service as tower::Service<Call>>::Future: Send + 'static,
    {
        let service = layer.layer(Next::new(self.layers.take()));
        let stack: Arc<Stack> = Arc::new(Shared::new(service));
        self.layers = Some(stack);
        self
    }

    /// Whether calls run through layers.
    #[inline]
    pub fn has_layers(&self) -> bool {
        self.layers.is_some()
    }

    /// `call` (a started call of `route`) as it runs through the layers, if
    /// any, with `context` for them to see; `call` itself when there are
    /// none. The door still runs the result inside `context`'s scope.
    pub fn layered(&self, route: Route, call: CallFuture, context: &Context) -> CallFuture {
        let Some(layers) = &self.layers else {
            return call;
        };
        let service = self.service(route);
        let watch = Arc::new(Watch::default());
        let call = Call::new(service, route.method, context.clone(), call).watched(watch.clone());
        CallFuture::marking(layers.clone().reply(call, watch)).of(service.name, route.method.name)
    }

    fn reroute(&mut self) {
        self.routes.clear();
        let mut bare: HashMap<&str, Vec<Route>> = HashMap::new();
        let mut slot = 0;
        for (i, s) in self.services.iter().enumerate() {
            let info = s.info();
            for m in info.methods {
                let route = Route {
                    service: i,
                    method: m,
                    slot,
                };
                slot += 1;
                self.routes
                    .insert(format!("{}.{}", info.name, m.name), route);
                bare.entry(m.name).or_default().push(route);
            }
        }
        for (name, routes) in bare {
            if let [route] = routes[..] {
                self.routes.entry(name.to_owned()).or_insert(route);
            }
        }
        // Only by its full name: a bare `discover` stays the user's.
        let discover = self.rpc_service();
        self.discover = Some(Arc::new(discover));
        let route = Route {
            service: FRAMEWORK,
            method: &discover::RPC.methods[0],
            slot: slot + 1,
        };
        self.routes.insert(discover::METHOD.to_owned(), route);
    }

    /// The services, in registration order.
    pub fn services(&self) -> impl Iterator<Item = &'static ServiceInfo> + '_ {
        self.services.iter().map(|s| s.info())
    }

    /// How many methods all services have together.
    pub fn method_count(&self) -> usize {
        self.services.iter().map(|s| s.info().methods.len()).sum()
    }

    /// Every method as `(service, method)`, in [`Route::slot`] order.
    pub fn methods(
        &self,
    ) -> impl Iterator<Item = (&'static ServiceInfo, &'static MethodInfo)> + '_ {
        self.services()
            .flat_map(|s| s.methods.iter().map(move |m| (s, m)))
    }

    /// Finds `name` (`Service.method` or a bare, unambiguous `method`).
    pub fn resolve(&self, name: &str) -> Result<Route, Error> {
        self.routes
            .get(name)
            .copied()
            .ok_or_else(|| self.not_found(name))
    }

    /// The method `route` names.
    pub fn method(&self, route: Route) -> &'static MethodInfo {
        route.method
    }

    /// The service `route` belongs to.
    pub fn service(&self, route: Route) -> &'static ServiceInfo {
        self.service_at(route.service).info()
    }

    /// Resolves `name`, decodes its arguments from `args` and starts the call.
    /// The future turns a handler's panic into an error reply.
    pub fn dispatch(
        &self,
        name: &str,
        args: &mut dyn erased_serde::Deserializer<'_>,
    ) -> Result<CallFuture, Error> {
        let route = self.resolve(name)?;
        self.call(route, args)
    }

    /// Starts a call to an already resolved method.
    pub fn call(
        &self,
        route: Route,
        args: &mut dyn erased_serde::Deserializer<'_>,
    ) -> Result<CallFuture, Error> {
        let service = self.service_at(route.service);
        let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            service.start(route.method.name, args, self.layers.is_some())
        }));
        let names = (service.info().name, route.method.name);
        match started {
            Ok(Ok(call)) => Ok(CallFuture::new(call).of(names.0, names.1)),
            Ok(Err(e)) if e.kind() == ErrorKind::InvalidParams => {
                Err(bincode_limits(e, names.0, route.method))
            }
            Ok(Err(e)) => Err(e),
            Err(panic) => Err(Error::new(
                ErrorKind::HandlerPanic,
                format!(
                    "decoding the arguments panicked: {}",
                    crate::service::panic_message(&*panic)
                ),
            )),
        }
    }

    /// Like [`Registry::dispatch`], with arguments in `codec`'s encoding.
    pub fn dispatch_encoded(
        &self,
        name: &str,
        codec: &dyn Codec,
        params: &[u8],
    ) -> Result<CallFuture, Error> {
        self.call_encoded(self.resolve(name)?, codec, params)
    }

    /// Like [`Registry::call`], with arguments in `codec`'s encoding.
    pub fn call_encoded(
        &self,
        route: Route,
        codec: &dyn Codec,
        params: &[u8],
    ) -> Result<CallFuture, Error> {
        let mut started = None;
        let name = || format!("{}.{}", self.service(route).name, route.method.name);
        let decoded = codec.decode_value(params, &mut |de| {
            // The service's own error keeps its kind (a wrapper may refuse
            // with any); only the codec's are about the arguments.
            started = Some(self.call(route, de));
            Ok(())
        });
        match (started, decoded) {
            (Some(started), Ok(())) => started,
            (Some(Err(e)), Err(_)) => Err(e),
            (_, Err(e)) => Err(match e.kind() {
                ErrorKind::InvalidParams | ErrorKind::MethodNotFound | ErrorKind::OverBudget => e,
                _ => Error::invalid_params(&name(), e.message()),
            }),
            (None, Ok(())) => Err(Error::invalid_params(&name(), "no arguments were read")),
        }
    }

    fn not_found(&self, name: &str) -> Error {
        let bare = name.rsplit('.').next().unwrap_or(name);
        let candidates: Vec<String> = self
            .services()
            .flat_map(|s| {
                s.methods
                    .iter()
                    .filter(|m| m.name == bare)
                    .map(move |m| format!("{}.{}", s.name, m.name))
            })
            .collect();
        if !name.contains('.') && candidates.len() > 1 {
            return Error::new(
                ErrorKind::MethodNotFound,
                format!(
                    "`{name}` is ambiguous; call one of: {}",
                    candidates.join(", ")
                ),
            );
        }
        Error::method_not_found(name, &self.describe_methods())
    }

    /// `Service.method(x: T, …) -> R` for every method, comma separated.
    fn describe_methods(&self) -> String {
        let all: Vec<String> = self
            .services()
            .flat_map(|s| {
                s.methods
                    .iter()
                    .map(move |m| format!("{}.{}", s.name, m.signature()))
            })
            .collect();
        if all.is_empty() {
            "none".to_owned()
        } else {
            all.join(", ")
        }
    }
}

/// FNV-1a: every call looks its method up here, and SipHash's resistance
/// to chosen keys buys nothing for a table only the registry fills (a peer's
/// name is looked up, never inserted).
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = hash;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.services().map(|s| s.name))
            .finish()
    }
}

/// `error` (invalid arguments for `service.method`), explained if bincode
/// failed on an argument type that needs a self-describing format: which
/// argument, of which type, and what to do instead.
fn bincode_limits(error: Error, service: &str, method: &MethodInfo) -> Error {
    let qualified = format!("{service}.{}", method.name);
    let said = error
        .message()
        .strip_prefix(&format!("invalid arguments for `{qualified}`: "))
        .unwrap_or(error.message());
    if !crate::explain::needs_self_describing(said) {
        return error;
    }
    let what = match method.params {
        [one] => format!("argument `{}` (type `{}`)", one.name, one.ty),
        params => {
            let all: Vec<String> = params
                .iter()
                .map(|p| format!("`{}: {}`", p.name, p.ty))
                .collect();
            format!("one of the arguments ({})", all.join(", "))
        }
    };
    let why = crate::explain::explain("bincode", &what, said);
    Error::invalid_params(&qualified, why)
}
