//! Logs a peer cannot abuse: text a peer chose, escaped and cut short, and
//! warnings that repeat, written at most once a second with a count.
//!
//! ```text
//! WARN handshakes shed (max_pending_handshakes) suppressed=311     <- one line a second, not 312
//! WARN refused a hello codec="json\n2030-01-01T00:00:00Z  INFO…" (1000000 bytes)
//! ```
//!
//! Use [`peer_text`] for anything a peer sent (a codec name, a method name,
//! a header) that goes into a log line or an error message, and an
//! [`Every`] per call site for a warning a peer can trigger at will.

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How many bytes of a peer's text a log line or message shows.
pub const PEER_TEXT_BYTES: usize = 200;

/// `text` as a log line or an error message may show it: control
/// characters and quotes escaped (so it cannot forge a line), at most
/// [`PEER_TEXT_BYTES`] of it, and its full length when it was cut.
pub fn peer_text(text: &str) -> PeerText<'_> {
    PeerText(text)
}

/// [`peer_text`] for bytes that may not be UTF-8.
pub fn peer_bytes(bytes: &[u8]) -> PeerText<'_> {
    match std::str::from_utf8(bytes) {
        Ok(text) => PeerText(text),
        // Up to the first invalid byte; the rest is counted, not shown.
        Err(e) => PeerText(std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default()),
    }
}

/// See [`peer_text`].
#[derive(Clone, Copy)]
pub struct PeerText<'a>(&'a str);

impl fmt::Display for PeerText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut end = self.0.len().min(PEER_TEXT_BYTES);
        while !self.0.is_char_boundary(end) {
            end -= 1;
        }
        f.write_str("\"")?;
        for c in self.0[..end].chars() {
            fmt::Display::fmt(&c.escape_debug(), f)?;
        }
        f.write_str("\"")?;
        if end < self.0.len() {
            write!(f, "… ({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

impl fmt::Debug for PeerText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A warning written at most once per period, with how many were held
/// back since the last one. One `static` per call site:
///
/// ```
/// use rpc_transport::quiet::Every;
/// static SHED: Every = Every::second();
/// for _ in 0..1000 {
///     if let Some(suppressed) = SHED.ready() {
///         tracing::warn!(suppressed, "handshakes shed (max_pending_handshakes)");
///     }
/// }
/// ```
#[derive(Debug)]
pub struct Every {
    period_ms: u64,
    /// When the last line was written, in ms since [`epoch`], plus one (0: never).
    last: AtomicU64,
    /// Events held back since then.
    held: AtomicU64,
}

impl Every {
    /// One line a second.
    pub const fn second() -> Every {
        Every::period(Duration::from_secs(1))
    }

    /// One line per `period`.
    pub const fn period(period: Duration) -> Every {
        Every {
            period_ms: period.as_millis() as u64,
            last: AtomicU64::new(0),
            held: AtomicU64::new(0),
        }
    }

    /// Counts one event; `Some(held back)` if a line is due now (the
    /// caller writes it, with that count), `None` if this one is held back.
    pub fn ready(&self) -> Option<u64> {
        let now = epoch().elapsed().as_millis() as u64 + 1;
        let last = self.last.load(Ordering::Relaxed);
        if last != 0 && now < last + self.period_ms {
            self.held.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        // One caller wins the turn; the others count as held back.
        match self
            .last
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => Some(self.held.swap(0, Ordering::Relaxed)),
            Err(_) => {
                self.held.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }
}

/// The process's clock origin for [`Every`].
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_text_escapes_line_breaks_and_quotes() {
        let shown = peer_text("json\n2030-01-01T00:00:00Z  INFO \"forged\"").to_string();
        assert_eq!(shown, r#""json\n2030-01-01T00:00:00Z  INFO \"forged\"""#);
        assert!(!shown.contains('\n'));
    }

    #[test]
    fn peer_text_is_cut_at_200_bytes_on_a_char_boundary() {
        let long = "é".repeat(500_000);
        let shown = peer_text(&long).to_string();
        assert!(shown.len() < 2 * PEER_TEXT_BYTES + 40, "{}", shown.len());
        assert!(shown.ends_with("… (1000000 bytes)"), "{shown}");
    }

    #[test]
    fn peer_bytes_shows_up_to_the_first_invalid_byte() {
        assert_eq!(peer_bytes(b"ok\xffjunk").to_string(), r#""ok""#);
    }

    #[test]
    fn every_writes_once_per_period_and_counts_the_rest() {
        let every = Every::period(Duration::from_millis(200));
        assert_eq!(every.ready(), Some(0));
        for _ in 0..311 {
            assert_eq!(every.ready(), None);
        }
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(every.ready(), Some(311));
    }
}
