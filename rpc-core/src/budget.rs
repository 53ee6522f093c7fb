//! The memory budget of a decoded value: what a peer's message may make the
//! server hold, charged for the value it finally becomes, before each piece
//! is allocated.
//!
//! The rule: a message of `n` bytes may decode into at most
//! [`for_message`]`(n)` = max([`MIN`], [`PER_BYTE`] × `n`) bytes of memory.
//! Measured on the example servers, the honest shapes stay well inside it
//! (a list of small records, `{"name":"alice","age":30}`, takes about 30
//! bytes a byte, the densest — one-byte bincode nulls — 32), while every
//! decoder's worst case is held below 64× the bytes sent, the frame itself
//! and the allocator's slack included. Over budget, the call is refused with
//! [`ErrorKind::OverBudget`] naming the budget; nothing else is affected.
//!
//! What is charged is the *final* value, at the size it really takes
//! ([`cost`]): each node of a [`crate::Value`] (a `serde_json::Value`, 32
//! bytes) in its array's buffer, charged by capacity as the array grows; the
//! text of a string, rounded up as the allocator does; an object's first
//! B-tree node (about 640 bytes, however few its entries) and about 112
//! bytes for each entry past the first node's. A pickle's memo references
//! and `DUP`s are charged every time they are copied into the value.
//!
//! Two ways to charge: [`within`] runs a decode with a budget on this
//! thread, which [`crate::Value`]'s `Deserialize` draws on (every codec's
//! [`decode_value`](crate::Codec::decode_value) does this); a [`Meter`] is
//! the same budget held by a reader that builds its own tree first (the
//! pickle, XML-RPC and query readers).

use std::cell::Cell;
use std::fmt;

use crate::error::{Error, ErrorKind};

/// Bytes of memory a message may decode into, per byte of it.
pub const PER_BYTE: usize = 32;

/// The budget of any message, however small.
pub const MIN: usize = 64 << 10;

/// The budget of a message of `len` bytes: max([`MIN`], [`PER_BYTE`] × `len`).
pub fn for_message(len: usize) -> usize {
    len.saturating_mul(PER_BYTE).max(MIN)
}

/// What pieces of a decoded value cost, in bytes of memory.
pub mod cost {
    /// One node of a dynamic value, inline in its parent.
    pub const NODE: usize = std::mem::size_of::<serde_json::Value>();

    /// An object's first entry: a whole B-tree leaf (eleven keys and values,
    /// and its header), allocated at once.
    pub const FIRST_ENTRY: usize = heap(11 * (std::mem::size_of::<String>() + NODE) + 16);

    /// An object's entries past the first leaf's eleven: a key and a node,
    /// doubled for B-tree nodes that are half full.
    pub const ENTRY: usize = 2 * (std::mem::size_of::<String>() + NODE);

    /// A heap block of `len` bytes as the allocator takes it: nothing for
    /// none, else 8 bytes of header, rounded up to 16, at least 32.
    pub const fn heap(len: usize) -> usize {
        if len == 0 {
            return 0;
        }
        let block = len.saturating_add(8 + 15) / 16 * 16;
        if block < 32 { 32 } else { block }
    }

    /// The `i`th entry (from 0) of an object.
    pub const fn entry(i: usize) -> usize {
        match i {
            0 => FIRST_ENTRY,
            1..=10 => 0,
            _ => ENTRY,
        }
    }

    /// An array buffer of `capacity` nodes.
    pub const fn array(capacity: usize) -> usize {
        heap(capacity.saturating_mul(NODE))
    }
}

/// A decode went over its budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverBudget {
    /// The budget, in bytes.
    pub limit: usize,
}

impl fmt::Display for OverBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the value would take more than {} bytes of memory, the decode budget \
             for its message ({PER_BYTE} bytes per byte received, at least {MIN})",
            self.limit
        )
    }
}

impl std::error::Error for OverBudget {}

