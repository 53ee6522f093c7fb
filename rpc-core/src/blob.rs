//! [`Bytes`]: a byte payload that crosses the wire without being copied or
//! encoded element by element.
//!
//! | codec | on the wire | decoding |
//! |---|---|---|
//! | bincode | length + the raw bytes | a slice of the received frame: no copy |
//! | JSON | a base64 string (standard alphabet, padded) | decoded from base64 |
//! | pickle (Python peers) | `bytes` | from `bytes` (or a base64 `str`) |
//! | XML-RPC | `<base64>` | from `<base64>` (or a base64 `<string>`) |
//!
//! serde alone writes a `Vec<u8>` as an array of numbers, one element at a
//! time (and `#[serde(with = …)]` is not allowed on a method's parameters),
//! so use `Bytes` for bulk data in a service's arguments and results.
//!
//! A `Bytes` decoded with bincode shares the frame it came in: keeping a
//! small one alive keeps its whole frame in memory. Copy it
//! (`Bytes::copy_from_slice`) to keep a little of a large frame.
//!
//! Sending need not copy either. A transport that encodes inside
//! [`splicing`] gets each `Bytes` of at least [`SPLICE_MIN`] bytes back by
//! reference, with the offset in its buffer where it belongs, and writes it
//! from there (`write_vectored`). A `Bytes` being serialized offers itself;
//! the codec's writer takes it when the format hands it that very slice to
//! write, as bincode does after the length, so the bytes on the wire are
//! exactly what a copy would have put there. On AMD CPUs, a payload whose
//! address would make the kernel's own copy slow is copied instead (see
//! [`splicing`]), except over TLS, where no kernel copies from it
//! ([`splicing_anywhere`]).
//! (JSON writes base64: nothing to splice. The crate's JSON writer writes
//! it in place instead, without the escaping scan: see `blob/json_text.rs`.)

use std::cell::{Cell, RefCell};
use std::fmt;
use std::ops::Deref;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::BytesMut;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod ask_bytes;
pub(crate) mod json_text;

thread_local! {
    /// The frame being decoded on this thread, which borrowed byte slices
    /// may be sliced from.
    static FRAME: RefCell<Option<bytes::Bytes>> = const { RefCell::new(None) };

    /// While a transport encodes inside [`splicing`]: where that encoding
    /// stands. A `Cell`, so that small frames pay next to nothing.
    static SCOPE: Cell<Option<Scope>> = const { Cell::new(None) };

    /// How many payloads are in [`SPLICES`]: read without borrowing it.
    static SPLICED: Cell<usize> = const { Cell::new(0) };

    /// The payloads spliced by the open encodings (outermost first) and the
    /// one on offer; touched only by payloads of [`SPLICE_MIN`] bytes or more.
    static SPLICES: RefCell<Splices> = const {
        RefCell::new(Splices { spliced: Vec::new(), offered: None })
    };
}

/// An open [`splicing`] encoding.
#[derive(Clone, Copy)]
struct Scope {
    /// The buffer it encodes into: only a writer appending to this very
    /// buffer splices (a `Serialize` that encodes into a scratch buffer of
    /// its own gets copies).
    buf: *const BytesMut,
    /// Bytes of the write before the buffer's first byte that are not in
    /// the buffer (payloads spliced before this encoding); `None` when the
    /// kernel does not copy from the payload (see [`splicing_anywhere`]).
    outside: Option<usize>,
    /// Where this encoding's payloads start in [`Splices::spliced`].
    first: usize,
}

struct Splices {
    spliced: Vec<Spliced>,
    offered: Option<bytes::Bytes>,
}

/// The smallest payload [`splicing`] leaves out of the buffer: below it,
/// a copy costs less than one more piece for the kernel to gather.
pub const SPLICE_MIN: usize = 16 * 1024;

/// A payload left out of an encoded buffer: `bytes` belong at offset `at`
/// of it, before the byte that is there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spliced {
    /// The offset in the buffer the codec wrote to.
    pub at: usize,
    /// The payload, shared, not copied.
    pub bytes: bytes::Bytes,
}

