//! [`PyValue`] → pickle, protocol 4 without frames or memo: what
//! `pickle.loads` on Python 3.4 and newer reads back.
//!
//! ```text
//! (2, 'a')  →  80 04  4b 02  8c 01 61  86  2e
//!              PROTO  BININT1  SHORT_BINUNICODE  TUPLE2  STOP
//! ```

use super::PyValue;

const PROTO: u8 = 0x80;
const STOP: u8 = b'.';
const MARK: u8 = b'(';

/// The pickle of `value`.
pub fn write(value: &PyValue) -> Vec<u8> {
    let mut out = vec![PROTO, 4];
    put(&mut out, value);
    out.push(STOP);
    out
}

/// The pickle of an instance of the exception class `module.name` built
/// with one message argument, as `pickle.dumps(KeyError('x'))` writes it
/// (`STACK_GLOBAL` + `REDUCE`): for a Python client to `raise`.
pub fn write_exception(module: &str, name: &str, message: &str) -> Vec<u8> {
    write_exception_with(module, name, message, &[])
}

/// [`write_exception`] with `attributes` set on the instance, as
/// `pickle.dumps(e)` writes an exception after `e.data = …`: the `REDUCE`,
/// then a `BUILD` with the instance's `__dict__`. `e.args` and `str(e)`
/// stay the message alone.
pub fn write_exception_with(
    module: &str,
    name: &str,
    message: &str,
    attributes: &[(&str, PyValue)],
) -> Vec<u8> {
    let mut out = vec![PROTO, 4];
    put_str(&mut out, module);
    put_str(&mut out, name);
    out.push(0x93); // STACK_GLOBAL
    put_str(&mut out, message);
    out.push(0x85); // TUPLE1
    out.push(b'R'); // REDUCE
    if !attributes.is_empty() {
        let dict = attributes
            .iter()
            .map(|(k, v)| (PyValue::Str((*k).into()), v.clone()))
            .collect();
        put(&mut out, &PyValue::Dict(dict));
        out.push(b'b'); // BUILD
    }
    out.push(STOP);
    out
}

fn put(out: &mut Vec<u8>, value: &PyValue) {
    match value {
        PyValue::None => out.push(b'N'),
        PyValue::Bool(true) => out.push(0x88),
        PyValue::Bool(false) => out.push(0x89),
        PyValue::Int(i) => put_int(out, *i),
        PyValue::Float(x) => {
            out.push(b'G');
            out.extend_from_slice(&x.to_be_bytes());
        }
        PyValue::Str(s) => put_str(out, s),
        PyValue::Bytes(b) => put_sized(out, [b'C', b'B', 0x8e], b),
        PyValue::Tuple(items) => put_tuple(out, items),
        PyValue::List(items) => {
            out.push(b']');
            if !items.is_empty() {
                out.push(MARK);
                items.iter().for_each(|v| put(out, v));
                out.push(b'e'); // APPENDS
            }
        }
        PyValue::Dict(entries) => {
            out.push(b'}');
            if !entries.is_empty() {
                out.push(MARK);
                for (k, v) in entries {
                    put(out, k);
                    put(out, v);
                }
                out.push(b'u'); // SETITEMS
            }
        }
    }
}

fn put_int(out: &mut Vec<u8>, i: i128) {
    match i {
        0..=0xff => out.extend_from_slice(&[b'K', i as u8]),
        0x100..=0xffff => {
            out.push(b'M');
            out.extend_from_slice(&(i as u16).to_le_bytes());
        }
        _ if i32::try_from(i).is_ok() => {
            out.push(b'J');
            out.extend_from_slice(&(i as i32).to_le_bytes());
        }
        _ => {
            // LONG1: the shortest little-endian two's complement.
            let bytes = i.to_le_bytes();
            let mut len = bytes.len();
            while len > 1 {
                let (last, next) = (bytes[len - 1], bytes[len - 2]);
                let redundant =
                    (last == 0 && next & 0x80 == 0) || (last == 0xff && next & 0x80 != 0);
                if !redundant {
                    break;
                }
                len -= 1;
            }
            out.extend_from_slice(&[0x8a, len as u8]);
            out.extend_from_slice(&bytes[..len]);
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_sized(out, [0x8c, b'X', 0x8d], s.as_bytes());
}

/// A length-prefixed payload with the shortest of the three opcodes
/// (1-, 4- and 8-byte lengths).
fn put_sized(out: &mut Vec<u8>, [short, long, huge]: [u8; 3], payload: &[u8]) {
    let len = payload.len();
    if let Ok(n) = u8::try_from(len) {
        out.extend_from_slice(&[short, n]);
    } else if let Ok(n) = u32::try_from(len) {
        out.push(long);
        out.extend_from_slice(&n.to_le_bytes());
    } else {
        out.push(huge);
        out.extend_from_slice(&(len as u64).to_le_bytes());
    }
    out.extend_from_slice(payload);
}

fn put_tuple(out: &mut Vec<u8>, items: &[PyValue]) {
    match items.len() {
        0 => out.push(b')'),
        n @ 1..=3 => {
            items.iter().for_each(|v| put(out, v));
            out.push(0x84 + n as u8); // TUPLE1..TUPLE3
        }
        _ => {
            out.push(MARK);
            items.iter().for_each(|v| put(out, v));
            out.push(b't');
        }
    }
}
