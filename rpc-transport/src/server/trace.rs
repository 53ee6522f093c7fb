//! A received call's trace context continued (see [`rpc_core::trace`]):
//! the current span (the server's `call` span) records the trace id, the
//! caller's span id (`parent_id`) and its own (`span_id`), and the
//! handler's metadata names that span as the parent of the calls it makes,
//! so a downstream server's `parent_id` is this one's `span_id`.

use rpc_core::Metadata;
use rpc_core::trace::{TRACEPARENT, TraceParent};

/// `metadata` as the handler sees it, having recorded its trace context
/// (if valid) in the current span's `trace_id`, `parent_id` and
/// `span_id` fields.
pub(crate) fn continue_trace(metadata: Metadata) -> Metadata {
    let Some((received, seen)) = TraceParent::for_incoming(&metadata) else {
        return metadata;
    };
    let span = tracing::Span::current();
    let display = tracing::field::display;
    span.record("trace_id", display(received.trace_id_hex()));
    span.record("parent_id", display(received.parent_id_hex()));
    if let Some(own) = seen.text(TRACEPARENT).and_then(TraceParent::parse) {
        span.record("span_id", display(own.parent_id_hex()));
    }
    seen
}
