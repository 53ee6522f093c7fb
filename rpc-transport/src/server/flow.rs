//! The server side of stream messages (protocol 2): items, ends and
//! credit from the client, its cancels of the streams the server sends,
//! pings, and the end of every stream when the shutdown grace is over.

use bytes::Bytes;
use rpc_core::client::WireFault;
use rpc_core::codec::{Flow, Id};
use rpc_core::{Error, ErrorKind};

use super::connection::ServerConnection;
use super::replies::Replies;
use crate::stream::send_end;

impl ServerConnection<'_> {
    /// Handles one stream message or ping; `Err` if it broke the rules
    /// (it has been answered).
    pub(super) fn flow(&self, flow: Flow, frame: &Bytes, replies: &Replies) -> Result<(), Error> {
        let Some(streams) = &replies.streams else {
            let error = Error::new(
                ErrorKind::InvalidRequest,
                "stream messages need protocol 2; this connection speaks protocol 1",
            );
            replies.queue(
                &Id::Null,
                Err(Error::new(error.kind(), error.message()).into()),
            );
            return Err(error);
        };
        match flow {
            Flow::Items { id, count, items } => {
                if let Err(error) = streams.items(id, frame, items, count) {
                    // Told to stop, and told why.
                    let codec = replies.codec;
                    replies.notify(|buf| codec.encode_cancel(buf, id));
                    replies.queue(
                        &Id::Null,
                        Err(Error::new(error.kind(), error.message()).into()),
                    );
                    return Err(error);
                }
            }
            Flow::End { id, outcome } => {
                streams.end(id, outcome.map_err(WireFault::into_error));
            }
            Flow::Credit { id, items, bytes } => streams.credit(id, items, bytes),
            Flow::Ping { nonce, pong: false } => {
                let codec = replies.codec;
                replies.notify(|buf| codec.encode_ping(buf, nonce, true));
            }
            Flow::Ping { pong: true, .. } => {}
            _ => {}
        }
        Ok(())
    }

    /// The client cancelled stream `id`, which the server sends: its
    /// producer is dropped at once.
    pub(super) fn cancel_stream(&self, id: &Id, replies: &Replies) {
        if let (Some(streams), Id::Num(id)) = (&replies.streams, id) {
            let why = Error::new(ErrorKind::Cancelled, "the client cancelled the stream");
            streams.stop_sending(*id, &why);
        }
    }

    /// The shutdown's grace is over: every stream ends, going away. The
    /// streams the server sends get an end saying so; the client is told
    /// to stop sending the others.
    pub(super) fn end_streams(&self, replies: &Replies) {
        let Some(streams) = &replies.streams else {
            return;
        };
        let why = Error::new(
            ErrorKind::ShuttingDown,
            "the server is shutting down; its grace period for streams is over",
        );
        let (sending, receiving) = streams.end_all(&why);
        for id in sending {
            send_end(replies, id, Err(&why));
        }
        let codec = replies.codec;
        for id in receiving {
            replies.notify(|buf| codec.encode_cancel(buf, id));
        }
    }
}
