//! The explorer page in a real browser: Debian's Chromium, headless, driven
//! through chromedriver with fantoccini. It loads the page (Basic auth from
//! the URL), finds `Calculator.add`, calls it through the form with
//! `[2, 3]` and reads `5`, calls `Calculator.div` with `[1, 0]` and reads the
//! `DivideByZero` error, sees the live chart's data change after the calls,
//! and saves a screenshot as `target/explorer.png`.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`apt-get install
//! chromium chromium-driver`; `.ci/run` installs them): without them the
//! test fails and says so. Every wait is bounded.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{server_builder, within, within_for};
use examples::calculator::{Calc, CalculatorServer};
use examples::kv::{KeyValueServer, MemoryStore};
use fantoccini::{Client, ClientBuilder, Locator};
use rpc_core::Registry;
use rpc_transport::Server;
use rpc_transport::http::{HttpConfig, HttpGateway};
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

const PASSWORD: &str = "explorer-browser-password";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The longest any one step may take: a cold Chromium starts in seconds.
const STEP: Duration = Duration::from_secs(30);

/// chromedriver, killed when dropped (it ends the browsers it started).
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

/// A free port on 127.0.0.1 for chromedriver, which takes no port 0.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds a port");
    listener.local_addr().expect("an address").port()
}

async fn start_driver() -> (Driver, String) {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: the explorer's browser test needs Debian's Chromium \
             (apt-get install -y chromium chromium-driver; .ci/run installs them)"
        );
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    let ready = async {
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    within_for(STEP, "chromedriver to listen", ready).await;
    (Driver(child), url)
}

async fn browser(driver: &str) -> Client {
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            // As root, Chromium runs only without its sandbox.
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1000"],
        },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let connect = ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(driver)
        .await;
    connect.unwrap_or_else(|e| panic!("chromedriver opens a Chromium session: {e}"))
}

/// The TCP server's gateway, stopped when dropped.
struct Gateway(String, JoinHandle<()>);

impl Drop for Gateway {
    fn drop(&mut self) {
        self.1.abort();
    }
}

async fn gateway() -> Gateway {
    let registry = Registry::new()
        .with(CalculatorServer::new(Calc))
        .and_then(|r| r.with(KeyValueServer::new(MemoryStore::default())))
        .expect("the services register");
    let config = server_builder().build().expect("a valid server config");
    let server = Server::new(config, registry);
    let http = HttpConfig::builder()
        .listen("127.0.0.1:0")
        .password(PASSWORD)
        .build()
        .expect("a valid [http] config");
    let gateway = HttpGateway::new(http, &server).expect("the gateway builds");
    let listening = within("the gateway to bind", gateway.bind())
        .await
        .expect("binds");
    Gateway(
        listening.local_addr().to_owned(),
        tokio::spawn(listening.serve()),
    )
}

/// Waits, within [`STEP`], until `script` returns something `done` likes.
async fn until(page: &Client, what: &str, script: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let value = within_for(STEP, what, page.execute(script, vec![]))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        if done(&value) {
            return value;
        }
        assert!(
            started.elapsed() < STEP,
            "{what}: still {value} after {STEP:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Calls `method` through its form with `args`; returns the output's
/// class and text once the answer is shown.
async fn call(page: &Client, method: &str, args: &str) -> (String, String) {
    let card = format!(r#"[data-method="{method}"]"#);
    let field = page
        .find(Locator::Css(&format!("{card} textarea")))
        .await
        .unwrap_or_else(|e| panic!("{method} has an arguments field: {e}"));
    field.clear().await.expect("clears");
    field.send_keys(args).await.expect("types");
    let button = page
        .find(Locator::Css(&format!("{card} button")))
        .await
        .expect("a Call button");
    button.click().await.expect("clicks");
    let script = format!(
        r#"const o = document.querySelector('{card} output');
           return o.classList.contains('ok') || o.classList.contains('error')
             ? [o.className, o.textContent] : null;"#
    );
    let shown = until(page, &format!("{method}'s answer"), &script, |v| {
        !v.is_null()
    })
    .await;
    (
        shown[0].as_str().unwrap_or_default().to_owned(),
        shown[1].as_str().unwrap_or_default().to_owned(),
    )
}

fn screenshot_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("explorer.png")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_lists_calls_and_charts_in_chromium() {
    let gateway = gateway().await;
    let (_driver, driver_url) = start_driver().await;
    let page = within_for(STEP, "a Chromium session", browser(&driver_url)).await;
    let url = format!("http://rpc:{PASSWORD}@{}/", gateway.0);
    within_for(STEP, "the page to load", page.goto(&url))
        .await
        .expect("the page loads");

    // 1. The page read rpc.discover and drew every method.
    let ready = "return document.body.dataset.ready === 'true' \
                 || document.getElementById('status').textContent;";
    let ready = until(&page, "the methods to be drawn", ready, |v| {
        v == &json!(true)
    })
    .await;
    assert_eq!(ready, json!(true));
    let title = page.title().await.expect("a title");
    assert_eq!(title, "rpc explorer");

    // 2. Calculator.add, by its qualified name, with its signature and doc.
    let add = page
        .find(Locator::Css(r#"[data-method="Calculator.add"]"#))
        .await
        .expect("Calculator.add is listed");
    let text = add.text().await.expect("its text");
    assert!(text.contains("Calculator.add"), "{text}");
    assert!(text.contains("add(x: i64, y: i64) -> i64"), "{text}");
    assert!(text.contains("Adds two numbers."), "{text}");
    let charted = "return window.rpcExplorer.ticks;";
    until(&page, "a first /metrics read", charted, |v| {
        v.as_u64() >= Some(1)
    })
    .await;
    let before = page
        .execute("return window.rpcExplorer.chartData();", vec![])
        .await
        .expect("the chart's data");

    // 3. [2, 3] reads 5.
    let (class, shown) = call(&page, "Calculator.add", "[2, 3]").await;
    assert_eq!((class.as_str(), shown.as_str()), ("result ok", "5"));
    // Named arguments work as well.
    let (_, shown) = call(&page, "Calculator.add", r#"{"x": 40, "y": 2}"#).await;
    assert_eq!(shown, "42");

    // 4. [1, 0] reads the DivideByZero error, with its code and message.
    let (class, shown) = call(&page, "Calculator.div", "[1, 0]").await;
    assert_eq!(class, "result error", "{shown}");
    assert!(shown.contains("-32000"), "{shown}");
    assert!(shown.contains("division by zero"), "{shown}");
    assert!(shown.contains("DivideByZero"), "{shown}");

    // 5. The chart's data changes: add's calls per second rise above zero.
    let rose = "const s = window.rpcExplorer.chartData()['Calculator.add'] || []; \
                return s.some((v) => v > 0) ? s : null;";
    let after = until(&page, "the chart to show the calls", rose, |v| !v.is_null()).await;
    assert_ne!(before["Calculator.add"], after, "the chart did not change");
    let calls = "return document.querySelector('#rates tr[data-method=\"Calculator.add\"] .calls')?.textContent;";
    until(&page, "the table to count add's calls", calls, |v| v == "2").await;

    // 6. A screenshot, for people and for the README.
    let png = within_for(STEP, "a screenshot", page.screenshot())
        .await
        .expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let path = screenshot_path();
    std::fs::create_dir_all(path.parent().expect("a directory")).expect("target/ exists");
    std::fs::write(&path, &png).expect("the screenshot is saved");
    println!("screenshot: {}", path.display());
    within_for(STEP, "the session to close", page.close())
        .await
        .expect("closes");
}
