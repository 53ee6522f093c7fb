//! Counters every transport records into, read by users and exported by the
//! HTTP gateway as Prometheus text.
//!
//! ```
//! # fn demo(server: &rpc_transport::Server) {
//! use rpc_transport::metrics::Transport;
//! let metrics = server.metrics();
//! println!("{} TCP connections open", metrics.connections_open(Transport::Tcp));
//! let mut text = String::new();
//! metrics.render_prometheus(&mut text);
//! # }
//! ```
//!
//! One [`Metrics`] belongs to a [`crate::Server`] and is shared by all its
//! listeners. Recording is a few relaxed atomic additions into tables sized
//! once from the registry — no locks, no allocation, nothing to install —
//! so it stays on whether or not anyone reads it.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `rpc_calls_total` | counter | `service`, `method`, `transport`, `outcome` (`ok` or an [`ErrorKind::label`]) |
//! | `rpc_call_duration_seconds` | histogram | `service`, `method`, `transport` |
//! | `rpc_connections_open` | gauge | `transport` |
//! | `rpc_connections_total` | counter | `transport` |
//! | `rpc_connections_refused_total` | counter | `reason` |
//! | `rpc_handshakes_pending` | gauge | — (connections of every listener not yet authenticated) |
//! | `rpc_calls_in_flight` | gauge | — |
//! | `rpc_bytes_read_total`, `rpc_bytes_written_total` | counter | `transport` |
//! | `rpc_streams_open` | gauge | — (streams either way, on every connection) |
//! | `rpc_stream_items_total` | counter | `direction` (`sent`, `received`) |
//!
//! Calls to a method no service has are counted under `service=""`,
//! `method=""`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

mod prometheus;

use rpc_core::ErrorKind;
use rpc_core::registry::{Registry, Route};

/// Which listener a connection or call came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// Our framed TCP (or Unix socket) protocol.
    Tcp,
    /// A stock Python `multiprocessing.connection` peer on the TCP port.
    Python,
    /// The HTTP gateway.
    Http,
}

impl Transport {
    /// Every transport, in label order.
    pub const ALL: [Transport; 3] = [Transport::Tcp, Transport::Python, Transport::Http];

    /// The `transport` label: `"tcp"`, `"python"`, `"http"`.
    pub fn label(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Python => "python",
            Transport::Http => "http",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why a connection was turned away before its handshake finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refused {
    /// `max_connections` was reached.
    MaxConnections,
    /// At `max_pending_handshakes`, a connection that had made the least
    /// progress made way for a newer one.
    HandshakeShed,
    /// The handshake failed or timed out.
    Handshake,
    /// Its source address held `max_pending_per_ip` unauthenticated
    /// connections, and it had made the least progress of them.
    PerAddressShed,
    /// `accept` ran out of file descriptors, and this unauthenticated
    /// connection had made the least progress.
    DescriptorShed,
    /// A TCP peer did not answer the challenge within `first_answer_timeout`.
    FirstAnswerTimeout,
}

impl Refused {
    const ALL: [Refused; 6] = [
        Refused::MaxConnections,
        Refused::HandshakeShed,
        Refused::Handshake,
        Refused::PerAddressShed,
        Refused::DescriptorShed,
        Refused::FirstAnswerTimeout,
    ];

    fn label(self) -> &'static str {
        match self {
            Refused::MaxConnections => "max_connections",
            Refused::HandshakeShed => "handshake_shed",
            Refused::Handshake => "handshake",
            Refused::PerAddressShed => "per_address_shed",
            Refused::DescriptorShed => "descriptor_shed",
            Refused::FirstAnswerTimeout => "first_answer_timeout",
        }
    }
}

/// Upper bounds of the duration histogram's buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

const KINDS: usize = ErrorKind::ALL.len();
const TRANSPORTS: usize = Transport::ALL.len();

/// One method's calls through one transport.
#[derive(Default)]
struct Cell {
    ok: AtomicU64,
    errors: [AtomicU64; KINDS],
    /// Per bucket, not cumulative; the last is `+Inf`.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    nanos: AtomicU64,
}

/// The counters of one server; see the [module docs](self).
pub struct Metrics {
    /// `(service, method)` per route slot, then one for unknown methods.
    names: Vec<(&'static str, &'static str)>,
    /// `names.len() × TRANSPORTS` cells, transport-major within a method.
    cells: Box<[Cell]>,
    connections_open: [AtomicI64; TRANSPORTS],
    connections_total: [AtomicU64; TRANSPORTS],
    refused: [AtomicU64; Refused::ALL.len()],
    bytes_read: [AtomicU64; TRANSPORTS],
    bytes_written: [AtomicU64; TRANSPORTS],
    handshakes_pending: AtomicI64,
    calls_in_flight: AtomicI64,
    streams_open: AtomicI64,
    /// Stream items sent, received.
    stream_items: [AtomicU64; 2],
}

/// Which way stream items went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From this server to its peers.
    Sent,
    /// From peers to this server.
    Received,
}

