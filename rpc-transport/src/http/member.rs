//! One JSON-RPC call read from a `POST /rpc` body: run through the
//! gateway and its response object encoded, within a size limit when asked.
//! Shared by a single request ([`super::jsonrpc`]) and a batch's members
//! ([`super::batch`]).

use std::time::Duration;

use axum::body::Bytes;
use bytes::{BufMut, BytesMut};
use rpc_core::codec::{Codec, Id, Json};
use rpc_core::service::{Fault, Reply};
use rpc_core::{Error, ErrorKind};

use super::Gateway;
use super::reply::{Encoded, write_json_within};

/// One call of a request, owning what it needs of the body.
pub(crate) enum Member {
    /// A call to run; `id: None` for a notification.
    Call {
        id: Option<Id>,
        method: String,
        deadline: Option<Duration>,
        /// The encoded arguments: a slice of the body, not a copy.
        params: Bytes,
        /// The request object's `"meta"`, set over the headers' metadata.
        metadata: Option<rpc_core::Metadata>,
    },
    /// Not a call: answered with `error`.
    Invalid { id: Id, error: Error },
}

impl Member {
    /// The id it is answered under; `None` for a notification.
    pub(crate) fn id(&self) -> Option<&Id> {
        match self {
            Member::Call { id, .. } => id.as_ref(),
            Member::Invalid { id, .. } => Some(id),
        }
    }
}

/// Runs one call: its id (`None` for a notification) and its reply.
pub(crate) async fn run(gateway: &Gateway, member: Member) -> (Option<Id>, Reply) {
    match member {
        Member::Invalid { id, error } => (Some(id), Err(error.into())),
        Member::Call {
            id,
            method,
            deadline,
            params,
            metadata,
        } => {
            let reply = gateway
                .call_with(&method, deadline, metadata, |registry, _| {
                    registry.dispatch_encoded(&method, &Json, &params)
                })
                .await;
            (id, reply)
        }
    }
}

/// The response object for `reply` if it is at most `limit` bytes; `None`
/// if it is larger, having held at most `limit` bytes of it. A result the
/// codec cannot encode (or whose `Serialize` panics) is answered as an
/// internal error instead.
pub(crate) fn encode_within(id: &Id, reply: &Reply, limit: usize) -> Option<BytesMut> {
    let Ok(value) = reply else {
        let out = encode(id, reply);
        return (out.len() <= limit).then_some(out);
    };
    // The codec writes the envelope (and so the id) as it does over TCP;
    // only the result is written here, with its size bounded as it is written.
    let mut out = encode(id, &Ok(Box::new(())));
    if !out.ends_with(b"null}") {
        return (out.len() <= limit).then_some(out);
    }
    out.truncate(out.len() - b"null}".len());
    let end = limit.saturating_sub(1);
    match write_json_within(&mut out, value, end) {
        Ok(()) => {
            out.put_u8(b'}');
            Some(out)
        }
        Err(Encoded::TooLarge) => None,
        Err(Encoded::Failed(error)) => {
            let out = encode(id, &Err(error.into()));
            (out.len() <= limit).then_some(out)
        }
    }
}

/// The response object for `reply`; a result the codec cannot encode (or
/// whose `Serialize` panics) is answered as an internal error instead.
pub(crate) fn encode(id: &Id, reply: &Reply) -> BytesMut {
    let mut out = BytesMut::new();
    let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Json.encode_response(&mut out, id, reply)
    }));
    let error = match encoded {
        Ok(Ok(())) => return out,
        Ok(Err(e)) => e,
        Err(panic) => Error::new(
            ErrorKind::Internal,
            format!(
                "encoding the result panicked: {}",
                rpc_core::service::panic_message(&*panic)
            ),
        ),
    };
    out.clear();
    let fault: Reply = Err(Fault::from(error));
    if Json.encode_response(&mut out, id, &fault).is_err() {
        out.clear();
        out.extend_from_slice(
            br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error"}}"#,
        );
    }
    out
}
