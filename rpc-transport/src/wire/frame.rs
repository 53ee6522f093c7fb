//! Framing compatible with Python's `multiprocessing.connection`.
//!
//! Every message on the wire, handshake included, is one frame: a big-endian
//! *signed* 32-bit length followed by that many payload bytes.
//!
//! ```text
//! short form, payload of up to 0x7fff_ffff bytes:
//!
//! +---- len: i32 BE ----+--------------------------------+
//! | 00 00 00 09         | 23 57 45 4c 43 4f 4d 45 23     |
//! +---------------------+--------------------------------+
//!                         "#WELCOME#" (9 bytes)
//!
//! long form, payload over 0x7fff_ffff bytes:
//!
//! +---- -1: i32 BE -----+------- len: u64 BE -------+----------------+
//! | ff ff ff ff         | 00 00 00 00 80 00 00 00   | payload ...    |
//! +---------------------+---------------------------+----------------+
//!                         2_147_483_648 bytes
//! ```
//!
//! Any negative length other than `-1` is an error. [`FrameCodec`] refuses
//! frames longer than its maximum in both directions; an incoming length is
//! checked as soon as the header has arrived, so a peer that is not
//! speaking this protocol (an HTTP client sending `GET `, which reads as
//! 1,195,725,856 bytes) is refused from its first four bytes. Room for the
//! payload grows with the bytes that arrive (at most doubling), never with
//! what the header announces: a header alone takes at most room the buffer
//! holds already, which costs nothing more.
//!
//! # Example
//!
//! ```
//! use bytes::BytesMut;
//! use rpc_transport::frame::FrameCodec;
//! use tokio_util::codec::{Decoder, Encoder};
//!
//! let mut codec = FrameCodec::default();
//! let mut buf = BytesMut::new();
//! codec.encode(&b"#WELCOME#"[..], &mut buf)?;
//! assert_eq!(&buf[..4], [0, 0, 0, 9]);
//!
//! let frame = codec.decode(&mut buf)?.expect("a whole frame is buffered");
//! assert_eq!(&frame[..], b"#WELCOME#");
//! assert_eq!(codec.decode(&mut buf)?, None);
//! # Ok::<(), rpc_transport::frame::FrameError>(())
//! ```
//!
//! Over a socket, wrap the stream in
//! [`Framed`](tokio_util::codec::Framed)`::new(stream, FrameCodec::default())`.

use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// The default largest payload, in bytes, [`FrameCodec`] accepts or sends: 16 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// The least room a partly read frame asks for at a time (see [`FrameCodec::decode`]).
const MIN_RESERVE: usize = 16 * 1024;

/// Length of the short header: one `i32`.
const SHORT_HEADER: usize = 4;
/// Length of the long header: `-1_i32` then one `u64`.
const LONG_HEADER: usize = 12;
/// The `i32` length announcing a long header.
const LONG_MARKER: i32 = -1;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame's payload is longer than the codec's maximum.
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The payload length, as declared by the peer or as given to the encoder.
        len: u64,
        /// The maximum payload length in force.
        limit: usize,
    },
    /// The header carried a negative length other than `-1`.
    #[error("invalid frame length {0}: the only negative length allowed is -1")]
    NegativeLength(i32),
    /// The stream ended part-way through a frame.
    #[error("connection closed mid-frame after {have} of {need} bytes")]
    UnexpectedEof {
        /// Bytes of the unfinished frame that had arrived, header included.
        have: usize,
        /// Bytes needed to complete the header, or the whole frame once the header was known.
        need: usize,
    },
    /// Reading from or writing to the underlying stream failed.
    #[error("i/o error on the framed stream")]
    Io(#[from] std::io::Error),
}

/// A [`Decoder`] and [`Encoder`] for `multiprocessing.connection` frames.
///
/// Decoded items are the payloads, without their header. Anything that is
/// `AsRef<[u8]>` (`Bytes`, `&[u8]`, `Vec<u8>`, ...) can be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameCodec {
    max_frame_bytes: usize,
}

/// A parsed header: how many bytes it takes and how long the whole frame is.
struct Header {
    len: usize,
    frame_len: usize,
}

impl FrameCodec {
    /// Creates a codec that refuses payloads longer than `max_frame_bytes`.
    pub fn new(max_frame_bytes: usize) -> Self {
        Self { max_frame_bytes }
    }

    /// The largest payload, in bytes, this codec reads or writes.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    /// Changes the largest payload this codec reads or writes; frames already
    /// decoded are not affected.
    pub fn set_max_frame_bytes(&mut self, max_frame_bytes: usize) {
        self.max_frame_bytes = max_frame_bytes;
    }