/// Runs `encode` on `buf`, collecting rather than copying into `buf` every
/// [`Bytes`] of at least [`SPLICE_MIN`] bytes that the codec writes there
/// through a splicing writer; returns them in buffer order. A transport
/// wraps its encoding in it and writes each payload in its place.
///
/// `outside` counts the bytes already spliced out of the same buffer: the
/// buffer is assumed to be written from its start, payloads in their
/// places, so a payload's position in that write is its offset plus what
/// was spliced before it. On AMD CPUs that position decides whether a
/// payload is spliced at all: there the kernel copies from a source that
/// sits 1 to 15 bytes behind its destination (mod 64) at half speed, and
/// such a payload is copied into the buffer instead. Other CPUs splice
/// every large payload.
pub fn splicing<R>(
    buf: &mut BytesMut,
    outside: usize,
    encode: impl FnOnce(&mut BytesMut) -> R,
) -> (R, Vec<Spliced>) {
    splice_in(buf, minds_alignment().then_some(outside), encode)
}

/// Whether the kernel's copy from a socket writer's memory runs at half
/// speed for some alignments on this CPU, so that [`splicing`] minds
/// where a payload lands: AMD's (and Hygon's, the same cores) do. On an
/// Intel Xeon, splicing every payload regardless took 12% less client CPU
/// a call in `rpc-bench`'s 1 MiB echo (whose requests fall in the window),
/// and no more on the server. Read once.
pub fn minds_alignment() -> bool {
    static SLOW: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SLOW.get_or_init(|| cpu_vendor().is_some_and(|vendor| slow_vendor(&vendor)))
}

