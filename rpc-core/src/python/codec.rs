//! The codecs a client names to call a Python server: `pickle` and
//! `py-json`, one per [`Form`] of the pattern.
//!
//! They follow [`Codec`]'s order, but the Python pattern has no request ids,
//! deadlines or batches: a request is `(bare_name, args, {})`, and a reply
//! answers the one request before it. So [`Codec::decode_response`] always
//! gives id 0, and the transport keeps one call in flight. Requests *from* a
//! Python client need the method's parameter names to bind keyword
//! arguments, so a server reads them with [`Call::read`](super::call::Call::read)
//! instead of [`Codec::decode_request`], which reports that.

use bytes::BytesMut;

use super::call::{self, Form};
use super::pickle::{self, Options};
use crate::codec::{Codec, Id, Inbound, Incoming, Json, OutRequest, Visit};
use crate::error::{Error, ErrorKind};
use crate::service::Reply;

/// The pickle form: `conn.send(pickle.dumps((name, args, kwargs)))`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pickle;

/// The JSON form: `conn.send(json.dumps((name, args, kwargs)))`.
#[derive(Clone, Copy, Debug, Default)]
pub struct PyJson;

macro_rules! python_codec {
    ($Codec:ty, $name:literal, $form:expr) => {
        impl Codec for $Codec {
            fn name(&self) -> &'static str {
                $name
            }

            fn encode_request(
                &self,
                dst: &mut BytesMut,
                request: &OutRequest<'_>,
            ) -> Result<(), Error> {
                dst.extend_from_slice(&call::request($form, request.method, request.args)?);
                Ok(())
            }

            fn decode_response(&self, frame: &[u8]) -> Result<Inbound, Error> {
                let outcome = call::read_reply($form, frame, &Options::default())?;
                Ok(Inbound::Response { id: 0, outcome })
            }

            fn decode_request<'a>(&self, _frame: &'a [u8]) -> Incoming<'a> {
                not_by_codec()
            }

            fn encode_response(
                &self,
                dst: &mut BytesMut,
                _id: &Id,
                reply: &Reply,
            ) -> Result<(), Error> {
                let frame = match reply {
                    Ok(result) => call::reply($form, &**result as &dyn erased_serde::Serialize)?,
                    Err(fault) => call::error_reply($form, fault.kind, &fault.message),
                };
                dst.extend_from_slice(&frame);
                Ok(())
            }

            /// The pattern has no batches, and nothing here reads one.
            fn encode_batch(&self, _dst: &mut BytesMut, _responses: &[BytesMut]) {}

            fn decode_value(&self, bytes: &[u8], visit: &mut Visit<'_>) -> Result<(), Error> {
                decode_value($form, bytes, visit)
            }
        }
    };
}

python_codec!(Pickle, "pickle", Form::Pickle);
python_codec!(PyJson, "py-json", Form::Json);

/// A reply's value: the inner pickle, or the JSON text.
fn decode_value(form: Form, bytes: &[u8], visit: &mut Visit<'_>) -> Result<(), Error> {
    if form == Form::Json {
        return Json.decode_value(bytes, visit);
    }
    let value = pickle::read_value(bytes, &Options::default())
        .map_err(|e| Error::new(ErrorKind::Parse, e.to_string()).with_source(e))?;
    visit(&mut <dyn erased_serde::Deserializer<'_>>::erase(value))
}

fn not_by_codec<'a>() -> Incoming<'a> {
    Incoming::Invalid {
        id: Id::Null,
        error: Error::new(
            ErrorKind::InvalidRequest,
            "a Python client's request binds keyword arguments by parameter name; \
             read it with rpc_core::python::call::Call::read",
        ),
    }
}
