//! Integration tests of the rpc framework (the tests are in `tests/`), and
//! what test-only binaries serve: [`ledger`], the service of
//! `ledger-server`, whose journal proves that no non-idempotent call ran
//! twice.

pub mod ledger;
