//! The pickle reader and writer against what Python 3.11 writes, and the
//! refusal rules against classic malicious pickles.

use super::call::{Call, Form, error_reply, read_reply, reply, request};
use super::pickle::{Decoded, Options, PickleError, parse, read_value};
use super::{PyValue, write};
use crate::error::ErrorKind;

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

fn s(text: &str) -> PyValue {
    PyValue::Str(text.into())
}

fn int(i: i128) -> PyValue {
    PyValue::Int(i)
}

fn read(bytes: &[u8]) -> Result<PyValue, PickleError> {
    read_value(bytes, &Options::default())
}

fn refused(bytes: &[u8]) -> String {
    read(bytes).unwrap_err().to_string()
}

/// `pickle.dumps(pickle.dumps(('add', (2, 3), {})))` on 3.11 (the spec's vector).
const PICKLE_REQUEST: &str =
    "8004952000000000000000431c80049511000000000000008c03616464944b024b0386947d9487942e942e";
/// `pickle.dumps(json.dumps(('add', (2, 3), {})))` on 3.11 (the spec's vector).
const JSON_REQUEST: &str = "80049517000000000000008c135b22616464222c205b322c20335d2c207b7d5d942e";
/// `pickle.dumps(Evil())` where `Evil.__reduce__` returns `(os.system, ('echo pwned',))`.
const OS_SYSTEM: &str = "80049525000000000000008c05706f736978948c0673797374656d9493948c0a6563686f2070776e656494859452942e";
/// The same at protocol 0.
const OS_SYSTEM_P0: &[u8] = b"cposix\nsystem\np0\n(Vecho pwned\np1\ntp2\nRp3\n.";
/// `pickle.dumps(pickle.dumps(('add', (Evil(),), {})))`: the call looks right, one argument is not.
const NESTED_OS_SYSTEM: &str = "8004954000000000000000433c80049531000000000000008c03616464948c05706f736978948c0673797374656d9493948c0a6563686f2070776e6564948594529485947d9487942e942e";

#[test]
fn reads_every_plain_type_python_writes() {
    // pickle.dumps((None, True, False, -1, 255, 65535, 2**31, -2**63, 2**64, 1.5, 'é', b'\x00', [1], {'a': (1,)}, ()))
    let bytes = hex(
        "8004955000000000000000284e88894affffffff4bff4dffff8a0500000080008a0800000000000000808a09000000000000000001473ff80000000000008c02c3a994430100945d944b01617d948c0161944b018594732974942e",
    );
    let expected = PyValue::Tuple(vec![
        PyValue::None,
        PyValue::Bool(true),
        PyValue::Bool(false),
        int(-1),
        int(255),
        int(65535),
        int(1 << 31),
        int(i64::MIN.into()),
        int(1 << 64),
        PyValue::Float(1.5),
        s("é"),
        PyValue::Bytes(vec![0]),
        PyValue::List(vec![int(1)]),
        PyValue::Dict(vec![(s("a"), PyValue::Tuple(vec![int(1)]))]),
        PyValue::Tuple(vec![]),
    ]);
    assert_eq!(read(&bytes).unwrap(), expected);
}

#[test]
fn reads_protocol_5_bytearrays() {
    let bytes = hex("8005950d000000000000009602000000000000006162942e");
    assert_eq!(read(&bytes).unwrap(), PyValue::Bytes(b"ab".to_vec()));
}

#[test]
fn a_memo_reference_is_the_object_as_finally_built() {
    // x = [1, 2]; pickle.dumps([x, x]): the memo holds x while it is still empty.
    let bytes = hex("80049514000000000000005d94285d9428 4b014b0265 6801 65 2e"
        .replace(' ', "")
        .as_str());
    let x = PyValue::List(vec![int(1), int(2)]);
    assert_eq!(read(&bytes).unwrap(), PyValue::List(vec![x.clone(), x]));
}

