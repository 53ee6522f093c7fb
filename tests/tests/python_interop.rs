//! Python interop against the real interpreter: stock Python 3
//! `multiprocessing` clients (the scripts in `tests/python/`) calling our
//! calculator server over pickle and JSON, our typed client calling a
//! Python server in the same pattern, both handshake generations, and
//! malicious pickles.
//!
//! Every Python process is killed when its handle drops, so a failing
//! assertion or a timeout never leaves one behind. Without `python3` on the
//! `PATH` the tests say so and pass.

mod common;

use std::process::{Output, Stdio};
use std::time::Duration;

use common::{ServerGuard, client_builder, serve_with, server_builder, within, within_for};
use examples::calculator::{Calc, CalculatorClient, CalculatorServer};
use rpc_core::{CallError, Client, ErrorKind, Registry};
use rpc_transport::{Server, ServerConfig};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python");

/// How long one Python script may run.
const SCRIPT_LIMIT: Duration = Duration::from_secs(60);

fn python_available() -> bool {
    std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

macro_rules! require_python {
    () => {
        if !python_available() {
            eprintln!("skipped: no python3 on the PATH");
            return;
        }
    };
}

fn python(script: &str, args: &[&str]) -> Command {
    let mut command = Command::new("python3");
    command
        .arg("-u")
        .arg(script)
        .args(args)
        .current_dir(SCRIPTS)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Runs a script to its end and returns its stdout; fails on a non-zero exit.
async fn run(script: &str, args: &[&str]) -> String {
    let output: Output = within_for(SCRIPT_LIMIT, script, python(script, args).output())
        .await
        .expect("python3 starts");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    assert!(
        output.status.success(),
        "{script} failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    println!("--- {script} {}\n{stdout}", args.join(" "));
    stdout
}

/// The calculator, serving Python peers too.
async fn calculator(allow_legacy: bool) -> ServerGuard {
    let config = server_builder()
        .python_compat(true)
        .allow_legacy_auth(allow_legacy)
        .build()
        .expect("a valid server config");
    let registry = Registry::new().with(CalculatorServer::new(Calc)).unwrap();
    serve_with(config, registry).await
}

fn port(server: &ServerGuard) -> String {
    server.address.rsplit(':').next().unwrap().to_owned()
}

// ---------------------------------------------------------------------------
// A Python client, our server.
// ---------------------------------------------------------------------------

const SUCCESSES: &[&str] = &[
    "add(2, 3) = 5\n",
    "sub(2, 3) = -1\n",
    "add(x=2, y=3) = 5\n",
    "sub(2, y=3) = -1\n",
    "add(40, 2) = 42\n",
];

#[tokio::test]
async fn a_python_3_11_client_calls_the_calculator_over_pickle() {
    require_python!();
    let server = calculator(true).await;
    let out = run("client.py", &[&port(&server), common::KEY, "pickle"]).await;
    for line in SUCCESSES {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }
    for line in [
        "div(1, 0) raised RuntimeError: `Calculator.div` failed: division by zero\n",
        "mul(2, 3) raised AttributeError: unknown method `mul`; known methods: Calculator.add(x: i64, y: i64) -> i64",
        "add(1, 2, 3) raised TypeError: invalid arguments for `Calculator.add`: it takes 2 positional arguments (x, y) but 3 were given\n",
        "add(2, z=3) raised TypeError: invalid arguments for `Calculator.add`: unexpected keyword argument `z`; the parameters are x, y\n",
    ] {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }
}

#[tokio::test]
async fn a_python_3_11_client_calls_the_calculator_over_json() {
    require_python!();
    let server = calculator(true).await;
    let out = run("client.py", &[&port(&server), common::KEY, "json"]).await;
    for line in SUCCESSES {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }
    for line in [
        "div(1, 0) = {'error': {'data': 'DivideByZero', 'message': '`Calculator.div` failed: division by zero', 'type': 'RuntimeError'}}\n",
        "mul(2, 3) = {'error': {'message': 'unknown method `mul`; known methods:",
        "add(2, z=3) = {'error': {'message': 'invalid arguments for `Calculator.add`: unexpected keyword argument `z`",
    ] {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }
}

#[tokio::test]
async fn a_python_client_sending_the_bare_tuple_gets_bare_replies() {
    require_python!();
    let server = calculator(true).await;
    let out = run("client.py", &[&port(&server), common::KEY, "plain"]).await;
    assert!(out.contains("add(x=2, y=3) = 5\n"), "{out}");
    assert!(
        out.contains("div(1, 0) raised RuntimeError: `Calculator.div` failed: division by zero\n"),
        "{out}"
    );
}

#[tokio::test]
async fn a_python_client_may_wait_before_its_first_call() {
    require_python!();
    let config = server_builder()
        .python_compat(true)
        .allow_legacy_auth(true)
        .handshake_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let registry = Registry::new().with(CalculatorServer::new(Calc)).unwrap();
    let server = serve_with(config, registry).await;
    let out = run(
        "client.py",
        &[&port(&server), common::KEY, "pickle", "--idle", "1"],
    )
    .await;
    assert!(out.contains("add(2, 3) = 5\n"), "{out}");
}

#[tokio::test]
async fn a_python_client_with_the_modern_handshake_needs_no_legacy_auth() {
    require_python!();
    let server = calculator(false).await;
    let out = run(
        "client.py",
        &[&port(&server), common::KEY, "pickle", "--modern"],
    )
    .await;
    assert!(out.contains("add(2, 3) = 5\n"), "{out}");
}

/// Serves one connection on a listener of our own, so the test sees the
/// server's error for it; the Python client runs alongside.
async fn serve_one(config: ServerConfig, args: &[&str]) -> (rpc_core::Error, Output) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let mut full = args.to_vec();
    full[0] = &port;
    let client = python("client.py", &full)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    let (stream, peer) = within("the Python client to connect", listener.accept())
        .await
        .unwrap();
    let server = Server::new(
        config,
        Registry::new().with(CalculatorServer::new(Calc)).unwrap(),
    );
    let served = within(
        "the connection to end",
        server.serve_stream(stream, Some(peer)),
    )
    .await;
    let output = within("the Python client to exit", client.wait_with_output())
        .await
        .unwrap();
    (served.expect_err("the connection is refused"), output)
}

#[tokio::test]
async fn a_legacy_python_client_is_refused_naming_the_setting() {
    require_python!();
    let config = server_builder().python_compat(true).build().unwrap();
    let (error, output) = serve_one(config, &["", common::KEY, "pickle"]).await;
    assert_eq!(error.kind(), ErrorKind::Authentication);
    assert!(
        error.message().contains("allow_legacy_auth = true"),
        "{error}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("AuthenticationError: digest sent was rejected"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_python_client_is_refused_without_python_compat() {
    require_python!();
    let config = server_builder().allow_legacy_auth(true).build().unwrap();
    let (error, output) = serve_one(config, &["", common::KEY, "pickle"]).await;
    assert_eq!(error.kind(), ErrorKind::Protocol);
    assert!(
        error.message().contains("set `python_compat = true`"),
        "{error}"
    );
    assert!(!output.status.success());
}

#[tokio::test]
async fn our_clients_and_python_clients_share_one_port() {
    require_python!();
    let server = calculator(true).await;
    let ours = CalculatorClient::new(common::connect(&server.address, "json").await);
    let port = port(&server);
    let args = [port.as_str(), common::KEY, "json"];
    let (python, sum) = tokio::join!(run("client.py", &args), ours.add(20, 22));
    assert_eq!(sum.unwrap(), 42);
    assert!(python.contains("add(2, 3) = 5\n"), "{python}");
}

#[tokio::test]
async fn malicious_pickles_are_refused_and_the_connection_closed() {
    require_python!();
    let server = calculator(true).await;
    let marker = std::env::temp_dir().join(format!("rpc-pwned-{}", std::process::id()));
    let marker = marker.to_str().unwrap();
    let out = run("evil.py", &[&port(&server), common::KEY, marker]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 8, "{out}");
    for line in &lines[..7] {
        assert!(line.contains("got ValueError: "), "{line}");
        assert!(line.ends_with("closed: True"), "{line}");
    }
    for (line, why) in [
        (0, "refused pickle opcode STACK_GLOBAL (0x93)"),
        (1, "refused pickle opcode GLOBAL (0x63) at byte 0"),
        (2, "refused pickle opcode STACK_GLOBAL (0x93)"),
        (3, "memo references expand each time they are used"),
        (4, "needs 4611686018427387904 more bytes"),
        (5, "needs 4611686018427387904 more bytes"),
        (6, "containers nested deeper than 100 levels"),
    ] {
        assert!(lines[line].contains(why), "{why:?} in {}", lines[line]);
    }
    assert_eq!(lines[7], "os.system ran: False");
    assert!(!std::path::Path::new(marker).exists());
}

// ---------------------------------------------------------------------------
// Our client, speaking the pattern.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn our_pickle_and_py_json_clients_call_our_own_server_too() {
    let server = calculator(false).await;
    for codec in ["pickle", "py-json"] {
        let config = client_builder(&server.address, codec).build().unwrap();
        let client = within("connecting", rpc_transport::connect(&config))
            .await
            .unwrap();
        let calc = CalculatorClient::new(client);
        assert_eq!(calc.add(2, 3).await.unwrap(), 5);
        assert_eq!(calc.sub(2, 3).await.unwrap(), -1);
        let Err(CallError::Rpc(error)) = calc.div(1, 0).await else {
            panic!("div(1, 0) fails");
        };
        assert_eq!(error.kind(), ErrorKind::Application);
        assert_eq!(
            error.message(),
            "the Python server raised RuntimeError: `Calculator.div` failed: division by zero"
        );
        assert_eq!(calc.add(40, 2).await.unwrap(), 42, "{codec}: still usable");
    }
}

#[tokio::test]
async fn a_request_over_the_frame_limit_fails_alone() {
    let server = calculator(false).await;
    let config = client_builder(&server.address, "pickle")
        .max_frame_bytes(1024)
        .build()
        .unwrap();
    let client = within("connecting", rpc_transport::connect(&config))
        .await
        .unwrap();
    let error = client
        .call::<_, i64>("add", &("x".repeat(2000), 1))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::FrameTooLarge, "{error}");
    let calc = CalculatorClient::new(client);
    assert_eq!(calc.add(2, 3).await.unwrap(), 5);
}

// ---------------------------------------------------------------------------
// Our client, a Python server.
// ---------------------------------------------------------------------------

/// A Python server in the pattern, killed when dropped.
struct PythonServer {
    _child: Child,
    address: String,
}

async fn python_server(variant: &str, modern: bool) -> PythonServer {
    let mut args = vec![common::KEY, variant];
    if modern {
        args.push("--modern");
    }
    // Its stderr would show the JSON handler's traceback, which is expected.
    let mut child = python("server.py", &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = within("the Python server to listen", lines.next_line())
        .await
        .unwrap()
        .expect("server.py prints `listening PORT`");
    let port = line.strip_prefix("listening ").expect("`listening PORT`");
    PythonServer {
        _child: child,
        address: format!("127.0.0.1:{port}"),
    }
}

async fn connect_python(
    server: &PythonServer,
    codec: &str,
    legacy: bool,
) -> Result<Client, rpc_core::Error> {
    let config = client_builder(&server.address, codec)
        .allow_legacy_auth(legacy)
        .call_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    within(
        "connecting to the Python server",
        rpc_transport::connect(&config),
    )
    .await
}

#[tokio::test]
async fn our_typed_client_calls_a_python_server_over_pickle_and_json() {
    require_python!();
    for codec in ["pickle", "py-json"] {
        let variant = if codec == "pickle" { "pickle" } else { "json" };
        let server = python_server(variant, false).await;
        let calc = CalculatorClient::new(connect_python(&server, codec, true).await.unwrap());
        let (sum, difference) = (calc.add(2, 3).await.unwrap(), calc.sub(2, 3).await.unwrap());
        println!("{codec}: add(2, 3) = {sum}, sub(2, 3) = {difference}");
        assert_eq!((sum, difference), (5, -1));
        assert_eq!(calc.div(7, 2).await.unwrap(), 3);
    }
}

#[tokio::test]
async fn our_client_speaks_the_modern_handshake_to_a_python_server() {
    require_python!();
    let server = python_server("pickle", true).await;
    let calc = CalculatorClient::new(connect_python(&server, "pickle", false).await.unwrap());
    assert_eq!(calc.add(2, 3).await.unwrap(), 5);
}

#[tokio::test]
async fn our_client_refuses_a_legacy_python_server_naming_the_setting() {
    require_python!();
    let server = python_server("pickle", false).await;
    let error = connect_python(&server, "pickle", false).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Authentication);
    assert!(
        error.message().contains("allow_legacy_auth = true"),
        "{error}"
    );
}

#[tokio::test]
async fn a_python_exception_comes_back_naming_its_class_and_message() {
    require_python!();
    let server = python_server("pickle", false).await;
    let client = connect_python(&server, "pickle", true).await.unwrap();
    let calc = CalculatorClient::new(client.clone());
    let Err(CallError::Rpc(error)) = calc.div(1, 0).await else {
        panic!("div(1, 0) fails");
    };
    println!("div(1, 0): {error}");
    assert_eq!(error.kind(), ErrorKind::Application);
    assert_eq!(
        error.message(),
        "the Python server raised ZeroDivisionError: integer division or modulo by zero"
    );
    let error = client.call::<_, i64>("boom", &("x",)).await.unwrap_err();
    println!("boom('x'): {error}");
    assert_eq!(
        error.message(),
        "the Python server raised __main__.MyError: boom: x"
    );
    let error = client.call::<_, i64>("missing", &("m",)).await.unwrap_err();
    println!("missing('m'): {error}");
    assert_eq!(
        error.message(),
        "the Python server raised ImportError: no module named m"
    );
    // The connection is still good.
    assert_eq!(calc.add(2, 3).await.unwrap(), 5);
}

#[tokio::test]
async fn a_python_json_server_that_raises_sends_nothing_and_the_call_times_out() {
    require_python!();
    let server = python_server("json", false).await;
    let calc = CalculatorClient::new(connect_python(&server, "py-json", true).await.unwrap());
    let Err(CallError::Rpc(error)) = calc.div(1, 0).await else {
        panic!("div(1, 0) fails");
    };
    println!("py-json div(1, 0): {error}");
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(
        error.message().contains("the Python server sent nothing"),
        "{error}"
    );
    assert!(
        error
            .message()
            .contains("json.dumps cannot encode the exception"),
        "{error}"
    );
    let error = calc.add(2, 3).await.unwrap_err();
    println!("py-json add(2, 3) after it: {error}");
    assert_eq!(error.kind(), ErrorKind::ConnectionLost);
    assert!(error.message().contains("connect again"), "{error}");
}
