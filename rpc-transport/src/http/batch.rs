//! A JSON-RPC batch over `POST /rpc`, answered within the server's
//! `max_frame_bytes`: the limit that bounds a reply over TCP bounds the
//! whole batch reply here.
//!
//! Members run at most `max_in_flight` at once, as calls on one TCP
//! connection do. Each member's result is encoded as it completes, charged
//! to the reply's budget and dropped; the reply keeps the batch's order.
//! Room for an error object per member is set aside first, so that once a
//! result does not fit, it and every later one still get an answer:
//!
//! ```text
//! → [{"id":1,"method":"KeyValue.get","params":["big"]}, … ×256]        (1 MiB value, 16 MiB limit)
//! ← [{"id":1,"result":"…"}, … ×15,
//!    {"id":16,"error":{"code":-32012,"message":"the batch reply would exceed 16777216 bytes
//!      (max_frame_bytes); this call ran but its result was not sent"}},
//!    {"id":17,"error":{"code":-32012,"message":"… this call did not run"}}, …]
//! ```
//!
//! Members still running when the budget runs out finish and are answered
//! "ran but its result was not sent"; members not yet started are not run
//! at all.

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{BufMut, BytesMut};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rpc_core::codec::Id;
use rpc_core::service::Reply;
use rpc_core::{Error, ErrorKind};

use super::Gateway;
use super::member::{Member, encode, encode_within, run};

/// What became of one member.
enum Outcome {
    /// It ran; `id: None` for a notification.
    Ran(Option<Id>, Reply),
    /// The budget ran out before it started.
    NotRun(Option<Id>),
}

/// The reply to a batch, `None` if every member was a notification.
pub(crate) async fn answer(gateway: &Gateway, members: Vec<Member>) -> Option<BytesMut> {
    let mut answers = Answers::new(&members, gateway.max_reply_bytes);
    let stop = AtomicBool::new(false);
    let mut waiting = members.into_iter().enumerate();
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < gateway.max_in_flight {
            let Some((i, member)) = waiting.next() else {
                break;
            };
            let stop = &stop;
            running.push(async move {
                // Checked when the member first runs, not when it is queued.
                if stop.load(Ordering::Relaxed) {
                    return (i, Outcome::NotRun(member.id().cloned()));
                }
                let (id, reply) = run(gateway, member).await;
                (i, Outcome::Ran(id, reply))
            });
        }
        let Some((i, outcome)) = running.next().await else {
            break;
        };
        if !answers.add(i, outcome) {
            stop.store(true, Ordering::Relaxed);
        }
    }
    answers.finish()
}

/// A batch reply being built, in the batch's order, within its limit.
struct Answers {
    limit: usize,
    /// `[` and the answers before `next`.
    body: BytesMut,
    /// Each member's answer until it joins the body.
    slots: Vec<Slot>,
    next: usize,
    /// Bytes of the reply so far, answers out of order included.
    used: usize,
    /// The room set aside for an over-budget error per member not yet
    /// answered (notifications need none), and its sum.
    reserved: Vec<usize>,
    reserve: usize,
    answered: usize,
    out_of_room: bool,
}

enum Slot {
    Waiting,
    Answer(BytesMut),
    /// A notification, done: it has no answer.
    Silent,
}

impl Answers {
    fn new(members: &[Member], limit: usize) -> Answers {
        let reserved: Vec<usize> = members
            .iter()
            .map(|m| {
                m.id()
                    .map_or(0, |id| over_budget(id, limit, true).len() + 1)
            })
            .collect();
        let mut body = BytesMut::new();
        body.put_u8(b'[');
        Answers {
            limit,
            body,
            slots: members.iter().map(|_| Slot::Waiting).collect(),
            next: 0,
            used: 2,
            reserve: reserved.iter().sum(),
            reserved,
            answered: 0,
            out_of_room: false,
        }
    }

    /// Encodes member `i`'s answer within the budget, dropping its value.
    /// `false` once the budget has run out.
    fn add(&mut self, i: usize, outcome: Outcome) -> bool {
        self.reserve -= std::mem::take(&mut self.reserved[i]);
        self.slots[i] = match outcome {
            Outcome::Ran(None, _) | Outcome::NotRun(None) => Slot::Silent,
            Outcome::NotRun(Some(id)) => Slot::Answer(over_budget(&id, self.limit, false)),
            Outcome::Ran(Some(id), reply) => Slot::Answer(self.fit(&id, &reply)),
        };
        if let Slot::Answer(answer) = &self.slots[i] {
            self.used += answer.len() + 1;
            self.answered += 1;
        }
        self.flush();
        !self.out_of_room
    }

    /// The answer to a member that ran: its result if it fits in the room
    /// left (every other member's error still set aside), else the
    /// over-budget error, which every member gets from then on.
    fn fit(&mut self, id: &Id, reply: &Reply) -> BytesMut {
        if !self.out_of_room {
            let room = self.limit.saturating_sub(self.used + self.reserve + 1);
            if let Some(answer) = encode_within(id, reply, room) {
                return answer;
            }
            self.out_of_room = true;
        }
        over_budget(id, self.limit, true)
    }

    /// Moves the answers next in order into the body.
    fn flush(&mut self) {
        while let Some(slot) = self.slots.get_mut(self.next) {
            match std::mem::replace(slot, Slot::Silent) {
                Slot::Waiting => {
                    *slot = Slot::Waiting;
                    return;
                }
                Slot::Silent => {}
                Slot::Answer(answer) => {
                    if self.body.len() > 1 {
                        self.body.put_u8(b',');
                    }
                    self.body.extend_from_slice(&answer);
                }
            }
            self.next += 1;
        }
    }

    fn finish(self) -> Option<BytesMut> {
        let mut body = self.body;
        if self.answered == 0 {
            return None;
        }
        body.put_u8(b']');
        Some(body)
    }
}

/// The error object of a member left out of an over-budget batch reply.
fn over_budget(id: &Id, limit: usize, ran: bool) -> BytesMut {
    let what = if ran {
        "this call ran but its result was not sent"
    } else {
        "this call did not run"
    };
    let message = format!("the batch reply would exceed {limit} bytes (max_frame_bytes); {what}");
    let error = Error::new(ErrorKind::OverBudget, message);
    let error = if ran { error } else { error.did_not_run() };
    encode(id, &Err(error.into()))
}
