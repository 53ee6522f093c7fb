//! Properties of the pure parts of the wire, over generated inputs: envelopes
//! round-trip in both codecs, `Value`s round-trip, the handshake verifies
//! what it answers, and no byte string makes the frame decoder, the
//! handshake, the hello, either envelope decoder or `Value` panic — what they
//! return points only inside the bytes they were given; and the JSON codec,
//! which writes a `Bytes` payload's base64 in place, writes what serde_json
//! writes.
//!
//! Case counts are kept small so the whole file runs in a few seconds; the
//! fuzz targets in `fuzz/` search the same functions for much longer.

use std::time::Duration;

use bytes::BytesMut;
use proptest::prelude::*;
use rpc_core::codec::{self, Codec, Id, Inbound, Incoming, OutRequest};
use rpc_core::service::{Fault, Reply};
use rpc_core::{ErrorKind, Value};
use rpc_transport::frame::FrameCodec;
use rpc_transport::handshake::{CHALLENGE, answer_challenge, make_challenge, verify_answer};
use rpc_transport::hello::{Answer, Hello};
use serde::{Deserialize, Serialize};
use tokio_util::codec::Decoder;

/// The arguments of a made-up method: a bit of every kind of field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Args {
    n: i64,
    u: u64,
    text: String,
    bytes: Vec<u8>,
    flag: Option<bool>,
    x: f64,
}

fn args() -> impl Strategy<Value = Args> {
    (
        any::<i64>(),
        any::<u64>(),
        any::<String>(),
        proptest::collection::vec(any::<u8>(), 0..64),
        any::<Option<bool>>(),
        any::<f64>().prop_filter("JSON numbers are finite", |x| x.is_finite()),
    )
        .prop_map(|(n, u, text, bytes, flag, x)| Args {
            n,
            u,
            text,
            bytes,
            flag,
            x,
        })
}

/// A deadline as the wire carries it: whole milliseconds, at least one.
fn deadline() -> impl Strategy<Value = Option<Duration>> {
    proptest::option::of((1u64..=u64::from(u32::MAX)).prop_map(Duration::from_millis))
}

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |x| x.is_finite())
            .prop_map(serde_json::Value::from),
        any::<String>().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn codec() -> impl Strategy<Value = &'static dyn Codec> {
    prop::sample::select(codec::ALL)
}

