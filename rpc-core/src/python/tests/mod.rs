//! Tests of the Python module: the pickle reader and writer against what
//! Python 3.11 writes and against classic malicious pickles (`pickle.rs`),
//! and the pattern's requests and replies on both sides (`call.rs`).

mod call;
mod pickle;

use super::call::{Call, Form, error_reply, reply};
use super::codec::{read_reply, request_frame};
use super::pickle::{Decoded, Options, PickleError, parse, read_value};
use super::{PyValue, write};
use crate::error::ErrorKind;

pub(super) fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

pub(super) fn s(text: &str) -> PyValue {
    PyValue::Str(text.into())
}

pub(super) fn int(i: i128) -> PyValue {
    PyValue::Int(i)
}

pub(super) fn read(bytes: &[u8]) -> Result<PyValue, PickleError> {
    read_value(bytes, &Options::default())
}

pub(super) fn refused(bytes: &[u8]) -> String {
    read(bytes).unwrap_err().to_string()
}

/// `pickle.dumps(pickle.dumps(('add', (2, 3), {})))` on 3.11 (the spec's vector).
pub(super) const PICKLE_REQUEST: &str =
    "8004952000000000000000431c80049511000000000000008c03616464944b024b0386947d9487942e942e";
/// `pickle.dumps(json.dumps(('add', (2, 3), {})))` on 3.11 (the spec's vector).
pub(super) const JSON_REQUEST: &str =
    "80049517000000000000008c135b22616464222c205b322c20335d2c207b7d5d942e";
/// `pickle.dumps(Evil())` where `Evil.__reduce__` returns `(os.system, ('echo pwned',))`.
pub(super) const OS_SYSTEM: &str = "80049525000000000000008c05706f736978948c0673797374656d9493948c0a6563686f2070776e656494859452942e";
/// The same at protocol 0.
pub(super) const OS_SYSTEM_P0: &[u8] = b"cposix\nsystem\np0\n(Vecho pwned\np1\ntp2\nRp3\n.";
/// `pickle.dumps(pickle.dumps(('add', (Evil(),), {})))`: the call looks right, one argument is not.
pub(super) const NESTED_OS_SYSTEM: &str = "8004954000000000000000433c80049531000000000000008c03616464948c05706f736978948c0673797374656d9493948c0a6563686f2070776e6564948594529485947d9487942e942e";

/// A list of ten references to a list of ten references to … `levels` deep:
/// 10^levels nodes if references were copied.
pub(super) fn memo_bomb(levels: u32) -> Vec<u8> {
    let get = |level: u32| [&[b'j'][..], &level.to_le_bytes()].concat();
    let mut bytes = vec![0x80, 4, b']', 0x94, b'0'];
    for level in 0..levels {
        bytes.push(b'(');
        for _ in 0..10 {
            bytes.extend(get(level));
        }
        bytes.extend_from_slice(&[b'l', 0x94, b'0']);
    }
    bytes.extend(get(levels));
    bytes.push(b'.');
    bytes
}