#[test]
fn what_we_write_reads_back() {
    let value = PyValue::Tuple(vec![
        int(0),
        int(-1),
        int(300),
        int(70_000),
        int(-(1 << 40)),
        int(i128::MAX),
        int(i128::MIN),
        PyValue::Float(-2.5),
        s(&"x".repeat(300)),
        PyValue::Bytes(vec![7; 3]),
        PyValue::List(vec![PyValue::None, PyValue::Bool(false)]),
        PyValue::Dict(vec![(int(1), PyValue::List(vec![]))]),
        PyValue::Tuple(vec![int(1), int(2), int(3), int(4)]),
        PyValue::Dict(vec![]),
    ]);
    assert_eq!(read(&write(&value)).unwrap(), value);
}

#[test]
fn writes_the_reply_python_writes_for_5() {
    // pickle.dumps(pickle.dumps(5)) without the FRAME opcodes, which are optional.
    assert_eq!(write(&int(5)), hex("80044b052e"));
    let reply = reply(Form::Pickle, &5_i64).unwrap();
    assert_eq!(
        reply,
        hex("80044305 80044b052e 2e".replace(' ', "").as_str())
    );
}

#[test]
fn writes_an_exception_as_python_does() {
    // pickle.dumps(KeyError('x')) is 8c086275696c74696e73 … 93 … 85 52: STACK_GLOBAL, TUPLE1, REDUCE.
    let frame = error_reply(Form::Plain, ErrorKind::MethodNotFound, "x");
    assert_eq!(
        frame,
        hex(
            "8004 8c086275696c74696e73 8c0e4174747269627574654572726f72 93 8c0178 85 52 2e"
                .replace(' ', "")
                .as_str()
        )
    );
}

#[test]
fn refuses_a_pickle_that_calls_os_system() {
    let error = refused(&hex(OS_SYSTEM));
    assert!(
        error.contains("refused pickle opcode STACK_GLOBAL (0x93)"),
        "{error}"
    );
    assert!(error.contains("names a Python global"), "{error}");
    let error = refused(OS_SYSTEM_P0);
    assert!(error.contains("GLOBAL (0x63) at byte 0"), "{error}");
}

#[test]
fn refuses_every_opcode_that_names_a_global_or_calls() {
    for (code, name) in [
        (b'c', "GLOBAL"),
        (0x93, "STACK_GLOBAL"),
        (b'i', "INST"),
        (b'o', "OBJ"),
        (b'R', "REDUCE"),
        (b'b', "BUILD"),
        (0x81, "NEWOBJ"),
        (0x92, "NEWOBJ_EX"),
        (0x82, "EXT"),
        (0x83, "EXT"),
        (0x84, "EXT"),
        (b'P', "PERSID"),
        (b'Q', "PERSID"),
        (0x97, "NEXT_BUFFER"),
    ] {
        let error = refused(&[0x80, 4, b'N', b'N', code, b'.']);
        assert!(
            error.contains(&format!("refused pickle opcode {name}")),
            "{error}"
        );
        assert!(error.contains("at byte 4"), "{error}");
    }
}

#[test]
fn refuses_a_global_nested_inside_the_call() {
    let refusal = Call::read(&hex(NESTED_OS_SYSTEM), &Options::default()).unwrap_err();
    assert_eq!(refusal.form, Form::Pickle);
    assert!(refusal.close);
    assert!(
        refusal.error.message().contains("STACK_GLOBAL"),
        "{}",
        refusal.error
    );
}

