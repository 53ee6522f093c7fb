//! A connection's read buffer: how much room the next read gets, and how
//! long a buffer that a large message grew is kept.
//!
//! An idle connection holds little: reads go into a 2 KiB buffer until one
//! fills it, then 16 KiB. While a frame is partly read, its room grows with
//! the bytes that arrived (the frame decoder's rule; it also takes room the
//! buffer already holds). A buffer that a large message grew is kept for
//! the next one, which then reads into it with no new pages to fault in and
//! no copies as it grows (a JSON megabyte echo: 22% more calls a second).
//! Only messages of at least a quarter of the largest one keep it: once
//! none has come for [`KEEP_GROWN`], it is released, and the few bytes of
//! a message that may have begun (up to 16 KiB) move to a buffer of their
//! own size; a larger part of a message is on its way, and its frame must
//! be whole within `frame_timeout`.

use bytes::BytesMut;
use tokio::time::{Duration, Instant};

/// How long a buffer a large message grew is kept after the last one.
pub(super) const KEEP_GROWN: Duration = Duration::from_secs(1);

/// How much more room a read asks for once a read has filled the buffer.
pub(super) const READ_CHUNK: usize = 16 * 1024;

/// The read room of a connection that has never filled it.
const IDLE_ROOM: usize = 2 * 1024;

/// A buffer with more room than this was grown by a large message.
const GROWN: usize = 2 * READ_CHUNK;

/// One connection's read room.
#[derive(Debug)]
pub(super) struct ReadRoom {
    /// Room for the next read: small until a read fills it.
    room: usize,
    /// The buffer is one a large message grew (whatever is left of it in
    /// view: frames split off take the rest).
    holding: bool,
    /// The largest frame read since the buffer was last released.
    largest: usize,
    /// When the last frame that keeps the buffer was read.
    last_large: Instant,
    /// The release is armed (its timer set).
    armed: bool,
}

impl ReadRoom {
    pub(super) fn new(now: Instant) -> ReadRoom {
        ReadRoom {
            room: IDLE_ROOM,
            holding: false,
            largest: 0,
            last_large: now,
            armed: false,
        }
    }

    /// Notes a frame of `len` bytes, read at `at`.
    pub(super) fn framed(&mut self, len: usize, at: Instant) {
        if len <= GROWN {
            return;
        }
        self.holding = true;
        self.largest = self.largest.max(len);
        if len >= self.largest / 4 {
            self.last_large = at;
        }
    }

    /// Notes a read of `n` bytes into `spare` bytes of room: one that
    /// filled its room earns the larger one.
    pub(super) fn read(&mut self, n: usize, spare: usize) {
        if n == spare && self.room < READ_CHUNK {
            self.room = READ_CHUNK;
        }
    }

    /// Before a read: leaves at least half of the room free in `input`.
    /// When it holds a grown buffer with no release armed yet, arms one
    /// and says when it is due.
    pub(super) fn make_room(&mut self, input: &mut BytesMut) -> Option<Instant> {
        if input.capacity() - input.len() < self.room / 2 {
            input.reserve(self.room);
        }
        if input.capacity() > GROWN {
            self.holding = true;
        }
        if !self.holding || self.armed {
            return None;
        }
        self.armed = true;
        Some(self.last_large + KEEP_GROWN)
    }

    /// Whether the buffer is one a large message grew, to be released.
    pub(super) fn holding(&self) -> bool {
        self.holding
    }

