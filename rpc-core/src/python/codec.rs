//! Calling a Python server: the codecs a client names, `pickle` and
//! `py-json` (one per [`Form`] of the pattern), with the request frame they
//! send ([`request_frame`]) and the reply they read ([`read_reply`]).
//!
//! They follow [`Codec`]'s order, but the Python pattern has no request ids,
//! deadlines or batches: a request is `(bare_name, args, {})`, and a reply
//! answers the one request before it. So [`Codec::decode_response`] always
//! gives id 0, and the transport keeps one call in flight. Requests *from* a
//! Python client need the method's parameter names to bind keyword
//! arguments, so a server reads them with [`Call::read`](super::call::Call::read)
//! instead of [`Codec::decode_request`], which reports that.
//!
//! A reply that is a pickled exception (`module.Name` applied to its
//! arguments, maybe with a `BUILD` of its `__dict__`) is read as data into
//! a fault naming the class and the message, such as
//! `the Python server raised ZeroDivisionError: division by zero`; nothing
//! else naming a global is accepted. So is the JSON error object our server
//! sends Python JSON clients. A Python JSON server in the pattern sends
//! nothing at all when its method raises (`json.dumps(e)` fails in its
//! handler); see the transport's `PythonConnection` for how that ends.

use std::ops::Range;

use bytes::BytesMut;
use serde::Deserialize;

use super::call::{self, Form, parse_error, wrap};
use super::pickle::{self, Decoded, Options};
use super::{PyValue, to_json_value, to_value, write};
use crate::codec::{Codec, Id, Inbound, Incoming, Json, OutRequest, Visit};
use crate::error::WireFault;
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
                dst.extend_from_slice(&request_frame($form, request.method, request.args)?);
                Ok(())
            }

            fn decode_response(&self, frame: &[u8]) -> Result<Inbound, Error> {
                let outcome = read_reply($form, frame, &Options::default())?;
                Ok(Inbound::Response {
                    id: 0,
                    outcome,
                    stream: false,
                })
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
                    Err(fault) => call::error_reply_with(
                        $form,
                        fault.kind,
                        &fault.message,
                        fault
                            .data
                            .as_deref()
                            .map(|d| d as &dyn erased_serde::Serialize),
                    ),
                };
                dst.extend_from_slice(&frame);
                Ok(())
            }

            /// The pattern has no batches, and nothing here reads one.
            fn encode_batch(&self, _dst: &mut BytesMut, _responses: &[BytesMut]) {}

            /// The pattern has no cancel: a Python server answers every
            /// request, and the client closes the connection instead.
            fn encode_cancel(&self, _dst: &mut BytesMut, _id: u64) {}

            /// A Python client reads any frame as its reply, so a server
            /// never sends it a notice.
            fn encode_going_away(&self, _dst: &mut BytesMut, _reason: &str) {}

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
    let budget = crate::budget::for_message(bytes.len());
    let value = pickle::read_value(bytes, &Options::default().scaled_to(bytes.len()))
        .map_err(call::parse_error)?;
    crate::budget::within(budget, || {
        visit(&mut <dyn erased_serde::Deserializer<'_>>::erase(value))
    })
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

/// A request frame for a Python server: `(bare_name, args, {})`, the
/// arguments positionally from the fields of the argument struct `args`.
pub fn request_frame(
    form: Form,
    method: &str,
    args: &dyn erased_serde::Serialize,
) -> Result<Vec<u8>, Error> {
    let bare = method.rsplit('.').next().unwrap_or(method);
    // In JSON text a `Bytes` is base64, as any JSON peer reads it.
    let value = match form {
        Form::Json => to_json_value(args),
        _ => to_value(args),
    };
    let sent = args;
    let args = match value {
        Ok(PyValue::Dict(fields)) => fields.into_iter().map(|(_, v)| v).collect(),
        Ok(PyValue::Tuple(items) | PyValue::List(items)) => items,
        Ok(PyValue::None) => Vec::new(),
        Ok(other) => vec![other],
        Err(e) => {
            let why = format!("the arguments of `{method}` have no Python form: {e}");
            return Err(Error::new(ErrorKind::InvalidParams, why));
        }
    };
    let call = PyValue::Tuple(vec![
        PyValue::Str(bare.into()),
        PyValue::Tuple(args),
        PyValue::Dict(Vec::new()),
    ]);
    Ok(match form {
        Form::Json => {
            let (text, written) = crate::finite::to_string(&call)
                .map_err(|e| Error::new(ErrorKind::InvalidParams, e.to_string()))?;
            written.arguments_of(method, sent, "py-json")?;
            write(&PyValue::Str(text))
        }
        form => wrap(form, write(&call)),
    })
}

/// Reads a Python server's reply frame: where the reply's value lies in
/// `frame` (the inner pickle, or the JSON text), or the error it carries.
/// A pickled exception becomes an [`ErrorKind::Application`] fault naming
/// its class and message; so does the JSON error object.
pub fn read_reply(
    form: Form,
    frame: &[u8],
    options: &Options,
) -> Result<Result<Range<usize>, WireFault>, Error> {
    let outer = pickle::parse(frame, options).map_err(parse_error)?;
    let span = match (form, outer.decode().map_err(parse_error)?) {
        (Form::Pickle, Decoded::Value(PyValue::Bytes(_)))
        | (Form::Json, Decoded::Value(PyValue::Str(_))) => outer.span(),
        _ => None,
    };
    let Some(span) = span else {
        let (wrapper, module) = match form {
            Form::Json => ("str", "json"),
            _ => ("bytes", "pickle"),
        };
        let why = format!(
            "the Python server's reply is not a pickled {wrapper}; \
             it should answer with `conn.send({module}.dumps(result))`"
        );
        return Err(Error::new(ErrorKind::Protocol, why));
    };
    let fault = |class: String, message: String| WireFault {
        code: ErrorKind::Application.code(),
        message: format!("the Python server raised {class}: {message}"),
        data: None,
        not_run: false,
    };
    match form {
        Form::Json => Ok(
            match serde_json::from_slice::<JsonError>(&frame[span.clone()]) {
                Ok(JsonError { error }) => Err(fault(error.kind, error.message)),
                Err(_) => Ok(span),
            },
        ),
        _ => {
            let exceptions = Options {
                exceptions: true,
                ..options.clone()
            };
            let inner = pickle::parse(&frame[span.clone()], &exceptions).map_err(parse_error)?;
            Ok(match inner.decode().map_err(parse_error)? {
                Decoded::Exception(e) => Err(fault(e.class(), e.message())),
                Decoded::Value(_) => Ok(span),
            })
        }
    }
}

/// The JSON error object, exactly.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonError {
    error: JsonErrorBody,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonErrorBody {
    #[serde(rename = "type")]
    kind: String,
    message: String,
    /// A typed error's value ([`call::error_reply_with`]): not read back.
    #[serde(default, rename = "data")]
    _data: Option<serde::de::IgnoredAny>,
}