/// A list of ten references to a list of ten references to … `levels` deep:
/// 10^levels nodes if references were copied.
fn memo_bomb(levels: u32) -> Vec<u8> {
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

#[test]
fn a_memo_bomb_fails_at_the_budget_quickly() {
    let started = std::time::Instant::now();
    let bytes = memo_bomb(40);
    assert!(bytes.len() < 2200);
    let error = refused(&bytes);
    assert!(error.contains("more than 67108864 bytes"), "{error}");
    assert!(error.contains("memo references expand"), "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // Parsing alone is linear: 40 levels make 41 nodes.
    assert!(parse(&bytes, &Options::default()).is_ok());
}

#[test]
fn a_dup_bomb_fails_at_the_budget() {
    // DUP + TUPLE2 doubles the tree 64 times: 2^64 leaves.
    let mut bytes = vec![0x80, 4, b'N'];
    for _ in 0..64 {
        bytes.extend_from_slice(&[b'2', 0x86]);
    }
    bytes.push(b'.');
    assert!(refused(&bytes).contains("memo references expand"));
}

#[test]
fn length_bombs_fail_without_allocating() {
    for op in [0x8d_u8, 0x8e, 0x96] {
        let mut bytes = vec![0x80, 4, op];
        bytes.extend_from_slice(&(1_u64 << 62).to_le_bytes());
        bytes.extend_from_slice(b"abc.");
        let error = refused(&bytes);
        assert!(
            error.contains("needs 4611686018427387904 more bytes but 4 are left"),
            "{error}"
        );
    }
    let error = refused(&[0x80, 4, b'X', 0xff, 0xff, 0xff, 0xff, b'.']);
    assert!(error.contains("but 1 are left"), "{error}");
}

#[test]
fn deep_nesting_fails_at_the_depth_limit() {
    let mut bytes = vec![0x80, 4];
    bytes.extend(std::iter::repeat_n(b']', 100_000));
    bytes.extend(std::iter::repeat_n(b'a', 99_999));
    bytes.push(b'.');
    assert!(refused(&bytes).contains("nested deeper than 100 levels"));
    let mut marks = vec![0x80, 4];
    marks.extend(std::iter::repeat_n(b'(', 100_000));
    marks.extend(std::iter::repeat_n(b't', 100_000));
    marks.push(b'.');
    assert!(refused(&marks).contains("nested deeper"));
}

#[test]
fn a_list_holding_itself_is_refused() {
    // l = []; l.append(l); pickle.dumps(l)
    let error = refused(&[0x80, 4, b']', 0x94, b'h', 0, b'a', b'.']);
    assert!(error.contains("holds itself"), "{error}");
}

#[test]
fn malformed_pickles_are_errors_not_panics() {
    for bytes in [
        &b""[..],
        b"\x80",
        b"\x80\x04",
        b"\x80\x09N.",
        b"N",
        b"NN.",
        b"a.",
        b"(.",
        b"t.",
        b"h\x00.",
        b"N.junk",
        b"Na.",
        b"}K\x01s.",
        b"\x8c\x02\xff\xfe.",
        b"\x8a\x11\x00.",
        b"\xff.",
    ] {
        assert!(read(bytes).is_err(), "{bytes:?}");
    }
}

#[test]
fn too_many_memo_entries_is_refused() {
    let options = Options {
        max_memo: 3,
        ..Options::default()
    };
    let bytes = [0x80, 4, b'N', 0x94, 0x94, 0x94, 0x94, b'.'];
    let error = read_value(&bytes, &options).unwrap_err().to_string();
    assert!(error.contains("more than 3 memo entries"), "{error}");
}

#[test]
fn reads_a_pickle_request_a_json_request_and_a_plain_one() {
    let expected = |form| Call {
        form,
        method: "add".into(),
        args: vec![int(2), int(3)],
        kwargs: vec![],
    };
    let options = Options::default();
    assert_eq!(
        Call::read(&hex(PICKLE_REQUEST), &options).unwrap(),
        expected(Form::Pickle)
    );
    assert_eq!(
        Call::read(&hex(JSON_REQUEST), &options).unwrap(),
        expected(Form::Json)
    );
    // pickle.dumps(('add', (2,), {'y': 3}))
    let plain = hex("80049516000000000000008c03616464944b0285947d948c0179944b037387942e");
    let call = Call::read(&plain, &options).unwrap();
    assert_eq!(call.form, Form::Plain);
    assert_eq!(call.kwargs, vec![("y".to_owned(), int(3))]);
}

#[test]
fn a_request_of_the_wrong_shape_is_answered_not_closed() {
    let refusal = Call::read(&write(&s("[1, 2]")), &Options::default()).unwrap_err();
    assert_eq!((refusal.form, refusal.close), (Form::Json, false));
    assert!(
        refusal
            .error
            .message()
            .contains("(name: str, args: tuple, kwargs: dict)")
    );
}

#[test]
fn requests_we_send_read_back() {
    #[derive(serde::Serialize)]
    struct AddArgs {
        x: i64,
        y: i64,
    }
    let args = AddArgs { x: 2, y: 3 };
    for form in [Form::Pickle, Form::Json] {
        let frame = request(form, "Calculator.add", &args).unwrap();
        let call = Call::read(&frame, &Options::default()).unwrap();
        assert_eq!((call.form, call.method.as_str()), (form, "add"));
        assert_eq!(call.args, vec![int(2), int(3)]);
    }
}

#[test]
fn a_pickled_exception_reply_is_read_as_an_error_naming_class_and_message() {
    // pickle.dumps(pickle.dumps(ImportError('no mod', name='m'))): REDUCE, then BUILD with a dict.
    let inner = hex(
        "80049538000000000000008c086275696c74696e73948c0b496d706f72744572726f729493948c066e6f206d6f6494859452947d948c046e616d65948c016d9473622e",
    );
    let frame = write(&PyValue::Bytes(inner));
    let fault = read_reply(Form::Pickle, &frame, &Options::default())
        .unwrap()
        .unwrap_err();
    assert_eq!(
        fault.message,
        "the Python server raised ImportError: no mod"
    );
    assert_eq!(fault.code, ErrorKind::Application.code());
    // A class of the server's own module keeps its module in the name.
    let inner = super::write_exception("__main__", "MyError", "bad");
    let fault = read_reply(
        Form::Pickle,
        &write(&PyValue::Bytes(inner)),
        &Options::default(),
    );
    assert_eq!(
        fault.unwrap().unwrap_err().message,
        "the Python server raised __main__.MyError: bad"
    );
}

#[test]
fn an_exception_shape_does_not_open_the_door_to_other_globals() {
    let exceptions = Options {
        exceptions: true,
        ..Options::default()
    };
    // os.system('echo pwned') is read as data only; nothing runs, and a
    // reply of that shape is only ever reported as an error.
    let decoded = parse(&hex(OS_SYSTEM), &exceptions)
        .unwrap()
        .decode()
        .unwrap();
    assert!(matches!(decoded, Decoded::Exception(e) if e.class() == "posix.system"));
    // A global anywhere but as the whole reply is refused.
    let inside = [
        &[0x80, 4, b']', b'('][..],
        &hex(OS_SYSTEM)[2..hex(OS_SYSTEM).len() - 1],
        b"e.",
    ]
    .concat();
    let error = parse(&inside, &exceptions).unwrap().decode().unwrap_err();
    assert!(
        error.to_string().contains("a global inside a value"),
        "{error}"
    );
    // NEWOBJ, INST, OBJ stay refused, and REDUCE of anything but a class.
    for bytes in [&b"\x80\x04N)\x81."[..], b"\x80\x04N)R."] {
        assert!(parse(bytes, &exceptions).is_err(), "{bytes:?}");
    }
    // Plain decoding never accepts the shape.
    assert!(read(&hex(OS_SYSTEM)).is_err());
}

#[test]
fn json_replies_and_the_json_error_object() {
    let ok = write(&s("5"));
    let range = read_reply(Form::Json, &ok, &Options::default())
        .unwrap()
        .unwrap();
    assert_eq!(&ok[range], b"5");
    let error = error_reply(
        Form::Json,
        ErrorKind::MethodNotFound,
        "unknown method `mul`",
    );
    let PyValue::Str(text) = read(&error).unwrap() else {
        panic!("a JSON reply is a pickled str");
    };
    assert_eq!(
        text,
        r#"{"error":{"message":"unknown method `mul`","type":"AttributeError"}}"#
    );
    let fault = read_reply(Form::Json, &error, &Options::default())
        .unwrap()
        .unwrap_err();
    assert_eq!(
        fault.message,
        "the Python server raised AttributeError: unknown method `mul`"
    );
}

static ADD: crate::service::MethodInfo = crate::service::MethodInfo {
    name: "add",
    doc: "",
    params: &[
        crate::service::ParamInfo {
            name: "x",
            ty: "i64",
        },
        crate::service::ParamInfo {
            name: "y",
            ty: "i64",
        },
    ],
    returns: "i64",
    error: None,
    idempotent: true,
};

fn call(args: Vec<PyValue>, kwargs: &[(&str, i128)]) -> Call {
    Call {
        form: Form::Plain,
        method: "add".into(),
        args,
        kwargs: kwargs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), int(*v)))
            .collect(),
    }
}

