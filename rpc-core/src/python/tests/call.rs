//! The pattern's requests and replies, both sides, and argument binding.

use super::*;

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
        let frame = request_frame(form, "Calculator.add", &args).unwrap();
        let call = Call::read(&frame, &Options::default()).unwrap();
        assert_eq!((call.form, call.method.as_str()), (form, "add"));
        assert_eq!(call.args, vec![int(2), int(3)]);
    }
}

#[test]
fn py_json_refuses_nan_on_either_side_and_pickle_carries_it() {
    // The arguments as the macro's struct writes them: a tuple.
    let args = (1.5, f64::NAN);
    let e = request_frame(Form::Json, "Probe.half", &args).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidParams);
    assert_eq!(
        e.message(),
        "the arguments of `Probe.half` could not be encoded: the 2nd argument is NaN, and the \
         py-json codec cannot carry NaN or ±infinity; send it as a string, or use the pickle codec"
    );
    let e = reply(Form::Json, &Some(f64::INFINITY)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Internal);
    assert!(
        e.message()
            .starts_with("the result could not be encoded: it is +infinity, and the py-json codec"),
        "{e}"
    );
    assert!(request_frame(Form::Pickle, "Probe.half", &args).is_ok());
    assert!(reply(Form::Pickle, &f64::NAN).is_ok());
    assert!(request_frame(Form::Json, "Probe.half", &(1.5, None::<f64>)).is_ok());
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
    let inner = crate::python::write_exception("__main__", "MyError", "bad");
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
            schema: crate::discover::known::<i64>,
        },
        crate::service::ParamInfo {
            name: "y",
            ty: "i64",
            schema: crate::discover::known::<i64>,
        },
    ],
    returns: "i64",
    error: None,
    returns_schema: crate::discover::untyped,
    error_schema: None,
    idempotent: true,
    takes_stream: false,
    returns_stream: false,
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
fn the_codecs_answer_as_the_serve_loop_does_and_point_requests_elsewhere() {
    use crate::codec::{Codec, Id, Incoming};
    use crate::python::{Pickle, PyJson};
    let mut dst = bytes::BytesMut::new();
    let ok: crate::service::Reply = Ok(Box::new(5_i64));
    Pickle.encode_response(&mut dst, &Id::Null, &ok).unwrap();
    assert_eq!(&dst[..], reply(Form::Pickle, &5_i64).unwrap());
    let mut dst = bytes::BytesMut::new();
    let failed: crate::service::Reply =
        Err(crate::Error::new(ErrorKind::InvalidParams, "no").into());
    PyJson
        .encode_response(&mut dst, &Id::Null, &failed)
        .unwrap();
    assert_eq!(
        &dst[..],
        error_reply(Form::Json, ErrorKind::InvalidParams, "no")
    );
    let Incoming::Invalid { error, .. } = Pickle.decode_request(&hex(PICKLE_REQUEST)) else {
        panic!("a Python request is not read by the codec");
    };
    assert!(error.message().contains("Call::read"), "{error}");
}

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
enum Image {
    Png { data: crate::Bytes },
    Raw(Vec<crate::Bytes>),
}

#[test]
fn bytes_are_python_bytes_nested_too_and_read_back() {
    let png = crate::Bytes::from(&b"\x89PNG"[..]);
    let bytes = || PyValue::Bytes(b"\x89PNG".to_vec());
    assert_eq!(crate::python::to_value(&png).unwrap(), bytes());
    let nested = crate::python::to_value(&vec![
        Image::Png { data: png.clone() },
        Image::Raw(vec![png.clone()]),
    ])
    .unwrap();
    let png_dict = PyValue::Dict(vec![(s("data"), bytes())]);
    assert_eq!(
        nested,
        PyValue::List(vec![
            PyValue::Dict(vec![(s("Png"), png_dict)]),
            PyValue::Dict(vec![(s("Raw"), PyValue::List(vec![bytes()]))]),
        ])
    );
    let back: Vec<Image> = serde::Deserialize::deserialize(nested).unwrap();
    assert_eq!(back[0], Image::Png { data: png.clone() });
    // The JSON form stays base64.
    let Ok(PyValue::Bytes(inner)) = read(&reply(Form::Pickle, &png).unwrap()) else {
        panic!("a pickle reply is a pickled bytes");
    };
    assert_eq!(read(&inner).unwrap(), bytes());
    assert_eq!(
        read(&reply(Form::Json, &png).unwrap()).unwrap(),
        s("\"iVBORw==\"")
    );
}

#[test]
fn a_typed_error_carries_its_data_as_an_attribute_or_a_json_member() {
    use super::super::call::error_reply_with;
    let data = serde_json::json!({"OutOfStock": {"sku": "a-1", "left": 0}});
    let pickled = error_reply_with(Form::Plain, ErrorKind::Application, "no", Some(&data));
    // pickle.dumps(e) for e = RuntimeError('no'); e.data = {...}: REDUCE, then BUILD.
    assert!(pickled.ends_with(b"ub."), "{pickled:x?}");
    let exceptions = Options {
        exceptions: true,
        ..Options::default()
    };
    let Decoded::Exception(e) = parse(&pickled, &exceptions).unwrap().decode().unwrap() else {
        panic!("an exception");
    };
    assert_eq!(
        (e.class(), e.message()),
        ("RuntimeError".into(), "no".into())
    );
    let fields = PyValue::Dict(vec![(s("left"), int(0)), (s("sku"), s("a-1"))]);
    let expected = PyValue::Dict(vec![(s("OutOfStock"), fields)]);
    assert_eq!(e.state, Some(PyValue::Dict(vec![(s("data"), expected)])));
    let fault = read_reply(
        Form::Pickle,
        &super::super::call::wrap(Form::Pickle, pickled),
        &Options::default(),
    )
    .unwrap()
    .unwrap_err();
    assert_eq!(fault.message, "the Python server raised RuntimeError: no");

    let json = error_reply_with(Form::Json, ErrorKind::Application, "no", Some(&data));
    assert_eq!(
        read(&json).unwrap(),
        s(
            r#"{"error":{"data":{"OutOfStock":{"left":0,"sku":"a-1"}},"message":"no","type":"RuntimeError"}}"#
        )
    );
    let fault = read_reply(Form::Json, &json, &Options::default())
        .unwrap()
        .unwrap_err();
    assert_eq!(fault.message, "the Python server raised RuntimeError: no");
    // Without data, the reply is what it always was.
    assert_eq!(
        error_reply_with(Form::Pickle, ErrorKind::Application, "no", None),
        error_reply(Form::Pickle, ErrorKind::Application, "no")
    );
}

#[test]
fn a_request_carries_bytes_as_bytes_in_pickle_and_base64_in_json() {
    let args = (crate::Bytes::from(&b"hi"[..]),);
    let PyValue::Bytes(inner) = read(&request_frame(Form::Pickle, "S.m", &args).unwrap()).unwrap()
    else {
        panic!("a pickle request is a pickled bytes");
    };
    let call = PyValue::Tuple(vec![
        s("m"),
        PyValue::Tuple(vec![PyValue::Bytes(b"hi".to_vec())]),
        PyValue::Dict(vec![]),
    ]);
    assert_eq!(read(&inner).unwrap(), call);
    let json = read(&request_frame(Form::Json, "S.m", &args).unwrap()).unwrap();
    assert_eq!(json, s(r#"["m",["aGk="],{}]"#));
}