impl Direction {
    /// The label value: `sent`, `received`.
    pub fn label(self) -> &'static str {
        match self {
            Direction::Sent => "sent",
            Direction::Received => "received",
        }
    }
}

impl Metrics {
    /// Counters for every method of `registry`.
    pub fn new(registry: &Registry) -> Arc<Metrics> {
        let mut names: Vec<_> = registry.methods().map(|(s, m)| (s.name, m.name)).collect();
        names.push(("", ""));
        let cells = (0..names.len() * TRANSPORTS)
            .map(|_| Cell::default())
            .collect();
        Arc::new(Metrics {
            names,
            cells,
            connections_open: Default::default(),
            connections_total: Default::default(),
            refused: Default::default(),
            bytes_read: Default::default(),
            bytes_written: Default::default(),
            handshakes_pending: AtomicI64::new(0),
            calls_in_flight: AtomicI64::new(0),
            streams_open: AtomicI64::new(0),
            stream_items: Default::default(),
        })
    }

    /// Counts a stream open until the guard drops.
    pub fn stream_opened(self: &Arc<Self>) -> Gauge {
        Gauge::up(self.clone(), |m| &m.streams_open)
    }

    /// Counts stream items that went `direction`.
    pub fn add_stream_items(&self, direction: Direction, items: u64) {
        self.stream_items[direction as usize].fetch_add(items, Relaxed);
    }

    /// Streams open now.
    pub fn streams_open(&self) -> u64 {
        u64::try_from(self.streams_open.load(Relaxed)).unwrap_or(0)
    }

    /// Stream items that went `direction` so far.
    pub fn stream_items(&self, direction: Direction) -> u64 {
        self.stream_items[direction as usize].load(Relaxed)
    }

    /// Counts a connection open until the guard drops.
    pub fn connection_opened(self: &Arc<Self>, transport: Transport) -> ConnectionGuard {
        self.connections_open[transport.index()].fetch_add(1, Relaxed);
        self.connections_total[transport.index()].fetch_add(1, Relaxed);
        ConnectionGuard {
            metrics: self.clone(),
            transport,
        }
    }

    /// Counts a handshake in progress until the guard drops.
    pub fn handshake_started(self: &Arc<Self>) -> Gauge {
        Gauge::up(self.clone(), |m| &m.handshakes_pending)
    }

    /// Counts a call running (its handler not yet stopped) until the guard drops.
    pub fn call_started(self: &Arc<Self>) -> Gauge {
        Gauge::up(self.clone(), |m| &m.calls_in_flight)
    }

    /// Counts a connection turned away.
    pub fn refused(&self, why: Refused) {
        self.refused[why as usize].fetch_add(1, Relaxed);
    }

    /// Records one finished call: `route` is `None` for a method that does
    /// not exist.
    pub fn record_call(
        &self,
        transport: Transport,
        route: Option<Route>,
        outcome: Result<(), ErrorKind>,
        elapsed: Duration,
    ) {
        let slot = route.map_or(self.names.len() - 1, Route::slot);
        let Some(cell) = self.cells.get(slot * TRANSPORTS + transport.index()) else {
            // A route from another registry: nothing sensible to count it under.
            return;
        };
        match outcome {
            Ok(()) => cell.ok.fetch_add(1, Relaxed),
            Err(kind) => cell.errors[kind.index()].fetch_add(1, Relaxed),
        };
        let seconds = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&b| seconds <= b)
            .unwrap_or(BUCKETS.len());
        cell.buckets[bucket].fetch_add(1, Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        cell.nanos.fetch_add(nanos, Relaxed);
    }

    /// Counts bytes read from and written to peers.
    pub fn add_bytes(&self, transport: Transport, read: u64, written: u64) {
        if read > 0 {
            self.bytes_read[transport.index()].fetch_add(read, Relaxed);
        }
        if written > 0 {
            self.bytes_written[transport.index()].fetch_add(written, Relaxed);
        }
    }

    /// Connections open now through `transport` (handshaking ones included).
    pub fn connections_open(&self, transport: Transport) -> u64 {
        gauge(&self.connections_open[transport.index()])
    }