#[test]
fn keyword_and_mixed_arguments_bind_to_parameter_names() {
    let both = |x, y| PyValue::Dict(vec![(s("x"), int(x)), (s("y"), int(y))]);
    assert_eq!(
        call(vec![], &[("x", 2), ("y", 3)]).params(&ADD).unwrap(),
        both(2, 3)
    );
    assert_eq!(
        call(vec![int(2)], &[("y", 3)]).params(&ADD).unwrap(),
        both(2, 3)
    );
    let reordered = call(vec![], &[("y", 3), ("x", 2)]).params(&ADD).unwrap();
    assert_eq!(
        reordered,
        PyValue::Dict(vec![(s("y"), int(3)), (s("x"), int(2))])
    );
}

#[test]
fn binding_errors_read_like_python() {
    let error = |c: Call| c.params(&ADD).unwrap_err().to_string();
    assert_eq!(
        error(call(vec![int(1), int(2), int(3)], &[])),
        "invalid params: invalid arguments for `add`: it takes 2 positional arguments (x, y) but 3 were given"
    );
    assert!(
        error(call(vec![], &[("z", 1)]))
            .contains("unexpected keyword argument `z`; the parameters are x, y")
    );
    assert!(error(call(vec![int(1)], &[("x", 1)])).contains("multiple values for argument `x`"));
}

