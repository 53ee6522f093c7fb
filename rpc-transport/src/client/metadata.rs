//! What a call sends beside its arguments: the caller's metadata, and the
//! caller's trace context ([`rpc_core::trace`]), on protocol 2 only.

use std::borrow::Cow;

use rpc_core::trace::TraceParent;
use rpc_core::{Error, ErrorKind, Metadata};

/// The metadata a call of `method` carries (`None`: none), given the
/// caller's and whether the server speaks protocol 2. Fails if the caller
/// set metadata for a protocol-1 server; the trace context is added only
/// on protocol 2, so a protocol-1 server is never sent what it cannot read.
pub(super) fn to_send<'a>(
    method: &str,
    metadata: Option<&'a Metadata>,
    protocol_2: bool,
) -> Result<Option<Cow<'a, Metadata>>, Error> {
    let metadata = metadata.filter(|m| !m.is_empty());
    if !protocol_2 {
        return match metadata {
            None => Ok(None),
            Some(_) => Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "`{method}` carries metadata, which needs protocol 2; the server speaks \
                     protocol 1"
                ),
            )),
        };
    }
    // Asked of the dispatcher without taking a handle on the span:
    // `Span::current()` would clone it (and close the clone) per call.
    let span_active = tracing::dispatcher::get_default(|d| d.current_span().id().is_some());
    Ok(match TraceParent::for_outgoing(metadata, span_active) {
        Some(trace) => Some(Cow::Owned(trace.into_metadata(metadata))),
        None => metadata.map(Cow::Borrowed),
    })
}