    /// Parses the header at the start of `src`; `Ok(None)` until all of it has arrived.
    fn header(&self, src: &[u8]) -> Result<Option<Header>, FrameError> {
        let Some(short) = src.first_chunk::<SHORT_HEADER>() else {
            return Ok(None);
        };
        let (len, payload_len) = match i32::from_be_bytes(*short) {
            LONG_MARKER => match src[SHORT_HEADER..].first_chunk::<8>() {
                Some(long) => (LONG_HEADER, u64::from_be_bytes(*long)),
                None => return Ok(None),
            },
            n if n < 0 => return Err(FrameError::NegativeLength(n)),
            n => (SHORT_HEADER, n as u64),
        };
        let frame_len = self.check_len(payload_len, len)?;
        Ok(Some(Header { len, frame_len }))
    }

    /// Checks a payload length against the limit; returns the length of the whole frame.
    fn check_len(&self, payload_len: u64, header_len: usize) -> Result<usize, FrameError> {
        usize::try_from(payload_len)
            .ok()
            .filter(|&n| n <= self.max_frame_bytes)
            .and_then(|n| n.checked_add(header_len))
            .ok_or(FrameError::TooLarge {
                len: payload_len,
                limit: self.max_frame_bytes,
            })
    }
}

impl Default for FrameCodec {
    /// A codec with the [`DEFAULT_MAX_FRAME_BYTES`] limit.
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_BYTES)
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = FrameError;

    /// Returns the next payload, `Ok(None)` if it has not fully arrived yet,
    /// or an error for a negative or over-limit length.
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        let Some(header) = self.header(src)? else {
            return Ok(None);
        };
        if src.len() < header.frame_len {
            // Room grows with what has arrived, not with what the header
            // announces: a peer that announces 16 MiB and sends 4 bytes
            // holds 4 bytes' worth, not 16 MiB of address space. Room the
            // buffer holds already (one an earlier large frame grew, kept
            // for the next) costs nothing more, and is taken at once: the
            // frame then lands in place, not copied as the buffer grows.
            let announced = header.frame_len - src.len();
            if !src.try_reclaim(announced) {
                src.reserve(announced.min(src.len().max(MIN_RESERVE)));
            }
            return Ok(None);
        }
        src.advance(header.len);
        Ok(Some(src.split_to(header.frame_len - header.len)))
    }

    /// Like [`decode`](Self::decode), but a partial frame left at the end of
    /// the stream is [`FrameError::UnexpectedEof`].
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        if let Some(frame) = self.decode(src)? {
            return Ok(Some(frame));
        }
        if src.is_empty() {
            return Ok(None);
        }
        let need = match self.header(src)? {
            Some(header) => header.frame_len,
            None if src.len() < SHORT_HEADER => SHORT_HEADER,
            None => LONG_HEADER,
        };
        Err(FrameError::UnexpectedEof {
            have: src.len(),
            need,
        })
    }
}

impl<B: AsRef<[u8]>> Encoder<B> for FrameCodec {
    type Error = FrameError;

    /// Appends the header and the payload to `dst`; a payload over the limit
    /// is refused with [`FrameError::TooLarge`] and nothing is written.
    fn encode(&mut self, item: B, dst: &mut BytesMut) -> Result<(), FrameError> {
        let payload = item.as_ref();
        check_outgoing(payload.len(), self.max_frame_bytes)?;
        dst.reserve(LONG_HEADER + payload.len());
        put_header(dst, payload.len());
        dst.extend_from_slice(payload);
        Ok(())
    }
}

/// Starts a frame whose payload the caller writes straight into `dst`.
///
/// Appends a 4-byte placeholder header and returns the frame's start offset,
/// to be passed to [`finish_frame`] once the payload has been written.
pub fn begin_frame(dst: &mut BytesMut) -> usize {
    let start = dst.len();
    dst.put_i32(0);
    start
}

/// Completes a frame started with [`begin_frame`] by writing its length.
///
/// A payload over `i32::MAX` bytes gets the long header, which moves it by 8
/// bytes. A payload over `max_frame_bytes` is refused with
/// [`FrameError::TooLarge`] and `dst` is truncated back to `start`, as it was
/// before [`begin_frame`].
///
/// # Panics
///
/// If `start` is not an offset returned by [`begin_frame`] on this buffer
/// (fewer than 4 bytes follow it).
pub fn finish_frame(
    dst: &mut BytesMut,
    start: usize,
    max_frame_bytes: usize,
) -> Result<(), FrameError> {
    finish_spliced_frame(dst, start, 0, max_frame_bytes).map(drop)
}

