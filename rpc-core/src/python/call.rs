//! The request shape of the Python pattern, `(name, args, kwargs)`, and its
//! replies, for both sides: [`Call::read`] and [`reply`]/[`error_reply`]
//! serve a Python client; [`request`] and [`read_reply`] call a Python server.
//!
//! A reply goes back in the form its request came in ([`Form`]). For a
//! JSON client an error is the object
//!
//! ```text
//! {"error": {"type": "AttributeError", "message": "unknown method `mul`; known methods: …"}}
//! ```
//!
//! where `type` is the Python exception class of the error's kind
//! ([`ErrorKind::python_exception`]). For a pickle client it is an instance
//! of that class, pickled, which the pattern's proxy `raise`s.

use std::ops::Range;

use serde::Deserialize;

use super::pickle::{self, Decoded, Options};
use super::{PyValue, to_value, write, write_exception};
use crate::client::WireFault;
use crate::error::{Error, ErrorKind};
use crate::service::MethodInfo;

/// How a Python client wrapped its request; its reply is wrapped the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// `conn.send(pickle.dumps(call))`: a pickle inside a pickled `bytes`.
    Pickle,
    /// `conn.send(json.dumps(call))`: JSON text inside a pickled `str`.
    Json,
    /// `conn.send(call)`: the call tuple, pickled once.
    Plain,
}

/// One call from a Python client.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// How the request was wrapped.
    pub form: Form,
    /// The method name as sent (`add`, or `Calculator.add`).
    pub method: String,
    /// Positional arguments.
    pub args: Vec<PyValue>,
    /// Keyword arguments, in the order sent.
    pub kwargs: Vec<(String, PyValue)>,
}

/// A request that could not be read.
#[derive(Debug)]
pub struct Refusal {
    /// The form to answer in, as far as it was recognised.
    pub form: Form,
    /// What is wrong.
    pub error: Error,
    /// Whether the connection must close: the bytes could not be read as
    /// plain data (unsafe or malformed), so nothing after them is trusted.
    pub close: bool,
}

impl Call {
    /// Reads a Python client's request frame.
    pub fn read(frame: &[u8], options: &Options) -> Result<Call, Refusal> {
        let refuse = |form, close, error| Refusal { form, error, close };
        let unreadable = |form| move |e: pickle::PickleError| refuse(form, true, parse_error(e));
        let (form, value) =
            match pickle::read_value(frame, options).map_err(unreadable(Form::Plain))? {
                PyValue::Bytes(inner) => {
                    let value =
                        pickle::read_value(&inner, options).map_err(unreadable(Form::Pickle))?;
                    (Form::Pickle, value)
                }
                PyValue::Str(text) => match serde_json::from_str(&text) {
                    Ok(json) => (Form::Json, PyValue::from_json(json)),
                    Err(e) => {
                        let why = format!("the request is not JSON text: {e}");
                        return Err(refuse(Form::Json, false, Error::new(ErrorKind::Parse, why)));
                    }
                },
                other => (Form::Plain, other),
            };
        Call::from_value(form, value).map_err(|error| refuse(form, false, error))
    }

    fn from_value(form: Form, value: PyValue) -> Result<Call, Error> {
        let shape_error = |found: &PyValue| {
            Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "a Python request is a tuple (name: str, args: tuple, kwargs: dict), not {found}"
                ),
            )
        };
        let (PyValue::Tuple(parts) | PyValue::List(parts)) = &value else {
            return Err(shape_error(&value));
        };
        let [
            PyValue::Str(method),
            PyValue::Tuple(args) | PyValue::List(args),
            PyValue::Dict(kwargs),
        ] = &parts[..]
        else {
            return Err(shape_error(&value));
        };
        let kwargs = kwargs
            .iter()
            .map(|(k, v)| match k {
                PyValue::Str(k) => Ok((k.clone(), v.clone())),
                other => Err(shape_error(other)),
            })
            .collect::<Result<_, _>>()?;
        Ok(Call {
            form,
            method: method.clone(),
            args: args.clone(),
            kwargs,
        })
    }

    /// The arguments as a dict keyed by `method`'s parameter names, for the
    /// method's argument struct to read: positional ones in order, then
    /// keyword ones, as Python binds them. A missing argument is left for
    /// the argument struct to report.
    pub fn params(self, method: &MethodInfo) -> Result<PyValue, Error> {
        let names: Vec<&str> = method.params.iter().map(|p| p.name).collect();
        let bad = |why: String| Error::invalid_params(&self.method, why);
        if self.args.len() > names.len() {
            return Err(bad(format!(
                "it takes {} positional arguments ({}) but {} were given",
                names.len(),
                names.join(", "),
                self.args.len()
            )));
        }
        let mut bound: Vec<(PyValue, PyValue)> = names
            .iter()
            .zip(self.args.iter().cloned())
            .map(|(n, v)| (PyValue::Str((*n).into()), v))
            .collect();
        for (name, value) in &self.kwargs {
            let Some(i) = names.iter().position(|n| n == name) else {
                return Err(bad(format!(
                    "unexpected keyword argument `{name}`; the parameters are {}",
                    names.join(", ")
                )));
            };
            if i < self.args.len() || self.kwargs.iter().filter(|(k, _)| k == name).count() > 1 {
                return Err(bad(format!("multiple values for argument `{name}`")));
            }
            bound.push((PyValue::Str(name.clone()), value.clone()));
        }
        Ok(PyValue::Dict(bound))
    }
}

fn parse_error(e: pickle::PickleError) -> Error {
    Error::new(ErrorKind::Parse, e.to_string()).with_source(e)
}

/// The reply frame for a successful call.
pub fn reply(form: Form, result: &dyn erased_serde::Serialize) -> Result<Vec<u8>, Error> {
    let encode_error = |e: &dyn std::fmt::Display| {
        Error::new(
            ErrorKind::Internal,
            format!("the result has no Python form: {e}"),
        )
    };
    Ok(match form {
        Form::Json => {
            let text = serde_json::to_string(result).map_err(|e| encode_error(&e))?;
            write(&PyValue::Str(text))
        }
        Form::Pickle | Form::Plain => {
            let value = to_value(result).map_err(|e| encode_error(&e))?;
            wrap(form, write(&value))
        }
    })
}

/// The reply frame for a failed call: an exception of the kind's Python
/// class carrying `message` (pickle), or the JSON error object.
pub fn error_reply(form: Form, kind: ErrorKind, message: &str) -> Vec<u8> {
    let class = kind.python_exception();
    match form {
        Form::Json => {
            let body = serde_json::json!({"error": {"type": class, "message": message}});
            write(&PyValue::Str(body.to_string()))
        }
        Form::Pickle | Form::Plain => {
            // The one class in the table that `builtins` does not have.
            let module = match class {
                "AuthenticationError" => "multiprocessing",
                _ => "builtins",
            };
            wrap(form, write_exception(module, class, message))
        }
    }
}

fn wrap(form: Form, pickle: Vec<u8>) -> Vec<u8> {
    match form {
        Form::Pickle => write(&PyValue::Bytes(pickle)),
        _ => pickle,
    }
}

/// A request frame for a Python server: `(bare_name, args, {})`, the
/// arguments positionally from the fields of the argument struct `args`.
pub fn request(
    form: Form,
    method: &str,
    args: &dyn erased_serde::Serialize,
) -> Result<Vec<u8>, Error> {
    let bare = method.rsplit('.').next().unwrap_or(method);
    let args = match to_value(args) {
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
            let text = serde_json::to_string(&call)
                .map_err(|e| Error::new(ErrorKind::InvalidParams, e.to_string()))?;
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
}