impl From<OverBudget> for Error {
    fn from(e: OverBudget) -> Error {
        Error::new(ErrorKind::OverBudget, e.to_string())
    }
}

/// A budget being spent.
#[derive(Clone, Copy, Debug)]
pub struct Meter {
    left: usize,
    limit: usize,
}

impl Meter {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Meter {
        Meter { left: limit, limit }
    }

    /// Takes `bytes` from the budget, or fails leaving it as it was.
    pub fn charge(&mut self, bytes: usize) -> Result<(), OverBudget> {
        self.left = self
            .left
            .checked_sub(bytes)
            .ok_or(OverBudget { limit: self.limit })?;
        Ok(())
    }

    /// What is left.
    pub fn left(&self) -> usize {
        self.left
    }

    /// The budget this meter started with.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// This thread's budget, while [`within`] runs.
#[derive(Clone, Copy)]
struct Scope {
    meter: Meter,
    over: bool,
}

thread_local! {
    static SCOPE: Cell<Option<Scope>> = const { Cell::new(None) };
}

/// Runs `decode` with the values it decodes charged to a budget of `limit`
/// bytes (within an enclosing one, to what that has left, and charged to it
/// too). If a value went over, the result is an [`ErrorKind::OverBudget`]
/// error naming the budget, whatever error the decoder passed up.
pub fn within<R>(limit: usize, decode: impl FnOnce() -> Result<R, Error>) -> Result<R, Error> {
    /// Puts the enclosing scope back, charged, even if `decode` unwinds.
    struct Restore {
        outer: Option<Scope>,
        start: usize,
    }
    impl Drop for Restore {
        fn drop(&mut self) {
            let inner = SCOPE.get();
            let outer = self.outer.map(|mut outer| {
                let used = self.start - inner.map_or(self.start, |s| s.meter.left);
                outer.meter.left -= used.min(outer.meter.left);
                outer
            });
            SCOPE.set(outer);
        }
    }
    let outer = SCOPE.get();
    let start = outer.map_or(limit, |o| o.meter.left.min(limit));
    SCOPE.set(Some(Scope {
        meter: Meter { left: start, limit },
        over: false,
    }));
    let restore = Restore { outer, start };
    let result = decode();
    let over = SCOPE.get().is_some_and(|s| s.over);
    drop(restore);
    match result {
        Err(_) if over => Err(OverBudget { limit }.into()),
        result => result,
    }
}

/// Charges `bytes` to this thread's budget, if [`within`] set one.
pub(crate) fn charge(bytes: usize) -> Result<(), OverBudget> {
    let Some(mut scope) = SCOPE.get() else {
        return Ok(());
    };
    let charged = scope.meter.charge(bytes);
    scope.over |= charged.is_err();
    SCOPE.set(Some(scope));
    charged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_grows_with_the_message_from_a_floor() {
        assert_eq!(for_message(0), MIN);
        assert_eq!(for_message(1 << 20), 32 << 20);
        assert_eq!(for_message(usize::MAX), usize::MAX);
    }

    #[test]
    fn heap_blocks_round_as_the_allocator_does() {
        assert_eq!(cost::heap(0), 0);
        assert_eq!(cost::heap(1), 32);
        assert_eq!(cost::heap(24), 32);
        assert_eq!(cost::heap(25), 48);
    }

    #[test]
    fn a_nested_scope_spends_its_outer_budget_and_reports_its_own_limit() {
        let outcome = within(100, || {
            charge(60).unwrap();
            let inner = within(1000, || {
                charge(30)?;
                charge(30)?;
                Ok(())
            });
            assert_eq!(inner.unwrap_err().kind(), ErrorKind::OverBudget);
            charge(10)?;
            Ok(())
        });
        // 60 + 30 spent; 10 more fits exactly.
        outcome.unwrap();
        assert!(charge(usize::MAX).is_ok(), "no budget outside a scope");
    }
}
