//! W3C trace context (`traceparent`) carried in a call's metadata, so that
//! a trace crosses processes by itself.
//!
//! ```text
//! traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
//!              version-trace id (16 bytes)-parent id (8 bytes)-flags
//! ```
//!
//! - A client sends one with a call when its caller has a trace: inside a
//!   handler whose call came with one (the same trace, a new id for the
//!   outgoing call), or when a `tracing` span is active (a new trace). One
//!   the caller set in the metadata itself is sent as it is.
//! - A server that receives one continues the trace: its call span records
//!   the trace id and the caller's id, and the handler's
//!   [`Context::metadata`](crate::Context::metadata) holds a `traceparent`
//!   naming the server's own span, so the handler's own calls are its
//!   children.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::context::Context;
use crate::metadata::Metadata;

/// The metadata key (and HTTP header) of the trace context.
pub const TRACEPARENT: &str = "traceparent";

/// One `traceparent` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace every span of it shares.
    pub trace_id: [u8; 16],
    /// The sender's span.
    pub parent_id: [u8; 8],
    /// The trace flags (bit 0: sampled).
    pub flags: u8,
}

impl TraceParent {
    /// Reads a `traceparent` value (version `00`, or a later version's
    /// first four fields); `None` if it is not one, or has an all-zero id.
    pub fn parse(text: &str) -> Option<TraceParent> {
        let mut fields = text.trim().split('-');
        let version = fields.next()?;
        let (trace, parent, flags) = (fields.next()?, fields.next()?, fields.next()?);
        if version.len() != 2 || version == "ff" || (version == "00" && fields.next().is_some()) {
            return None;
        }
        let trace_id: [u8; 16] = hex(trace)?;
        let parent_id: [u8; 8] = hex(parent)?;
        let [flags] = hex::<1>(flags)?;
        let zero = trace_id == [0; 16] || parent_id == [0; 8];
        (!zero).then_some(TraceParent {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// A new trace, sampled, whose first span is a new id.
    pub fn root() -> TraceParent {
        let (high, low) = (random_u64(), random_u64());
        let mut trace_id = [0; 16];
        trace_id[..8].copy_from_slice(&high.to_be_bytes());
        trace_id[8..].copy_from_slice(&low.to_be_bytes());
        TraceParent {
            trace_id,
            parent_id: span_id(),
            flags: 1,
        }
    }

    /// The same trace, from a new span (the id of a call this span makes).
    pub fn child(&self) -> TraceParent {
        TraceParent {
            parent_id: span_id(),
            ..*self
        }
    }

    /// The trace id, in hex.
    pub fn trace_id_hex(&self) -> String {
        to_hex(&self.trace_id)
    }

    /// The parent id, in hex.
    pub fn parent_id_hex(&self) -> String {
        to_hex(&self.parent_id)
    }

    /// The trace context a call made now should carry, if any: the one in
    /// `metadata` (set by the caller), else a new id in the trace of the
    /// call being served (its [`Context`]), else a new trace when
    /// `span_active` (a `tracing` span is entered). `None` when there is
    /// no trace, or `metadata` has one already.
    pub fn for_outgoing(metadata: Option<&Metadata>, span_active: bool) -> Option<TraceParent> {
        if metadata.is_some_and(|m| m.get(TRACEPARENT).is_some()) {
            return None;
        }
        let serving =
            Context::with_current(|c| c.metadata().text(TRACEPARENT).and_then(TraceParent::parse))
                .flatten();
        match serving {
            Some(parent) => Some(parent.child()),
            None if span_active => Some(TraceParent::root()),
            None => None,
        }
    }

    /// `metadata` with `self` set as its `traceparent`.
    pub fn into_metadata(self, metadata: Option<&Metadata>) -> Metadata {
        let mut out = metadata.cloned().unwrap_or_default();
        // A key and value well within the limits: only a map already at
        // its limit refuses it, and is then sent without.
        let _ = out.insert(TRACEPARENT, self.to_string());
        out
    }

    /// What a server makes of a call's `metadata`: the trace context the
    /// caller sent, and the metadata its handler sees, whose
    /// `traceparent` names the server's span. `None` without a valid one.
    pub fn for_incoming(metadata: &Metadata) -> Option<(TraceParent, Metadata)> {
        let received = TraceParent::parse(metadata.text(TRACEPARENT)?)?;
        let mut seen = metadata.clone();
        let _ = seen.insert(TRACEPARENT, received.child().to_string());
        Some((received, seen))
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            to_hex(&self.trace_id),
            to_hex(&self.parent_id),
            self.flags
        )
    }
}

/// A new, non-zero span id.
fn span_id() -> [u8; 8] {
    random_u64().max(1).to_be_bytes()
}

/// 64 random bits: ids need only be unique, not secret. Each call mixes a
/// counter with the process's random hash keys.
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

fn hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != N * 2 {
        return None;
    }
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    let mut out = [0; N];
    for (i, pair) in bytes.chunks(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_prints_the_w3c_example() {
        let t = TraceParent::parse(SAMPLE).unwrap();
        assert_eq!(t.to_string(), SAMPLE);
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.flags, 1);
        let child = t.child();
        assert_eq!(child.trace_id, t.trace_id);
        assert_ne!(child.parent_id, t.parent_id);
    }

    #[test]
    fn refuses_what_is_not_one() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
        // A later version may add fields.
        assert!(TraceParent::parse(&format!("01{}-more", &SAMPLE[2..])).is_some());
    }

    #[test]
    fn roots_are_new_traces() {
        let (a, b) = (TraceParent::root(), TraceParent::root());
        assert_ne!(a.trace_id, b.trace_id);
        assert_eq!(TraceParent::parse(&a.to_string()), Some(a));
    }

    #[test]
    fn outgoing_follows_the_call_being_served_then_a_span() {
        assert_eq!(TraceParent::for_outgoing(None, false), None);
        assert!(TraceParent::for_outgoing(None, true).is_some());
        let mut metadata = Metadata::new();
        metadata.insert(TRACEPARENT, SAMPLE).unwrap();
        // Set by the caller: sent as it is.
        assert_eq!(TraceParent::for_outgoing(Some(&metadata), true), None);
        let (received, seen) = TraceParent::for_incoming(&metadata).unwrap();
        assert_eq!(received.to_string(), SAMPLE);
        let server = TraceParent::parse(seen.text(TRACEPARENT).unwrap()).unwrap();
        assert_eq!(server.trace_id, received.trace_id);
        let mut context = Context::new().with_metadata(Some(std::sync::Arc::new(seen)));
        let out = context
            .within(|| TraceParent::for_outgoing(None, false))
            .unwrap();
        assert_eq!(out.trace_id, received.trace_id);
        assert_ne!(out.parent_id, server.parent_id);
    }
}