    /// Connections still in the authkey handshake.
    pub fn handshakes_pending(&self) -> u64 {
        gauge(&self.handshakes_pending)
    }

    /// Calls whose handler has not stopped yet, cancelled ones included.
    pub fn calls_in_flight(&self) -> u64 {
        gauge(&self.calls_in_flight)
    }

    /// Finished calls through `transport` with `outcome`, over all methods.
    pub fn calls(&self, transport: Transport, outcome: Result<(), ErrorKind>) -> u64 {
        self.cells
            .iter()
            .skip(transport.index())
            .step_by(TRANSPORTS)
            .map(|cell| match outcome {
                Ok(()) => cell.ok.load(Relaxed),
                Err(kind) => cell.errors[kind.index()].load(Relaxed),
            })
            .sum()
    }

    /// Connections turned away for `why`.
    pub fn refused_count(&self, why: Refused) -> u64 {
        self.refused[why as usize].load(Relaxed)
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field(
                "connections_open",
                &Transport::ALL.map(|t| self.connections_open(t)),
            )
            .field("handshakes_pending", &self.handshakes_pending())
            .field("calls_in_flight", &self.calls_in_flight())
            .finish_non_exhaustive()
    }
}

fn gauge(value: &AtomicI64) -> u64 {
    u64::try_from(value.load(Relaxed)).unwrap_or(0)
}

/// An open connection, counted until dropped.
#[derive(Debug)]
pub struct ConnectionGuard {
    metrics: Arc<Metrics>,
    transport: Transport,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.metrics.connections_open[self.transport.index()].fetch_sub(1, Relaxed);
    }
}

/// One unit of a gauge (a pending handshake, a call in flight), counted
/// until dropped.
pub struct Gauge {
    metrics: Arc<Metrics>,
    field: fn(&Metrics) -> &AtomicI64,
}

impl Gauge {
    fn up(metrics: Arc<Metrics>, field: fn(&Metrics) -> &AtomicI64) -> Gauge {
        field(&metrics).fetch_add(1, Relaxed);
        Gauge { metrics, field }
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        (self.field)(&self.metrics).fetch_sub(1, Relaxed);
    }
}

impl std::fmt::Debug for Gauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gauge").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_reason_is_rendered() {
        let metrics = Metrics::new(&Registry::new());
        metrics.refused(Refused::PerAddressShed);
        metrics.refused(Refused::FirstAnswerTimeout);
        let mut text = String::new();
        metrics.render_prometheus(&mut text);
        for line in [
            "rpc_connections_refused_total{reason=\"per_address_shed\"} 1",
            "rpc_connections_refused_total{reason=\"first_answer_timeout\"} 1",
            "rpc_connections_refused_total{reason=\"descriptor_shed\"} 0",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    #[test]
    fn an_empty_registry_renders_its_gauges_and_counts_unknown_methods() {
        let metrics = Metrics::new(&Registry::new());
        let conn = metrics.connection_opened(Transport::Tcp);
        metrics.record_call(
            Transport::Tcp,
            None,
            Err(ErrorKind::MethodNotFound),
            Duration::from_micros(300),
        );
        assert_eq!(metrics.connections_open(Transport::Tcp), 1);
        assert_eq!(
            metrics.calls(Transport::Tcp, Err(ErrorKind::MethodNotFound)),
            1
        );
        let mut text = String::new();
        metrics.render_prometheus(&mut text);
        assert!(text.contains(
            "rpc_calls_total{service=\"\",method=\"\",transport=\"tcp\",outcome=\"method_not_found\"} 1"
        ));
        assert!(text.contains("le=\"0.0005\"} 1"), "{text}");
        assert!(text.contains("le=\"0.00025\"} 0"), "{text}");
        assert!(text.contains("rpc_connections_open{transport=\"tcp\"} 1"));
        drop(conn);
        assert_eq!(metrics.connections_open(Transport::Tcp), 0);
    }

    #[test]
    fn gauges_go_back_down_when_their_guards_drop() {
        let metrics = Metrics::new(&Registry::new());
        let calls: Vec<Gauge> = (0..3).map(|_| metrics.call_started()).collect();
        let handshake = metrics.handshake_started();
        assert_eq!(
            (metrics.calls_in_flight(), metrics.handshakes_pending()),
            (3, 1)
        );
        drop((calls, handshake));
        assert_eq!(
            (metrics.calls_in_flight(), metrics.handshakes_pending()),
            (0, 0)
        );
    }
}
