//! The reader, the writer and the refusal rules.

use super::*;

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
    let budget = 2 * crate::budget::for_message(bytes.len());
    assert_eq!(options.budget, budget);
    assert!(budget < 1 << 20, "{budget}");
    let error = read_value(&bytes, &options).unwrap_err().to_string();
    assert!(
        error.contains(&format!("more than {budget} bytes")),
        "{error}"
    );
    assert_eq!(Options::default().scaled_to(1 << 30).budget, 64 << 20);
    // Dense plain data within the scaled budget still reads: 10,000 small ints.
    let ints = PyValue::List((0..10_000).map(|i| int(i % 200)).collect());
    let bytes = write(&ints);
    assert_eq!(
        read_value(&bytes, &Options::default().scaled_to(bytes.len())).unwrap(),
        ints
    );
}

#[test]
fn reading_itself_is_charged_to_the_budget() {
    // 100,000 DUPs of None: small, but a stack slot each.
    let mut bytes = vec![0x80, 4, b'N'];
    bytes.extend(std::iter::repeat_n(b'2', 100_000));
    bytes.push(b'.');
    let options = Options {
        budget: 1 << 20,
        ..Options::default()
    };
    let error = read_value(&bytes, &options).unwrap_err().to_string();
    assert_eq!(
        error,
        "pickle refused: reading the pickle would take more than 1048576 bytes of memory"
    );
}

#[test]
fn json_form_of_a_dict_with_int_keys_is_what_json_dumps_writes() {
    let dict = PyValue::Dict(vec![(int(1), s("a"))]);
    assert_eq!(serde_json::to_string(&dict).unwrap(), r#"{"1":"a"}"#);
    let bad = PyValue::Dict(vec![(PyValue::Tuple(vec![]), s("a"))]);
    assert!(serde_json::to_string(&bad).is_err());
}
