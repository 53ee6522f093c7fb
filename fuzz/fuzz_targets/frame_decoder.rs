//! Any byte stream, cut into chunks, through the frame decoder. The first
//! byte is the chunk size, the next two the frame limit. Every frame is within
//! the limit, and frames encoded again (whole or started and finished in
//! place) decode to themselves.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rpc_transport::frame::{FrameCodec, begin_frame, finish_frame};
use tokio_util::codec::{Decoder, Encoder};

fuzz_target!(|data: &[u8]| {
    let Some((&[chunk, lo, hi], stream)) = data.split_first_chunk::<3>() else {
        return;
    };
    let limit = usize::from(u16::from_le_bytes([lo, hi]));
    let mut codec = FrameCodec::new(limit);
    let Some(frames) = decode_in_chunks(&mut codec, stream, usize::from(chunk).max(1)) else {
        return;
    };
    let mut whole = BytesMut::new();
    let mut in_place = BytesMut::new();
    for frame in &frames {
        assert!(frame.len() <= limit, "a frame over the limit");
        codec
            .encode(&frame[..], &mut whole)
            .expect("within the limit");
        let start = begin_frame(&mut in_place);
        in_place.extend_from_slice(frame);
        finish_frame(&mut in_place, start, limit).expect("within the limit");
    }
    assert_eq!(whole, in_place);
    let again = decode_in_chunks(&mut codec, &whole, whole.len().max(1)).expect("our own frames");
    assert_eq!(again, frames);
});

/// The frames in `stream`, fed `chunk` bytes at a time, then ended; `None`
/// if the decoder refused the stream.
fn decode_in_chunks(codec: &mut FrameCodec, stream: &[u8], chunk: usize) -> Option<Vec<BytesMut>> {
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Some(frame) = codec.decode(&mut buf).ok()? {
            frames.push(frame);
        }
    }
    while let Some(frame) = codec.decode_eof(&mut buf).ok()? {
        frames.push(frame);
    }
    Some(frames)
}
