//! Serving a Python client: its request `(name, args, kwargs)` read with
//! [`Call::read`] and bound to parameter names with [`Call::params`], and
//! its reply written with [`reply`] or [`error_reply`]. (Calling a Python
//! server is [`super::codec`].)
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
//!
//! A method's typed error (an [`ErrorKind::Application`] error) carries its
//! value too, as JSON-RPC and HTTP callers get it in the error's `data`:
//! the JSON object gains a `"data"` member, and the pickled exception an
//! attribute `data`, set as `pickle` restores any exception's attributes,
//! so a Python client can tell the variants apart:
//!
//! ```text
//! {"error": {"type": "RuntimeError", "message": "`div` failed: division by zero", "data": "DivideByZero"}}
//!
//! except RuntimeError as e:
//!     e.data      # 'DivideByZero'; str(e) and e.args[0] are the message
//! ```
//!
//! An attribute rather than a second argument, because a second argument
//! would change `str(e)` into the tuple of both.

use super::pickle::{self, Options};
use super::{PyValue, to_value, write, write_exception_with};
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
                // Read within the decode budget (half the pickle's): the
                // Python value made of it is about as large again.
                PyValue::Str(text) => match crate::budget::within(options.budget / 2, || {
                    serde_json::from_str::<crate::Value>(&text).map_err(|e| {
                        Error::new(
                            ErrorKind::Parse,
                            format!("the request is not JSON text: {e}"),
                        )
                    })
                }) {
                    Ok(json) => (Form::Json, PyValue::from_json(json.into_inner())),
                    Err(e) if e.kind() == ErrorKind::OverBudget => {
                        return Err(refuse(Form::Json, false, e));
                    }
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
        let shape_error = |found: String| {
            Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "a Python request is a tuple (name: str, args: tuple, kwargs: dict), not {found}"
                ),
            )
        };
        let parts = match value {
            PyValue::Tuple(parts) | PyValue::List(parts) if parts.len() == 3 => parts,
            PyValue::Tuple(parts) | PyValue::List(parts) => {
                return Err(shape_error(format!("{} items", parts.len())));
            }
            other => return Err(shape_error(format!("a {}", other.type_name()))),
        };
        let types: Vec<&str> = parts.iter().map(PyValue::type_name).collect();
        let found = || format!("({})", types.join(", "));
        let [method, args, kwargs] =
            <[PyValue; 3]>::try_from(parts).map_err(|_| shape_error(found()))?;
        let (
            PyValue::Str(method),
            PyValue::Tuple(args) | PyValue::List(args),
            PyValue::Dict(kwargs),
        ) = (method, args, kwargs)
        else {
            return Err(shape_error(found()));
        };
        let kwargs = kwargs
            .into_iter()
            .map(|(k, v)| match k {
                PyValue::Str(k) => Ok((k, v)),
                other => Err(shape_error(format!(
                    "a kwargs key of type {}",
                    other.type_name()
                ))),
            })
            .collect::<Result<_, _>>()?;
        Ok(Call {
            form,
            method,
            args,
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
        let mut given = vec![false; names.len()];
        given[..self.args.len()].fill(true);
        let mut bound: Vec<(PyValue, PyValue)> = names
            .iter()
            .zip(self.args)
            .map(|(n, v)| (PyValue::Str((*n).into()), v))
            .collect();
        for (name, value) in self.kwargs {
            let Some(i) = names.iter().position(|n| *n == name) else {
                return Err(bad(format!(
                    "unexpected keyword argument `{name}`; the parameters are {}",
                    names.join(", ")
                )));
            };
            if std::mem::replace(&mut given[i], true) {
                return Err(bad(format!("multiple values for argument `{name}`")));
            }
            bound.push((PyValue::Str(name), value));
        }
        Ok(PyValue::Dict(bound))
    }
}

/// A pickle that could not be read, as a framework error.
pub(super) fn parse_error(e: pickle::PickleError) -> Error {
    let kind = match e {
        pickle::PickleError::OverBudget { .. } => ErrorKind::OverBudget,
        _ => ErrorKind::Parse,
    };
    Error::new(kind, e.to_string()).with_source(e)
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
            let (text, written) = crate::finite::to_string(result).map_err(|e| encode_error(&e))?;
            written.result(result, "py-json")?;
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
    error_reply_with(form, kind, message, None)
}

/// The reply frame for a failed call with the method's typed error `data`
/// ([`Fault::data`](crate::service::Fault::data)), in the JSON form that
/// JSON-RPC and HTTP callers get as the error's `data`: for a pickle
/// client the exception with `data` as its attribute `e.data` (`e.args`
/// and `str(e)` stay the message), for a JSON client
/// `{"error": {"type": …, "message": …, "data": …}}`. Without `data`, or
/// if it has no JSON form, this is [`error_reply`].
pub fn error_reply_with(
    form: Form,
    kind: ErrorKind,
    message: &str,
    data: Option<&dyn erased_serde::Serialize>,
) -> Vec<u8> {
    let class = kind.python_exception();
    let data = data.and_then(|d| serde_json::to_value(d).ok());
    match form {
        Form::Json => {
            let mut body = serde_json::json!({"type": class, "message": message});
            if let Some(data) = data {
                body["data"] = data;
            }
            let body = serde_json::json!({ "error": body });
            write(&PyValue::Str(body.to_string()))
        }
        Form::Pickle | Form::Plain => {
            // The one class in the table that `builtins` does not have.
            let module = match class {
                "AuthenticationError" => "multiprocessing",
                _ => "builtins",
            };
            let attributes: Vec<_> = data
                .map(|d| ("data", PyValue::from_json(d)))
                .into_iter()
                .collect();
            wrap(
                form,
                write_exception_with(module, class, message, &attributes),
            )
        }
    }
}

/// `pickle` as the request or reply of `form` carries it.
pub(super) fn wrap(form: Form, pickle: Vec<u8>) -> Vec<u8> {
    match form {
        Form::Pickle => write(&PyValue::Bytes(pickle)),
        _ => pickle,
    }
}