/// [`finish_frame`] for a payload of which `outside` more bytes are
/// written from elsewhere (spliced in by reference, not in `dst`); returns
/// by how much the bytes after the header moved: 8 if it had to be widened,
/// else 0.
pub(crate) fn finish_spliced_frame(
    dst: &mut BytesMut,
    start: usize,
    outside: usize,
    max_frame_bytes: usize,
) -> Result<usize, FrameError> {
    let payload_len = dst.len() - start - SHORT_HEADER + outside;
    if let Err(err) = check_outgoing(payload_len, max_frame_bytes) {
        dst.truncate(start);
        return Err(err);
    }
    match i32::try_from(payload_len) {
        Ok(len) => {
            dst[start..start + SHORT_HEADER].copy_from_slice(&len.to_be_bytes());
            Ok(0)
        }
        Err(_) => {
            widen_header(dst, start, payload_len as u64);
            Ok(LONG_HEADER - SHORT_HEADER)
        }
    }
}

/// Refuses an outgoing payload over the limit.
fn check_outgoing(payload_len: usize, limit: usize) -> Result<(), FrameError> {
    if payload_len > limit {
        return Err(FrameError::TooLarge {
            len: payload_len as u64,
            limit,
        });
    }
    Ok(())
}

/// Appends the header for a payload of `payload_len` bytes.
fn put_header(dst: &mut BytesMut, payload_len: usize) {
    match i32::try_from(payload_len) {
        Ok(len) => dst.put_i32(len),
        Err(_) => {
            dst.put_i32(LONG_MARKER);
            dst.put_u64(payload_len as u64);
        }
    }
}

