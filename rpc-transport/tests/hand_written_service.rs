//! The transport end to end with a service written by hand against
//! `rpc_core::Service` (no macro): over an in-memory pair and over TCP.

use std::time::Duration;

use rpc_core::__private::{
    BoxCall, MethodInfo, ParamInfo, ServiceInfo, decode_args, ok, unknown_method,
};
use rpc_core::service::{boxed, deferred};
use rpc_core::{Client, Error, ErrorKind, Registry, Service};
use rpc_transport::{ClientConfig, Connection, Server, ServerConfig};

struct Echo;

#[derive(serde::Serialize, serde::Deserialize)]
struct ShoutArgs {
    text: String,
}

static INFO: ServiceInfo = ServiceInfo {
    name: "Echo",
    doc: "",
    methods: &[
        MethodInfo {
            name: "shout",
            doc: "",
            params: &[ParamInfo {
                name: "text",
                ty: "String",
                schema: rpc_core::discover::known::<String>,
            }],
            returns: "String",
            error: None,
            returns_schema: rpc_core::discover::untyped,
            error_schema: None,
            idempotent: true,
            takes_stream: false,
            returns_stream: false,
        },
        MethodInfo {
            name: "bomb",
            doc: "",
            params: &[],
            returns: "Bomb",
            error: None,
            returns_schema: rpc_core::discover::untyped,
            error_schema: None,
            idempotent: false,
            takes_stream: false,
            returns_stream: false,
        },
        MethodInfo {
            name: "sleep",
            doc: "",
            params: &[],
            returns: "()",
            error: None,
            returns_schema: rpc_core::discover::untyped,
            error_schema: None,
            idempotent: false,
            takes_stream: false,
            returns_stream: false,
        },
    ],
};

#[derive(serde::Serialize, serde::Deserialize)]
struct NoArgs {}

/// A value whose `Serialize` panics, as a buggy user type might.
struct Bomb;

impl serde::Serialize for Bomb {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        panic!("the bomb went off")
    }
}

impl Service for Echo {
    fn info(&self) -> &'static ServiceInfo {
        &INFO
    }

    fn call(
        &self,
        method: &str,
        args: &mut dyn erased_serde::Deserializer<'_>,
    ) -> Result<BoxCall, Error> {
        match method {
            "shout" => {
                let a: ShoutArgs = decode_args("Echo.shout", args)?;
                // `deferred` shows the arguments to middleware until it runs.
                Ok(deferred(a, |a: ShoutArgs| async move {
                    ok(a.text.to_uppercase())
                }))
            }
            "bomb" => {
                let _: NoArgs = decode_args("Echo.bomb", args)?;
                Ok(boxed(async move { ok(Bomb) }))
            }
            "sleep" => {
                let _: NoArgs = decode_args("Echo.sleep", args)?;
                Ok(boxed(async move {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    ok(())
                }))
            }
            _ => Err(unknown_method(&INFO, method)),
        }
    }
}

/// The arguments of `Echo.shout`.
#[derive(serde::Serialize)]
struct Shout<'a> {
    text: &'a str,
}

fn client_config(address: &str, codec: &str) -> ClientConfig {
    ClientConfig::builder()
        .connect(address)
        .authkey("k")
        .codec(codec)
        .call_timeout(Duration::from_secs(5))
        .no_env()
        .build()
        .unwrap()
}

fn server(listen: &str) -> Server {
    let config = ServerConfig::builder()
        .listen(listen)
        .authkey("k")
        .no_env()
        .build()
        .unwrap();
    Server::new(config, Registry::new().with(Echo).unwrap())
}

/// A client served over an in-memory pair; the task serves that one stream.
async fn in_memory(codec: &str) -> (Client, tokio::task::JoinHandle<Result<(), Error>>) {
    let server = server("unused");
    let (a, b) = tokio::io::duplex(4096);
    let serving = tokio::spawn(async move { server.serve_stream(a, None).await });
    let connection = Connection::over(b, &client_config("unused", codec))
        .await
        .unwrap();
    (Client::new(connection), serving)
}

/// Binds `listen`, serves it on a task, and connects a client to it.
async fn over_a_listener(listen: &str, codec: &str) -> (Client, tokio::task::JoinHandle<()>) {
    let listening = server(listen).bind().await.unwrap();
    let address = listening.local_addr().to_owned();
    let serving = tokio::spawn(listening.serve());
    let config = client_config(&address, codec);
    let connect = rpc_transport::connect(&config);
    let client = tokio::time::timeout(Duration::from_secs(5), connect)
        .await
        .unwrap()
        .unwrap();
    (client, serving)
}

#[tokio::test]
async fn calls_cross_an_in_memory_pair_in_both_codecs() {
    for codec in ["bincode", "json"] {
        let (client, serving) = in_memory(codec).await;
        let out: String = client
            .call("Echo.shout", &Shout { text: "hi" })
            .await
            .unwrap();
        assert_eq!(out, "HI");
        let out: String = client.call("shout", &Shout { text: "bare" }).await.unwrap();
        assert_eq!(out, "BARE");
        let e = client
            .call::<_, String>("Echo.nope", &Shout { text: "" })
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MethodNotFound, "{e}");
        let e = client
            .with_timeout(Duration::from_millis(50))
            .call::<_, ()>("Echo.sleep", &NoArgs {})
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
        drop(client);
        tokio::time::timeout(Duration::from_secs(5), serving)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn calls_cross_tcp() {
    let (client, serving) = over_a_listener("127.0.0.1:0", "json").await;
    let calls = (0..100).map(|i| {
        let client = client.clone();
        async move {
            let text = format!("n{i}");
            client
                .call::<_, String>("Echo.shout", &Shout { text: &text })
                .await
        }
    });
    let outs = futures::future::join_all(calls).await;
    for (i, out) in outs.into_iter().enumerate() {
        assert_eq!(out.unwrap(), format!("N{i}"));
    }
    serving.abort();
}

#[cfg(unix)]
#[tokio::test]
async fn calls_cross_a_unix_socket() {
    let path = std::env::temp_dir().join(format!("rpc-test-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let (client, serving) = over_a_listener(&format!("unix:{}", path.display()), "bincode").await;
    let out: String = client
        .call("Echo.shout", &Shout { text: "unix" })
        .await
        .unwrap();
    assert_eq!(out, "UNIX");
    serving.abort();
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn a_panicking_serialize_fails_that_call_only_on_either_side() {
    for codec in ["bincode", "json"] {
        let (client, _serving) = in_memory(codec).await;

        // The reply's Serialize panics on the server.
        let e = client
            .call::<_, ()>("Echo.bomb", &NoArgs {})
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::HandlerPanic, "{e}");
        assert!(e.message().contains("the bomb went off"), "{e}");

        // The arguments' Serialize panics on the client.
        let e = client.call::<_, ()>("Echo.shout", &Bomb).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidParams, "{e}");
        assert!(e.message().contains("the bomb went off"), "{e}");

        let out: String = client
            .call("Echo.shout", &Shout { text: "still here" })
            .await
            .unwrap();
        assert_eq!(out, "STILL HERE", "{codec}");
    }
}