fn error_kind() -> impl Strategy<Value = ErrorKind> {
    prop::sample::select(vec![
        ErrorKind::Parse,
        ErrorKind::InvalidRequest,
        ErrorKind::MethodNotFound,
        ErrorKind::InvalidParams,
        ErrorKind::Internal,
        ErrorKind::HandlerPanic,
        ErrorKind::Application,
        ErrorKind::Timeout,
        ErrorKind::FrameTooLarge,
    ])
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

/// Bytes made mostly of small numbers, which bincode reads as tags, short
/// lengths and short varints: they reach deeper into a decoder than noise.
fn bincodeish(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(prop_oneof![4 => 0u8..10, 1 => any::<u8>()], 0..max)
}

fn encode_reply(codec: &dyn Codec, id: u64, reply: &Reply) -> BytesMut {
    let mut buf = BytesMut::new();
    codec
        .encode_response(&mut buf, &Id::Num(id), reply)
        .expect("a reply encodes");
    buf
}

/// The id and outcome of a response that must decode.
fn response(
    codec: &dyn Codec,
    frame: &[u8],
) -> (
    u64,
    Result<std::ops::Range<usize>, rpc_core::client::WireFault>,
) {
    match codec.decode_response(frame) {
        Ok(Inbound::Response { id, outcome, .. }) => (id, outcome),
        other => panic!("not a response: {other:?}"),
    }
}

/// Decodes a response and checks every range it gives lies inside `frame`.
fn decode_response_in_bounds(codec: &dyn Codec, frame: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(Inbound::Response { outcome, .. }) = codec.decode_response(frame) {
        let ranges = match outcome {
            Ok(result) => vec![result],
            Err(fault) => fault.data.into_iter().collect(),
        };
        for range in ranges {
            prop_assert!(range.start <= range.end && range.end <= frame.len());
        }
    }
    Ok(())
}

/// Decodes a request and checks its parameters are a slice of `frame`.
fn decode_request_in_bounds(codec: &dyn Codec, frame: &[u8]) -> Result<(), TestCaseError> {
    let mut pending = vec![codec.decode_request(frame)];
    while let Some(incoming) = pending.pop() {
        match incoming {
            Incoming::Request(request) => {
                let frame_range = frame.as_ptr_range();
                let params = request.params.as_ptr_range();
                let inside = params.start >= frame_range.start && params.end <= frame_range.end;
                prop_assert!(inside || request.params == b"[]");
            }
            Incoming::Batch(items) => pending.extend(items),
            _ => {}
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn requests_round_trip_in_both_codecs(
        codec in codec(),
        id in any::<u64>(),
        method in any::<String>(),
        deadline in deadline(),
        args in args(),
    ) {
        let mut buf = BytesMut::new();
        let request = OutRequest { id, method: &method, deadline, args: &args , metadata: None};
        codec.encode_request(&mut buf, &request).expect("a request encodes");
        let Incoming::Request(decoded) = codec.decode_request(&buf) else {
            return Err(TestCaseError::fail(format!("not a request: {:?}", codec.decode_request(&buf))));
        };
        prop_assert_eq!(decoded.id, Some(Id::Num(id)));
        prop_assert_eq!(&*decoded.method, method.as_str());
        prop_assert_eq!(decoded.deadline, deadline);
        let back: Args = codec::decode(codec, decoded.params).expect("the arguments decode");
        prop_assert_eq!(back, args);
    }

    #[test]
    fn ok_responses_round_trip_in_both_codecs(codec in codec(), id in any::<u64>(), args in args()) {
        let buf = encode_reply(codec, id, &Ok(Box::new(args.clone())));
        let (back_id, outcome) = response(codec, &buf);
        prop_assert_eq!(back_id, id);
        let range = outcome.expect("an ok outcome");
        let back: Args = codec::decode(codec, &buf[range]).expect("the result decodes");
        prop_assert_eq!(back, args);
    }

    #[test]
    fn error_responses_round_trip_in_both_codecs(
        codec in codec(),
        id in any::<u64>(),
        kind in error_kind(),
        message in any::<String>(),
        data in proptest::option::of(any::<String>()),
        not_run in any::<bool>(),
    ) {
        let fault = Fault {
            kind,
            message: message.clone(),
            data: data.clone().map(|d| Box::new(d) as rpc_core::service::Payload),
            not_run,
        };
        let buf = encode_reply(codec, id, &Err(fault));
        let (back_id, outcome) = response(codec, &buf);
        prop_assert_eq!(back_id, id);
        let fault = outcome.expect_err("an error outcome");
        prop_assert_eq!(fault.code, kind.code());
        prop_assert_eq!(&fault.message, &message);
        prop_assert_eq!(fault.not_run, not_run);
        let back: Option<String> = fault
            .data
            .map(|range| codec::decode(codec, &buf[range]).expect("the data decodes"));
        prop_assert_eq!(back, data);
    }

    #[test]
    fn values_round_trip_in_both_codecs(codec in codec(), value in json_value()) {
        let value = Value(value);
        let buf = encode_reply(codec, 1, &Ok(Box::new(value.clone())));
        let (_, outcome) = response(codec, &buf);
        let back: Value = codec::decode(codec, &buf[outcome.expect("ok")]).expect("the value decodes");
        prop_assert_eq!(back, value);
    }

    #[test]
    fn any_bytes_given_to_the_response_decoders_give_a_response_or_an_error(
        codec in codec(),
        frame in prop_oneof![bytes(256), bincodeish(256)],
    ) {
        decode_response_in_bounds(codec, &frame)?;
    }

    #[test]
    fn any_bytes_after_a_valid_response_head_stay_in_bounds(
        codec in codec(),
        id in any::<u64>(),
        tail in bincodeish(64),
    ) {
        // A real head, then noise: the decoders must not trust lengths in it.
        let mut frame = encode_reply(codec, id, &Ok(Box::new(()))).to_vec();
        frame.truncate(frame.len().saturating_sub(1));
        frame.extend_from_slice(&tail);
        decode_response_in_bounds(codec, &frame)?;
    }

    #[test]
    fn any_bytes_given_to_the_request_decoders_give_a_request_or_an_error(
        codec in codec(),
        frame in prop_oneof![bytes(256), bincodeish(256)],
    ) {
        decode_request_in_bounds(codec, &frame)?;
    }

    #[test]
    fn any_json_text_given_to_the_json_request_decoder_stays_in_bounds(value in json_value()) {
        decode_request_in_bounds(&codec::Json, value.to_string().as_bytes())?;
        let batch = serde_json::Value::Array(vec![value.clone(), value]);
        decode_request_in_bounds(&codec::Json, batch.to_string().as_bytes())?;
    }

    #[test]
    fn any_bytes_decoded_as_a_value_give_a_value_or_an_error(
        codec in codec(),
        bytes in prop_oneof![bytes(256), bincodeish(256)],
    ) {
        let _ = codec::decode::<Value>(codec, &bytes);
    }

    #[test]
    fn any_bytes_given_to_the_hello_readers_give_a_hello_or_an_error(bytes in bytes(128)) {
        let _ = Hello::decode(&bytes);
        let _ = Answer::decode(&bytes);
    }

    #[test]
    fn any_answer_to_our_challenge_is_refused_unless_it_is_the_mac(
        random in any::<[u8; 32]>(),
        answer in prop_oneof![bytes(300), bytes(20).prop_map(|tail| [b"{sha256}".as_slice(), &tail].concat())],
        legacy in any::<bool>(),
    ) {
        let challenge = make_challenge(&[random, random].concat()[..40].try_into().expect("40 bytes"));
        let message = &challenge[CHALLENGE.len()..];
        let right = answer_challenge(b"key", &challenge, false).expect("our own challenge");
        let verdict = verify_answer(b"key", message, &answer, legacy);
        prop_assert_eq!(verdict.is_ok(), answer == right);
    }

    #[test]
    fn whatever_challenge_we_answer_its_sender_can_verify(
        challenge in prop_oneof![
            bytes(80).prop_map(|tail| [CHALLENGE, &tail].concat()),
            bytes(48).prop_map(|tail| [CHALLENGE, b"{sha256}".as_slice(), &tail].concat()),
            any::<[u8; 20]>().prop_map(|tail| [CHALLENGE, &tail].concat()),
            bytes(300),
        ],
        legacy in any::<bool>(),
    ) {
        if let Ok(answer) = answer_challenge(b"key", &challenge, legacy) {
            let message = &challenge[CHALLENGE.len()..];
            prop_assert!(verify_answer(b"key", message, &answer, true).is_ok());
            prop_assert!(verify_answer(b"other key", message, &answer, true).is_err());
        }
    }

    #[test]
    fn frames_behind_lying_headers_never_exceed_the_limit(
        headers in proptest::collection::vec(
            prop_oneof![
                any::<i32>().prop_map(|n| n.to_be_bytes().to_vec()),
                (0i32..64).prop_map(|n| n.to_be_bytes().to_vec()),
                any::<u64>().prop_map(|n| [(-1i32).to_be_bytes().as_slice(), &n.to_be_bytes()].concat()),
                (0u64..64).prop_map(|n| [(-1i32).to_be_bytes().as_slice(), &n.to_be_bytes()].concat()),
            ],
            0..8,
        ),
        bodies in proptest::collection::vec(bytes(64), 0..8),
        limit in 0usize..128,
    ) {
        let mut stream = BytesMut::new();
        for (header, body) in headers.iter().zip(bodies.iter().chain(std::iter::repeat(&Vec::new()))) {
            stream.extend_from_slice(header);
            stream.extend_from_slice(body);
        }
        let mut codec = FrameCodec::new(limit);
        let mut total = 0;
        while let Ok(Some(frame)) = codec.decode_eof(&mut stream) {
            prop_assert!(frame.len() <= limit);
            total += frame.len();
        }
        prop_assert!(total <= headers.iter().map(Vec::len).sum::<usize>() + bodies.iter().map(Vec::len).sum::<usize>());
    }
}

/// A value with `rpc_core::Bytes` anywhere serde can put one: plain,
/// nested, in a map's keys and values, in an internally tagged enum and a
/// flattened struct (which serde buffers before writing), beside any JSON.
#[derive(Clone, Debug, Serialize)]
enum Tree {
    Bytes(rpc_core::Bytes),
    Text(String),
    Num(i64),
    Float(f64),
    Maybe(Option<Box<Tree>>),
    List(Vec<Tree>),
    Map(std::collections::BTreeMap<String, Tree>),
    Keys(std::collections::BTreeMap<rpc_core::Bytes, u8>),
    Pair(rpc_core::Bytes, Box<Tree>),
    Record {
        data: rpc_core::Bytes,
        rest: Box<Tree>,
    },
    Tagged(Tagged),
    Flat(Flat),
    Json(serde_json::Value),
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "t")]
enum Tagged {
    A { data: rpc_core::Bytes },
    B(Inner),
}

#[derive(Clone, Debug, Serialize)]
enum Inner {
    V { data: rpc_core::Bytes, n: u8 },
}

#[derive(Clone, Debug, Serialize)]
struct Flat {
    x: u8,
    #[serde(flatten)]
    inner: Inner,
    #[serde(flatten)]
    more: std::collections::BTreeMap<String, rpc_core::Bytes>,
}

/// Payloads short and long: past the 12 KiB pieces the JSON writer encodes
/// a payload's base64 in, now and then.
fn payload() -> impl Strategy<Value = rpc_core::Bytes> {
    prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..40),
        1 => proptest::collection::vec(any::<u8>(), 12_000..30_000),
    ]
    .prop_map(rpc_core::Bytes::from)
}

