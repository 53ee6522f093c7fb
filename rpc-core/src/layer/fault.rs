//! What a layer's error becomes for the caller: its own kind when it is one
//! the framework knows (an [`Error`], tower's `Elapsed` and `Overloaded`,
//! anywhere in the error's chain of sources), else an internal error
//! carrying its message.

use super::BoxError;
use crate::error::{Error, ErrorKind};
use crate::service::Fault;

/// The [`Error`] a layer's `error` reaches the caller as.
///
/// ```
/// # use rpc_core::layer::{BoxError, into_error};
/// # use rpc_core::{Error, ErrorKind};
/// let refused: BoxError = Error::new(ErrorKind::PermissionDenied, "read-only peer").into();
/// assert_eq!(into_error(refused).kind(), ErrorKind::PermissionDenied);
/// let shed: BoxError = tower::load_shed::error::Overloaded::new().into();
/// assert_eq!(into_error(shed).kind(), ErrorKind::Overloaded);
/// ```
pub fn into_error(error: BoxError) -> Error {
    let error = match error.downcast::<Error>() {
        Ok(error) => return *error,
        Err(other) => other,
    };
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&*error);
    while let Some(e) = cause {
        if let Some(e) = e.downcast_ref::<Error>() {
            return Error::new(e.kind(), e.message());
        }
        if e.is::<tower::timeout::error::Elapsed>() {
            return Error::new(
                ErrorKind::Timeout,
                "a timeout layer ended the call: it ran longer than the layer allows",
            );
        }
        if e.is::<tower::load_shed::error::Overloaded>() {
            return Error::new(
                ErrorKind::Overloaded,
                "the server is overloaded: a load-shedding layer refused the call, which did \
                 not run; try again later",
            );
        }
        cause = e.source();
    }
    Error::new(
        ErrorKind::Internal,
        format!("a middleware layer failed: {error}"),
    )
}

/// [`into_error`], as a reply's fault.
pub fn into_fault(error: BoxError) -> Fault {
    Fault::from(into_error(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapped(BoxError);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("wrapped")
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&*self.0)
        }
    }

    #[test]
    fn kinds_are_found_in_the_chain() {
        let elapsed: BoxError = Box::new(Wrapped(tower::timeout::error::Elapsed::new().into()));
        assert_eq!(into_error(elapsed).kind(), ErrorKind::Timeout);
        let inner = Error::new(ErrorKind::RateLimited, "slow down");
        let e = into_error(Box::new(Wrapped(inner.into())));
        assert_eq!(
            (e.kind(), e.message()),
            (ErrorKind::RateLimited, "slow down")
        );
    }

    #[test]
    fn anything_else_is_internal_with_its_message() {
        let e = into_error("the lookup service is down".into());
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert!(e.message().contains("the lookup service is down"), "{e}");
    }
}