/// The CPU's vendor string (`cpuid` leaf 0), where there is one.
#[cfg(target_arch = "x86_64")]
fn cpu_vendor() -> Option<[u8; 12]> {
    let id = std::arch::x86_64::__cpuid(0);
    let mut vendor = [0u8; 12];
    for (part, register) in vendor.chunks_exact_mut(4).zip([id.ebx, id.edx, id.ecx]) {
        part.copy_from_slice(&register.to_le_bytes());
    }
    Some(vendor)
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_vendor() -> Option<[u8; 12]> {
    None
}

fn slow_vendor(vendor: &[u8; 12]) -> bool {
    vendor == b"AuthenticAMD" || vendor == b"HygonGenuine"
}

/// [`splicing`] for a write the kernel does not copy from the payload:
/// every large payload is spliced wherever it lies. Over TLS, rustls copies
/// each payload into its records in user space (alignment costs nothing
/// there), so a copy into the buffer would only add one.
pub fn splicing_anywhere<R>(
    buf: &mut BytesMut,
    encode: impl FnOnce(&mut BytesMut) -> R,
) -> (R, Vec<Spliced>) {
    splice_in(buf, None, encode)
}

fn splice_in<R>(
    buf: &mut BytesMut,
    outside: Option<usize>,
    encode: impl FnOnce(&mut BytesMut) -> R,
) -> (R, Vec<Spliced>) {
    /// Closes the scope however `encode` ends, a panic included.
    struct Close {
        outer: Option<Scope>,
        first: usize,
    }
    impl Drop for Close {
        fn drop(&mut self) {
            SCOPE.set(self.outer);
            if SPLICED.get() > self.first {
                SPLICES.with_borrow_mut(|s| s.spliced.truncate(self.first));
                SPLICED.set(self.first);
            }
        }
    }
    let first = SPLICED.get();
    let scope = Scope {
        buf: &raw const *buf,
        outside,
        first,
    };
    let close = Close {
        outer: SCOPE.replace(Some(scope)),
        first,
    };
    let out = encode(buf);
    let spliced = if SPLICED.get() > first {
        SPLICED.set(first);
        SPLICES.with_borrow_mut(|s| s.spliced.split_off(first))
    } else {
        Vec::new()
    };
    drop(close);
    (out, spliced)
}

/// For a codec's writer about to append `buf` to `dst`: true if `buf` is
/// the payload on offer and was spliced there (the writer then appends
/// nothing), false if the writer must copy it.
#[inline]
pub(crate) fn splice_offered(dst: &BytesMut, buf: &[u8]) -> bool {
    buf.len() >= SPLICE_MIN && splice_large(dst, buf)
}

fn splice_large(dst: &BytesMut, buf: &[u8]) -> bool {
    let Some(scope) = SCOPE.get().filter(|s| std::ptr::eq(s.buf, dst)) else {
        return false;
    };
    let at = dst.len();
    SPLICES.with_borrow_mut(|s| {
        let same = |b: &bytes::Bytes| b.as_ptr() == buf.as_ptr() && b.len() == buf.len();
        if !s.offered.as_ref().is_some_and(same) {
            return false;
        }
        if let Some(outside) = scope.outside {
            let before: usize = s.spliced[scope.first..].iter().map(|p| p.bytes.len()).sum();
            if !splices_fast(outside + before + at, buf.as_ptr()) {
                return false;
            }
        }
        let bytes = s.offered.take().expect("checked above");
        s.spliced.push(Spliced { at, bytes });
        SPLICED.set(s.spliced.len());
        true
    })
}

/// Whether the kernel copies a payload at `src` quickly when it is
/// written `position` bytes into a write, on a CPU where that depends on
/// alignment ([`minds_alignment`]).
///
/// The kernel copies what a socket is given into its own pages with
/// `rep movsb`. On AMD Zen CPUs (with FSRM) that copy runs at about half
/// speed when the destination lies 1 to 15 bytes past the source modulo
/// 64 (measured on loopback, 1 MiB: 530–630 µs of sender CPU per message
/// against 250–350 µs at any other offset). A request-reply exchange
/// starts each write at the start of a kernel page, so the destination
/// is `position` modulo 64: a payload in that window is copied into the
/// buffer instead, where it costs one `memmove` and the kernel's copy
/// from the buffer is fast again. Elsewhere the check costs a copy at
/// worst, never a wrong byte.
fn splices_fast(position: usize, src: *const u8) -> bool {
    let ahead = position.wrapping_sub(src as usize) % 64;
    !(1..16).contains(&ahead)
}

/// Offers `bytes`, while it is being serialized, to a splicing writer.
struct Offer(bool);

impl Offer {
    fn new(bytes: &bytes::Bytes) -> Offer {
        let open = bytes.len() >= SPLICE_MIN && SCOPE.get().is_some();
        if open {
            SPLICES.with_borrow_mut(|s| s.offered = Some(bytes.clone()));
        }
        Offer(open)
    }
}

impl Drop for Offer {
    fn drop(&mut self) {
        if self.0 {
            SPLICES.with_borrow_mut(|s| s.offered = None);
        }
    }
}

/// A cheaply cloneable byte buffer for arguments and results.
///
/// ```
/// let payload = rpc_core::Bytes::from(vec![1u8, 2, 3]);
/// assert_eq!(&payload[..], &[1, 2, 3]);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bytes(pub bytes::Bytes);

impl Bytes {
    /// The name of the newtype struct a `Bytes` serializes as. A
    /// human-readable serializer that has a bytes type of its own (pickle's
    /// `bytes`, XML-RPC's `<base64>`) looks for it in
    /// `serialize_newtype_struct` and serializes the inner value with a
    /// serializer that is not human-readable, which gets
    /// `serialize_bytes`; any other serializer sees the inner value alone.
    pub const SERDE_NAME: &'static str = "$rpc_core::Bytes";

    /// A copy of `data`.
    pub fn copy_from_slice(data: &[u8]) -> Bytes {
        Bytes(bytes::Bytes::copy_from_slice(data))
    }

    /// The inner `bytes::Bytes`.
    pub fn into_inner(self) -> bytes::Bytes {
        self.0
    }
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl<T: Into<bytes::Bytes>> From<T> for Bytes {
    fn from(b: T) -> Bytes {
        Bytes(b.into())
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

/// Serialized as the newtype struct [`Bytes::SERDE_NAME`] around the
/// payload, so that a format with bytes of its own can tell a `Bytes` from a
/// string: the payload is a base64 string to a human-readable serializer
/// and bytes to any other. JSON and bincode see through newtype structs,
/// so their wire form is the base64 string or the length and the bytes.
impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct(Bytes::SERDE_NAME, &Payload(&self.0))
    }
}

/// The inside of a serialized [`Bytes`].
struct Payload<'a>(&'a bytes::Bytes);

impl Serialize for Payload<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&STANDARD.encode(self.0))
        } else {
            ask_bytes::hand_over(self.0);
            let _offer = Offer::new(self.0);
            s.serialize_bytes(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        if d.is_human_readable() {
            d.deserialize_str(BytesVisitor)
        } else {
            d.deserialize_bytes(BytesVisitor)
        }
    }
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes, or a base64 string")
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Bytes, E> {
        Ok(slice_of_frame(v).unwrap_or_else(|| Bytes::copy_from_slice(v)))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
        Ok(Bytes::copy_from_slice(v))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
        Ok(Bytes::from(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Bytes, E> {
        STANDARD
            .decode(v)
            .map(Bytes::from)
            .map_err(|e| E::custom(format_args!("invalid base64 bytes: {e}")))
    }
}

/// `v` as a slice of the frame being decoded, when it lies inside it.
fn slice_of_frame(v: &[u8]) -> Option<Bytes> {
    FRAME.with(|frame| {
        let frame = frame.borrow();
        let frame = frame.as_ref()?;
        let (start, end) = (
            frame.as_ptr() as usize,
            frame.as_ptr() as usize + frame.len(),
        );
        let (v_start, v_end) = (v.as_ptr() as usize, v.as_ptr() as usize + v.len());
        (start <= v_start && v_end <= end)
            .then(|| Bytes(frame.slice(v_start - start..v_end - start)))
    })
}

/// Runs `decode` with `frame` as the buffer that decoded [`Bytes`] may
/// share: a transport wraps the decoding of values read from `frame` in it.
pub fn decoding_from<R>(frame: &bytes::Bytes, decode: impl FnOnce() -> R) -> R {
    struct Reset(Option<bytes::Bytes>);
    impl Drop for Reset {
        fn drop(&mut self) {
            FRAME.with(|f| *f.borrow_mut() = self.0.take());
        }
    }
    let outer = FRAME.with(|f| f.borrow_mut().replace(frame.clone()));
    let _reset = Reset(outer);
    decode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{self, Bincode, Codec, Json};

    fn encoded(codec: &dyn crate::Codec, b: &Bytes) -> bytes::Bytes {
        let mut buf = bytes::BytesMut::new();
        let reply: crate::service::Reply = Ok(Box::new(b.clone()));
        codec
            .encode_response(&mut buf, &codec::Id::Num(7), &reply)
            .unwrap();
        buf.freeze()
    }

    #[test]
    fn bincode_bytes_are_sliced_from_the_frame() {
        let payload = Bytes::from(vec![0x5a; 4096]);
        let frame = encoded(&Bincode, &payload);
        let codec::Inbound::Response { outcome, .. } = Bincode.decode_response(&frame).unwrap()
        else {
            panic!("not a response")
        };
        let back: Bytes =
            decoding_from(&frame, || codec::decode(&Bincode, &frame[outcome.unwrap()])).unwrap();
        assert_eq!(back, payload);
        let inside = frame.as_ptr() as usize..frame.as_ptr() as usize + frame.len();
        assert!(
            inside.contains(&(back.as_ptr() as usize)),
            "not a slice of the frame"
        );
    }

    /// A `len`-byte payload whose first byte, written `position` bytes
    /// into a write, lands `ahead` bytes (mod 64) past its address.
    fn placed(len: usize, position: usize, ahead: usize) -> Bytes {
        let block = bytes::Bytes::from(vec![0x3c; len + 64]);
        let base = block.as_ptr() as usize;
        let skip = (0..64)
            .find(|k| position.wrapping_sub(base + k) % 64 == ahead)
            .unwrap();
        Bytes(block.slice(skip..skip + len))
    }

    /// Encodes a response carrying `b` as [`splicing`] does on a CPU that
    /// minds alignment (with `outside` bytes spliced before), returning the
    /// buffer and what was spliced.
    fn spliced(codec: &dyn crate::Codec, b: &Bytes, outside: usize) -> (Vec<u8>, Vec<Spliced>) {
        let mut buf = bytes::BytesMut::new();
        let reply: crate::service::Reply = Ok(Box::new(b.clone()));
        let (done, spliced) = splice_in(&mut buf, Some(outside), |buf| {
            codec.encode_response(buf, &codec::Id::Num(7), &reply)
        });
        done.unwrap();
        (buf.to_vec(), spliced)
    }

    /// Where the payload starts in a bincode response for id 7 carrying
    /// `len` bytes.
    fn payload_at(len: usize) -> usize {
        encoded(&Bincode, &Bytes::from(vec![0; len])).len() - len
    }

    #[test]
    fn a_large_payload_is_spliced_and_fills_exactly_the_bytes_a_copy_would() {
        let len = SPLICE_MIN;
        let payload = placed(len, payload_at(len), 0);
        let (buf, spliced) = spliced(&Bincode, &payload, 0);
        assert_eq!(spliced.len(), 1, "not spliced");
        let Spliced { at, bytes } = &spliced[0];
        assert_eq!(bytes.as_ptr(), payload.as_ptr(), "the payload was copied");
        let mut whole = buf.clone();
        whole.splice(at..at, bytes.iter().copied());
        assert_eq!(whole, &encoded(&Bincode, &payload)[..]);
        assert_eq!(buf.len(), whole.len() - len);
    }

    #[test]
    fn a_payload_the_kernel_would_copy_slowly_is_copied_into_the_buffer() {
        let len = SPLICE_MIN;
        for ahead in [1, 9, 15] {
            let payload = placed(len, payload_at(len), ahead);
            let (buf, spliced) = spliced(&Bincode, &payload, 0);
            assert!(spliced.is_empty(), "spliced at {ahead} bytes ahead");
            assert_eq!(buf, &encoded(&Bincode, &payload)[..]);
        }
        for ahead in [0, 16, 40, 63] {
            let payload = placed(len, payload_at(len), ahead);
            assert_eq!(spliced(&Bincode, &payload, 0).1.len(), 1, "{ahead} ahead");
        }
    }

    #[test]
    fn only_amd_cpus_mind_where_a_payload_lands() {
        assert!(slow_vendor(b"AuthenticAMD"));
        assert!(slow_vendor(b"HygonGenuine"));
        assert!(!slow_vendor(b"GenuineIntel"));
        // On this machine, `splicing` splices a payload in the window
        // exactly when the CPU does not mind.
        let len = SPLICE_MIN;
        let payload = placed(len, payload_at(len), 9);
        let reply: crate::service::Reply = Ok(Box::new(payload.clone()));
        let mut buf = bytes::BytesMut::new();
        let (done, spliced) = splicing(&mut buf, 0, |buf| {
            Bincode.encode_response(buf, &codec::Id::Num(7), &reply)
        });
        done.unwrap();
        assert_eq!(spliced.len(), usize::from(!minds_alignment()));
    }

    #[test]
    fn splicing_anywhere_splices_a_payload_the_kernel_would_copy_slowly() {
        let len = SPLICE_MIN;
        for ahead in [0, 1, 9, 15, 40] {
            let payload = placed(len, payload_at(len), ahead);
            let reply: crate::service::Reply = Ok(Box::new(payload.clone()));
            let mut buf = bytes::BytesMut::new();
            let (done, spliced) = splicing_anywhere(&mut buf, |buf| {
                Bincode.encode_response(buf, &codec::Id::Num(7), &reply)
            });
            done.unwrap();
            assert_eq!(spliced.len(), 1, "copied at {ahead} bytes ahead");
            assert_eq!(spliced[0].bytes.as_ptr(), payload.as_ptr());
        }
    }

    #[test]
    fn bytes_spliced_earlier_count_toward_a_payloads_position() {
        let len = SPLICE_MIN;
        // Fast where the buffer starts the write, slow 8 bytes later.
        let payload = placed(len, payload_at(len), 0);
        assert_eq!(spliced(&Bincode, &payload, 0).1.len(), 1);
        assert!(spliced(&Bincode, &payload, 8).1.is_empty());
    }

    #[test]
    fn an_encoding_that_panics_leaves_nothing_spliced_behind() {
        let len = SPLICE_MIN;
        let payload = placed(len, payload_at(len), 0);
        let panicked = std::panic::catch_unwind(|| {
            splicing(&mut bytes::BytesMut::new(), 0, |buf| {
                let reply: crate::service::Reply = Ok(Box::new(payload.clone()));
                Bincode
                    .encode_response(buf, &codec::Id::Num(7), &reply)
                    .unwrap();
                assert_eq!(SPLICED.get(), 1, "spliced before the panic");
                panic!("a Serialize that panics after the payload");
            })
        });
        assert!(panicked.is_err());
        assert!(SCOPE.get().is_none());
        assert_eq!(SPLICED.get(), 0);
        assert!(SPLICES.with_borrow(|s| s.spliced.is_empty() && s.offered.is_none()));
        // And the next encoding splices as usual.
        assert_eq!(spliced(&Bincode, &payload, 0).1.len(), 1);
    }

    #[test]
    fn a_payload_encoded_into_another_buffer_is_copied_there() {
        // A `Serialize` that encodes into a scratch buffer of its own while
        // the transport splices must get the payload's bytes in it.
        let len = SPLICE_MIN;
        let payload = placed(len, payload_at(len), 0);
        let mut scratch = bytes::BytesMut::new();
        let ((), spliced) = splicing(&mut bytes::BytesMut::new(), 0, |_| {
            let reply: crate::service::Reply = Ok(Box::new(payload.clone()));
            Bincode
                .encode_response(&mut scratch, &codec::Id::Num(7), &reply)
                .unwrap();
        });
        assert!(spliced.is_empty());
        assert_eq!(&scratch[..], &encoded(&Bincode, &payload)[..]);
    }

    #[test]
    fn small_payloads_json_and_plain_encoding_copy() {
        let small = placed(SPLICE_MIN - 1, payload_at(SPLICE_MIN - 1), 0);
        assert!(spliced(&Bincode, &small, 0).1.is_empty());
        let large = placed(SPLICE_MIN, payload_at(SPLICE_MIN), 0);
        assert!(spliced(&Json, &large, 0).1.is_empty());
        // Outside `splicing` nothing is left out.
        assert_eq!(
            encoded(&Bincode, &large).len(),
            payload_at(SPLICE_MIN) + SPLICE_MIN
        );
    }

    #[test]
    fn json_bytes_are_base64() {
        let frame = encoded(&Json, &Bytes::from(&b"hi!"[..]));
        assert_eq!(&frame[..], br#"{"jsonrpc":"2.0","id":7,"result":"aGkh"}"#);
        let back: Bytes = codec::decode(&Json, br#""aGkh""#).unwrap();
        assert_eq!(&back[..], b"hi!");
    }

    #[test]
    fn invalid_base64_is_an_error() {
        let e = codec::decode::<Bytes>(&Json, br#""@@""#).unwrap_err();
        assert!(e.message().contains("invalid base64"), "{e}");
    }
}