#[test]
fn repr_looks_like_python() {
    let v = PyValue::Tuple(vec![
        PyValue::Str("it's".into()),
        PyValue::Tuple(vec![PyValue::Int(1)]),
        PyValue::Dict(vec![(
            PyValue::Str("a".into()),
            PyValue::Bytes(vec![0, b'x']),
        )]),
        PyValue::Bool(true),
        PyValue::None,
        PyValue::Float(1.0),
    ]);
    assert_eq!(
        v.to_string(),
        r"('it\'s', (1,), {'a': b'\x00x'}, True, None, 1.0)"
    );
}

#[test]
fn json_numbers_become_ints_or_floats() {
    let v = PyValue::from_json(serde_json::json!(["add", [2, 3.5, u64::MAX], {}]));
    assert_eq!(
        v,
        PyValue::List(vec![
            PyValue::Str("add".into()),
            PyValue::List(vec![
                PyValue::Int(2),
                PyValue::Float(3.5),
                PyValue::Int(u64::MAX.into())
            ]),
            PyValue::Dict(vec![]),
        ])
    );
}

#[test]
fn a_small_frame_gets_a_small_budget() {
    let bytes = memo_bomb(40);
    let options = Options::default().scaled_to(bytes.len());
    assert_eq!(options.budget, 1 << 20);
    let error = read_value(&bytes, &options).unwrap_err().to_string();
    assert!(error.contains("more than 1048576 bytes"), "{error}");
    assert_eq!(Options::default().scaled_to(1 << 30).budget, 64 << 20);
    // Dense plain data within the scaled budget still reads: 10,000 small ints.
    let ints = PyValue::List((0..10_000).map(|i| int(i % 200)).collect());
    let bytes = write(&ints);
    assert_eq!(
        read_value(&bytes, &Options::default().scaled_to(bytes.len())).unwrap(),
        ints
    );
}
