//! The Prometheus text format (version 0.0.4) of a server's [`Metrics`].

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use rpc_core::ErrorKind;

use super::{BUCKETS, Cell, Direction, Metrics, Refused, TRANSPORTS, Transport};

impl Metrics {
    /// Appends every metric in the Prometheus text format (version 0.0.4).
    pub fn render_prometheus(&self, out: &mut String) {
        self.render_calls(out);
        self.render_durations(out);
        header(
            out,
            "rpc_connections_open",
            "gauge",
            "Connections open now.",
        );
        for t in Transport::ALL {
            let n = self.connections_open(t);
            let _ = writeln!(
                out,
                "rpc_connections_open{{transport=\"{}\"}} {n}",
                t.label()
            );
        }
        per_transport(
            out,
            "rpc_connections_total",
            "Connections accepted.",
            &self.connections_total,
        );
        header(
            out,
            "rpc_connections_refused_total",
            "counter",
            "Connections turned away before serving.",
        );
        for why in Refused::ALL {
            let n = self.refused_count(why);
            let _ = writeln!(
                out,
                "rpc_connections_refused_total{{reason=\"{}\"}} {n}",
                why.label()
            );
        }
        header(
            out,
            "rpc_handshakes_pending",
            "gauge",
            "Connections in the authkey handshake.",
        );
        let _ = writeln!(out, "rpc_handshakes_pending {}", self.handshakes_pending());
        header(
            out,
            "rpc_calls_in_flight",
            "gauge",
            "Calls whose handler has not stopped.",
        );
        let _ = writeln!(out, "rpc_calls_in_flight {}", self.calls_in_flight());
        header(
            out,
            "rpc_streams_open",
            "gauge",
            "Streams open, either way.",
        );
        let _ = writeln!(out, "rpc_streams_open {}", self.streams_open());
        header(
            out,
            "rpc_stream_items_total",
            "counter",
            "Stream items sent and received.",
        );
        for direction in [Direction::Sent, Direction::Received] {
            let _ = writeln!(
                out,
                "rpc_stream_items_total{{direction=\"{}\"}} {}",
                direction.label(),
                self.stream_items(direction)
            );
        }
        per_transport(
            out,
            "rpc_bytes_read_total",
            "Bytes read from peers.",
            &self.bytes_read,
        );
        per_transport(
            out,
            "rpc_bytes_written_total",
            "Bytes written to peers.",
            &self.bytes_written,
        );
    }

    /// The non-zero cells, with their method's names and transport.
    fn used(&self) -> impl Iterator<Item = (&'static str, &'static str, Transport, &Cell)> + '_ {
        self.cells.iter().enumerate().filter_map(|(i, cell)| {
            let (service, method) = self.names[i / TRANSPORTS];
            let transport = Transport::ALL[i % TRANSPORTS];
            let used = cell.buckets.iter().any(|b| b.load(Relaxed) > 0);
            used.then_some((service, method, transport, cell))
        })
    }

    fn render_calls(&self, out: &mut String) {
        header(
            out,
            "rpc_calls_total",
            "counter",
            "Finished calls by outcome.",
        );
        for (service, method, transport, cell) in self.used() {
            let t = transport.label();
            let labels = format!("service=\"{service}\",method=\"{method}\",transport=\"{t}\"");
            let _ = writeln!(
                out,
                "rpc_calls_total{{{labels},outcome=\"ok\"}} {}",
                cell.ok.load(Relaxed)
            );
            for kind in ErrorKind::ALL {
                let n = cell.errors[kind.index()].load(Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "rpc_calls_total{{{labels},outcome=\"{}\"}} {n}",
                        kind.label()
                    );
                }
            }
        }
    }

    fn render_durations(&self, out: &mut String) {
        let name = "rpc_call_duration_seconds";
        header(
            out,
            name,
            "histogram",
            "Time from reading a call to its reply.",
        );
        for (service, method, transport, cell) in self.used() {
            let t = transport.label();
            let labels = format!("service=\"{service}\",method=\"{method}\",transport=\"{t}\"");
            let mut count = 0;
            for (i, bucket) in cell.buckets.iter().enumerate() {
                count += bucket.load(Relaxed);
                let le = BUCKETS.get(i).map_or("+Inf".to_owned(), f64::to_string);
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {count}");
            }
            let sum = cell.nanos.load(Relaxed) as f64 / 1e9;
            let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn per_transport(out: &mut String, name: &str, help: &str, values: &[AtomicU64; TRANSPORTS]) {
    header(out, name, "counter", help);
    for t in Transport::ALL {
        let n = values[t.index()].load(Relaxed);
        let _ = writeln!(out, "{name}{{transport=\"{}\"}} {n}", t.label());
    }
}