fn tree() -> impl Strategy<Value = Tree> {
    let inner = || (payload(), any::<u8>()).prop_map(|(data, n)| Inner::V { data, n });
    let leaf = prop_oneof![
        payload().prop_map(Tree::Bytes),
        any::<String>().prop_map(Tree::Text),
        any::<i64>().prop_map(Tree::Num),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |x| x.is_finite())
            .prop_map(Tree::Float),
        proptest::collection::btree_map(payload(), any::<u8>(), 0..3).prop_map(Tree::Keys),
        payload().prop_map(|data| Tree::Tagged(Tagged::A { data })),
        inner().prop_map(|i| Tree::Tagged(Tagged::B(i))),
        (
            any::<u8>(),
            inner(),
            proptest::collection::btree_map("[a-z]{1,3}", payload(), 0..3)
        )
            .prop_map(|(x, inner, more)| Tree::Flat(Flat { x, inner, more })),
        json_value().prop_map(Tree::Json),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::option::of(inner.clone().prop_map(Box::new)).prop_map(Tree::Maybe),
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Tree::List),
            proptest::collection::btree_map(any::<String>(), inner.clone(), 0..4)
                .prop_map(Tree::Map),
            (payload(), inner.clone()).prop_map(|(p, t)| Tree::Pair(p, Box::new(t))),
            (payload(), inner).prop_map(|(data, rest)| Tree::Record {
                data,
                rest: Box::new(rest)
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The JSON codec writes a payload's base64 in place, skipping
    /// serde_json's escaping; what it writes is still, byte for byte, what
    /// serde_json writes, directly and behind `dyn erased_serde::Serialize`.
    #[test]
    fn the_json_writer_writes_what_serde_json_writes(tree in tree()) {
        let expected = serde_json::to_string(&tree).expect("serde_json writes it");
        let mut direct = Vec::new();
        let _ = rpc_core::finite::to_writer(&mut direct, &tree).expect("the crate's writer writes it");
        prop_assert_eq!(String::from_utf8(direct).unwrap(), expected.clone());
        let reply: Reply = Ok(Box::new(tree));
        let frame = encode_reply(&codec::Json, 7, &reply);
        let expected = format!(r#"{{"jsonrpc":"2.0","id":7,"result":{expected}}}"#);
        prop_assert_eq!(std::str::from_utf8(&frame).unwrap(), expected);
    }
}