/// Turns the short header of the frame at `start` into the long one for a
/// payload of `payload_len` bytes, moving what `dst` holds of it (which
/// runs to the end of `dst`) up by 8 bytes.
fn widen_header(dst: &mut BytesMut, start: usize, payload_len: u64) {
    let payload_start = start + SHORT_HEADER;
    let payload_end = dst.len();
    dst.resize(payload_end + LONG_HEADER - SHORT_HEADER, 0);
    dst.copy_within(payload_start..payload_end, start + LONG_HEADER);
    dst[start..payload_start].copy_from_slice(&LONG_MARKER.to_be_bytes());
    dst[payload_start..start + LONG_HEADER].copy_from_slice(&payload_len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;

    /// `#WELCOME#` as a frame, from the wire spec.
    const WELCOME_FRAME: &[u8] = b"\x00\x00\x00\x09#WELCOME#";

    fn decode_all(codec: &mut FrameCodec, buf: &mut BytesMut) -> Vec<BytesMut> {
        std::iter::from_fn(|| codec.decode(buf).unwrap()).collect()
    }

    #[test]
    fn encodes_the_welcome_frame_from_the_spec() {
        let mut buf = BytesMut::new();
        FrameCodec::default()
            .encode(Bytes::from_static(b"#WELCOME#"), &mut buf)
            .unwrap();
        assert_eq!(&buf[..], WELCOME_FRAME);
    }

    #[test]
    fn decodes_a_frame_fed_one_byte_at_a_time() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::new();
        let (last, init) = WELCOME_FRAME.split_last().unwrap();
        for &byte in init {
            buf.put_u8(byte);
            assert_eq!(codec.decode(&mut buf).unwrap(), None);
        }
        buf.put_u8(*last);
        assert_eq!(&codec.decode(&mut buf).unwrap().unwrap()[..], b"#WELCOME#");
        assert!(buf.is_empty());
    }

    #[test]
    fn decodes_several_frames_from_one_buffer() {
        let mut buf =
            BytesMut::from(&b"\x00\x00\x00\x01a\x00\x00\x00\x02bc\x00\x00\x00\x03def"[..]);
        let frames = decode_all(&mut FrameCodec::default(), &mut buf);
        assert_eq!(frames, [&b"a"[..], b"bc", b"def"]);
    }

    #[test]
    fn decodes_a_zero_length_frame() {
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x00\x00\x00\x00\x01x"[..]);
        let frames = decode_all(&mut FrameCodec::default(), &mut buf);
        assert_eq!(frames, [&b""[..], b"x"]);
    }

    #[test]
    fn decodes_the_eight_byte_length_form() {
        let mut buf = BytesMut::from(&b"\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x03abc"[..]);
        let frames = decode_all(&mut FrameCodec::default(), &mut buf);
        assert_eq!(frames, [&b"abc"[..]]);
    }

    #[test]
    fn waits_for_the_whole_eight_byte_length() {
        let mut buf = BytesMut::from(&b"\xff\xff\xff\xff\x00\x00\x00"[..]);
        assert_eq!(FrameCodec::default().decode(&mut buf).unwrap(), None);
    }

    #[test]
    fn accepts_a_frame_exactly_at_the_limit() {
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x04abcd"[..]);
        let frames = decode_all(&mut FrameCodec::new(4), &mut buf);
        assert_eq!(frames, [&b"abcd"[..]]);
    }

    #[test]
    fn refuses_a_frame_one_byte_over_the_limit_from_its_header_alone() {
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x05"[..]);
        let err = FrameCodec::new(4).decode(&mut buf).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len: 5, limit: 4 }));
    }

    #[test]
    fn refuses_an_http_request_before_reserving_anything() {
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let err = FrameCodec::default().decode(&mut buf).unwrap_err();
        assert_eq!(
            err.to_string(),
            "frame of 1195725856 bytes exceeds the limit of 16777216 bytes"
        );
        assert_eq!(buf.capacity(), 64);
    }

    #[test]
    fn refuses_an_eight_byte_length_over_the_limit() {
        let mut buf = BytesMut::from(&b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"[..]);
        let err = FrameCodec::default().decode(&mut buf).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len: u64::MAX, .. }));
    }

    #[test]
    fn reserves_room_for_a_partial_frame_within_the_limit() {
        let mut buf = BytesMut::from(&b"\x00\x00\x01\x00abc"[..]);
        assert_eq!(FrameCodec::default().decode(&mut buf).unwrap(), None);
        assert!(buf.capacity() >= 4 + 256);
    }

    #[test]
    fn room_for_a_large_frame_grows_with_what_arrived_not_with_its_header() {
        let mut buf = BytesMut::from(&b"\x00\xff\xff\xffabc"[..]);
        let mut codec = FrameCodec::new(usize::MAX);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert!(buf.capacity() < 64 * 1024, "{}", buf.capacity());
        // As bytes arrive, room at most doubles what is there.
        buf.extend_from_slice(&[0; 100_000]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert!(
            buf.capacity() <= 2 * buf.len() + 64 * 1024,
            "{}",
            buf.capacity()
        );
    }

    #[test]
    fn room_the_buffer_already_holds_is_taken_at_once_for_a_large_frame() {
        const BIG: usize = 1 << 20;
        let mut codec = FrameCodec::new(usize::MAX);
        let mut buf = BytesMut::with_capacity(BIG);
        let start = buf.as_ptr();
        // A frame of 600,000 bytes arrived, was handed over and is done with.
        buf.extend_from_slice(&600_000u32.to_be_bytes());
        buf.resize(4 + 600_000, 7);
        drop(codec.decode(&mut buf).unwrap().expect("a whole frame"));
        // The next announces 512 KiB, more than is left behind the first.
        buf.extend_from_slice(&(512u32 << 10).to_be_bytes());
        buf.extend_from_slice(b"abc");
        assert!(buf.capacity() < 512 << 10);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        // Its room is the buffer's own, moved to the front: no allocation,
        // and the frame will not be copied again as it arrives.
        assert!(buf.capacity() >= 4 + (512 << 10), "{}", buf.capacity());
        assert_eq!(buf.as_ptr(), start);
        assert_eq!(&buf[4..], b"abc");
    }

    #[test]
    fn refuses_negative_lengths_other_than_minus_one() {
        for (header, len) in [(*b"\xff\xff\xff\xfe", -2), (*b"\x80\x00\x00\x00", i32::MIN)] {
            let err = FrameCodec::default()
                .decode(&mut BytesMut::from(&header[..]))
                .unwrap_err();
            assert!(matches!(err, FrameError::NegativeLength(n) if n == len));
        }
    }

    #[test]
    fn decode_eof_reports_a_connection_closed_mid_header() {
        let mut buf = BytesMut::from(&b"\x00\x00"[..]);
        let err = FrameCodec::default().decode_eof(&mut buf).unwrap_err();
        assert!(matches!(
            err,
            FrameError::UnexpectedEof { have: 2, need: 4 }
        ));
    }

    #[test]
    fn decode_eof_reports_a_connection_closed_mid_long_header() {
        let mut buf = BytesMut::from(&b"\xff\xff\xff\xff\x00"[..]);
        let err = FrameCodec::default().decode_eof(&mut buf).unwrap_err();
        assert!(matches!(
            err,
            FrameError::UnexpectedEof { have: 5, need: 12 }
        ));
    }

    #[test]
    fn decode_eof_reports_a_connection_closed_mid_body() {
        let mut buf = BytesMut::from(&WELCOME_FRAME[..7]);
        let err = FrameCodec::default().decode_eof(&mut buf).unwrap_err();
        assert!(matches!(
            err,
            FrameError::UnexpectedEof { have: 7, need: 13 }
        ));
        assert_eq!(
            err.to_string(),
            "connection closed mid-frame after 7 of 13 bytes"
        );
    }

    #[test]
    fn decode_eof_on_a_frame_boundary_ends_the_stream() {
        let mut buf = BytesMut::from(WELCOME_FRAME);
        let mut codec = FrameCodec::default();
        assert!(codec.decode_eof(&mut buf).unwrap().is_some());
        assert_eq!(codec.decode_eof(&mut buf).unwrap(), None);
    }

    #[test]
    fn encoder_refuses_a_payload_over_the_limit_and_writes_nothing() {
        let mut buf = BytesMut::new();
        let err = FrameCodec::new(2).encode(b"abc", &mut buf).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len: 3, limit: 2 }));
        assert!(buf.is_empty());
    }

    #[test]
    fn header_for_a_payload_over_i32_max_is_minus_one_and_a_u64() {
        let mut buf = BytesMut::new();
        put_header(&mut buf, 0x8000_0000);
        assert_eq!(
            &buf[..],
            b"\xff\xff\xff\xff\x00\x00\x00\x00\x80\x00\x00\x00"
        );
    }

    #[test]
    fn begin_and_finish_frame_write_a_short_frame() {
        let mut buf = BytesMut::from(&b"prev"[..]);
        let start = begin_frame(&mut buf);
        buf.extend_from_slice(b"#WELCOME#");
        finish_frame(&mut buf, start, DEFAULT_MAX_FRAME_BYTES).unwrap();
        assert_eq!(&buf[..4], b"prev");
        assert_eq!(&buf[4..], WELCOME_FRAME);
    }

    #[test]
    fn finish_frame_over_the_limit_rolls_the_buffer_back() {
        let mut buf = BytesMut::from(&b"prev"[..]);
        let start = begin_frame(&mut buf);
        buf.extend_from_slice(b"too long");
        let err = finish_frame(&mut buf, start, 4).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len: 8, limit: 4 }));
        assert_eq!(&buf[..], b"prev");
    }

    #[test]
    fn widening_a_header_moves_the_payload_behind_the_long_form() {
        let mut buf = BytesMut::from(&b"prev"[..]);
        let start = begin_frame(&mut buf);
        buf.extend_from_slice(b"abc");
        widen_header(&mut buf, start, 3);
        assert_eq!(
            &buf[..],
            b"prev\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x03abc"
        );
        buf.advance(4);
        assert_eq!(
            decode_all(&mut FrameCodec::default(), &mut buf),
            [&b"abc"[..]]
        );
    }

    /// Feeds `data` to `codec` in chunks cut at `cuts`, then signals EOF.
    fn feed_in_chunks(
        codec: &mut FrameCodec,
        data: &[u8],
        cuts: &[usize],
    ) -> Result<Vec<BytesMut>, FrameError> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.push(data.len());
        let (mut buf, mut frames, mut from) = (BytesMut::new(), Vec::new(), 0);
        for to in cuts {
            buf.extend_from_slice(&data[from..to]);
            from = to;
            while let Some(frame) = codec.decode(&mut buf)? {
                frames.push(frame);
            }
        }
        frames.extend(codec.decode_eof(&mut buf)?);
        Ok(frames)
    }

    proptest! {
        #[test]
        fn any_bytes_in_any_chunks_give_frames_or_an_error(
            data in proptest::collection::vec(any::<u8>(), 0..512),
            cuts in proptest::collection::vec(any::<usize>(), 0..16),
            max in 0usize..1024,
        ) {
            let mut codec = FrameCodec::new(max);
            if let Ok(frames) = feed_in_chunks(&mut codec, &data, &cuts) {
                prop_assert!(frames.iter().all(|f| f.len() <= max));
            }
        }

        #[test]
        fn encoded_frames_decode_to_themselves(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
            cuts in proptest::collection::vec(any::<usize>(), 0..16),
        ) {
            let mut codec = FrameCodec::new(300);
            let mut data = BytesMut::new();
            for payload in &payloads {
                codec.encode(payload, &mut data).unwrap();
            }
            let frames = feed_in_chunks(&mut codec, &data, &cuts).unwrap();
            prop_assert_eq!(frames, payloads);
        }
    }
}
