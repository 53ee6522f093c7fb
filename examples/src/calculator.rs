//! The calculator: `add`, `sub`, and `div` with a typed error.

use std::fmt;

use rpc_core::rpc_service;
use serde::{Deserialize, Serialize};

/// Why a division failed.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MathError {
    /// The divisor was zero.
    DivideByZero,
    /// The quotient does not fit in an `i64` (`i64::MIN / -1`).
    Overflow,
}

impl fmt::Display for MathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MathError::DivideByZero => f.write_str("division by zero"),
            MathError::Overflow => f.write_str("the quotient overflows i64"),
        }
    }
}

impl std::error::Error for MathError {}

/// Integer arithmetic.
#[rpc_service]
pub trait Calculator {
    /// Adds two numbers.
    #[rpc(idempotent)]
    async fn add(&self, x: i64, y: i64) -> i64;

    /// Subtracts `y` from `x`.
    #[rpc(idempotent)]
    async fn sub(&self, x: i64, y: i64) -> i64;

    /// Divides `x` by `y`, failing on a zero divisor or a quotient that overflows.
    async fn div(&self, x: i64, y: i64) -> Result<i64, MathError>;
}

/// The calculator's implementation.
#[derive(Clone, Copy, Debug, Default)]
pub struct Calc;

impl Calculator for Calc {
    async fn add(&self, x: i64, y: i64) -> i64 {
        x.wrapping_add(y)
    }

    async fn sub(&self, x: i64, y: i64) -> i64 {
        x.wrapping_sub(y)
    }

    async fn div(&self, x: i64, y: i64) -> Result<i64, MathError> {
        match y {
            0 => Err(MathError::DivideByZero),
            // `checked_div` is `None` for a zero divisor and for `i64::MIN / -1`.
            _ => x.checked_div(y).ok_or(MathError::Overflow),
        }
    }
}
