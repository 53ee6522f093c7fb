//! Services used by the example binaries, the integration tests and the
//! benchmark: a calculator and the key-value store of the Python XML-RPC
//! recipe.
//!
//! The binaries (`cargo run -p examples --bin NAME`):
//!
//! | binary | what it shows |
//! |---|---|
//! | `demo` | server and client in one process: add/sub with bincode, then JSON, a typed error, a rejected wrong key |
//! | `calc-server --config FILE` | the calculator served as the `[server]` table says; `--limit-rps N` and `--admin-token TOKEN` add [middleware] |
//! | `calc-client --config FILE` | prints `add(2, 3) = 5` and `sub(2, 3) = -1` |
//! | `kv-server --config FILE` | the key-value store served as the `[server]` table says; the same [middleware] flags |
//! | `kv-watch --config FILE --prefix P` | prints `watching P`, then every change under `P` (`set KEY = VALUE`, `delete KEY`) until Ctrl-C |
//! | `rpc-bench server\|client …` | the framework under `../shared/peerbench`'s workload and command line (codec `bincode-tls`: over TLS) |

pub mod bench;
pub mod calculator;
pub mod cli;
pub mod kv;
pub mod middleware;
