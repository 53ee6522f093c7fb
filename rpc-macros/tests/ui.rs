//! The diagnostics of `#[rpc_service]`, one file per mistake under
//! `tests/ui/fail/` (each with the compiler output it must give, in `.stderr`),
//! and services that must compile under `tests/ui/pass/`.
//!
//! The `.stderr` files follow the compiler: after a toolchain update, run
//! `TRYBUILD=overwrite cargo test -p rpc-macros --test ui` and review the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