    /// The release came due at `now`: lets go of the grown buffer if no
    /// message that keeps it came for [`KEEP_GROWN`] and it holds no more
    /// than [`READ_CHUNK`] bytes (moved to a buffer of their own); else
    /// says when to look again.
    pub(super) fn release(&mut self, input: &mut BytesMut, now: Instant) -> Option<Instant> {
        let until = self.last_large + KEEP_GROWN;
        if now < until {
            return Some(until);
        }
        if input.len() > READ_CHUNK {
            // A large message is on its way.
            return Some(now + KEEP_GROWN);
        }
        *input = BytesMut::from(&input[..]);
        self.holding = false;
        self.armed = false;
        self.largest = 0;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grown_buffer() -> BytesMut {
        BytesMut::with_capacity(1 << 20)
    }

    #[test]
    fn a_small_buffer_is_never_released_and_a_read_that_fills_it_earns_more() {
        let now = Instant::now();
        let mut room = ReadRoom::new(now);
        let mut input = BytesMut::new();
        assert_eq!(room.make_room(&mut input), None);
        assert!(input.capacity() >= IDLE_ROOM);
        room.read(10, IDLE_ROOM);
        assert_eq!(room.room, IDLE_ROOM, "a read that did not fill its room");
        room.read(IDLE_ROOM, IDLE_ROOM);
        input.extend_from_slice(&[0; IDLE_ROOM]);
        room.make_room(&mut input);
        assert!(input.capacity() - input.len() >= READ_CHUNK / 2);
    }

    #[test]
    fn a_grown_buffer_is_kept_while_large_messages_come_and_released_after() {
        let start = Instant::now();
        let mut room = ReadRoom::new(start);
        let mut input = grown_buffer();
        room.framed(1 << 20, start + Duration::from_millis(500));
        let due = room.make_room(&mut input).expect("armed");
        assert_eq!(due, start + Duration::from_millis(1500));
        assert_eq!(room.make_room(&mut input), None, "armed once");
        // Another large message came meanwhile: kept for a second after it.
        room.framed(1 << 20, start + Duration::from_millis(1200));
        assert_eq!(
            room.release(&mut input, due),
            Some(start + Duration::from_millis(2200))
        );
        assert!(room.holding());
        // Small messages do not keep it.
        room.framed(100, start + Duration::from_millis(2100));
        assert_eq!(
            room.release(&mut input, start + Duration::from_millis(2200)),
            None
        );
        assert!(!room.holding(), "released");
        assert_eq!(input.capacity(), 0);
    }

    #[test]
    fn only_messages_of_a_quarter_of_the_largest_keep_its_buffer() {
        let start = Instant::now();
        let mut room = ReadRoom::new(start);
        let mut input = grown_buffer();
        room.framed(16 << 20, start);
        room.make_room(&mut input).expect("armed");
        // Medium messages (over the usual room, under a quarter) keep
        // coming: they do not keep 16 MiB.
        room.framed(40 << 10, start + Duration::from_millis(900));
        assert_eq!(room.release(&mut input, start + KEEP_GROWN), None);
        // A quarter of the largest does.
        let mut input = grown_buffer();
        room.framed(16 << 20, start);
        room.make_room(&mut input).expect("armed");
        room.framed(4 << 20, start + Duration::from_millis(900));
        assert!(room.release(&mut input, start + KEEP_GROWN).is_some());
    }

    #[test]
    fn a_released_buffer_keeps_the_start_of_a_message_and_a_large_part_waits() {
        let start = Instant::now();
        let late = start + Duration::from_secs(5);
        let mut room = ReadRoom::new(start);
        let mut input = grown_buffer();
        input.extend_from_slice(b"part of a frame");
        room.make_room(&mut input).expect("armed");
        assert_eq!(room.release(&mut input, late), None);
        assert_eq!(&input[..], b"part of a frame");
        assert!(input.capacity() < GROWN, "{}", input.capacity());
        // Grown again, holding more than a read's room of a message.
        let mut input = grown_buffer();
        input.extend_from_slice(&[7; READ_CHUNK + 1]);
        room.make_room(&mut input).expect("armed again");
        assert_eq!(room.release(&mut input, late), Some(late + KEEP_GROWN));
        assert_eq!(input.len(), READ_CHUNK + 1);
        assert!(room.holding());
    }

    #[test]
    fn a_grown_buffer_seen_only_through_its_last_frame_is_released_too() {
        // Frames split off took all but a little of the buffer's room: what
        // is left in view is small, and the allocation is still held.
        let start = Instant::now();
        let mut room = ReadRoom::new(start);
        let mut input = BytesMut::with_capacity(1 << 20);
        input.resize((1 << 20) - 20_000, 0);
        let frame = input.split();
        assert!(input.capacity() <= GROWN);
        room.framed(frame.len(), start);
        assert!(room.make_room(&mut input).is_some(), "armed");
        assert_eq!(room.release(&mut input, start + KEEP_GROWN), None);
        assert_eq!(input.capacity(), 0);
    }
}
