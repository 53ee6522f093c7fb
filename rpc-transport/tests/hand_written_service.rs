//! The transport end to end with a service written by hand against
//! `rpc_core::Service` (no macro): over an in-memory pair and over TCP.

use std::time::Duration;

use rpc_core::__private::{
    BoxFuture, MethodInfo, ParamInfo, Reply, ServiceInfo, decode_args, ok, unknown_method,
};
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
            }],
            returns: "String",
            error: None,
            idempotent: true,
        },
        MethodInfo {
            name: "bomb",
            doc: "",
            params: &[],
            returns: "Bomb",
            error: None,
            idempotent: false,
        },
        MethodInfo {
            name: "sleep",
            doc: "",
            params: &[],
            returns: "()",
            error: None,
            idempotent: false,
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
    ) -> Result<BoxFuture<Reply>, Error> {
        match method {
            "shout" => {
                let a: ShoutArgs = decode_args("Echo.shout", args)?;
                Ok(Box::pin(async move { ok(a.text.to_uppercase()) }))
            }
            "bomb" => {
                let _: NoArgs = decode_args("Echo.bomb", args)?;
                Ok(Box::pin(async move { ok(Bomb) }))
            }
            "sleep" => {
                let _: NoArgs = decode_args("Echo.sleep", args)?;
                Ok(Box::pin(async move {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    ok(())
                }))
            }
            _ => Err(unknown_method(&INFO, method)),
        }
    }
}

fn configs(codec: &str) -> (ServerConfig, ClientConfig) {
    let server = ServerConfig::builder()
        .listen("127.0.0.1:0")
        .authkey("k")
        .no_env()
        .build()
        .unwrap();
    let client = ClientConfig::builder()
        .connect("unused")
        .authkey("k")
        .codec(codec)
        .call_timeout(Duration::from_secs(5))
        .no_env()
        .build()
        .unwrap();
    (server, client)
}

#[tokio::test]
async fn calls_cross_an_in_memory_pair_in_both_codecs() {
    for codec in ["bincode", "json"] {
        let (server_config, client_config) = configs(codec);
        let server = Server::new(server_config, Registry::new().with(Echo).unwrap());
        let (a, b) = tokio::io::duplex(4096);
        let serving = tokio::spawn(async move { server.serve_stream(a, None).await });
        let client = Client::new(Connection::over(b, &client_config).await.unwrap());
        #[derive(serde::Serialize)]
        struct Args<'a> {
            text: &'a str,
        }
        let out: String = client
            .call("Echo.shout", &Args { text: "hi" })
            .await
            .unwrap();
        assert_eq!(out, "HI");
        let out: String = client.call("shout", &Args { text: "bare" }).await.unwrap();
        assert_eq!(out, "BARE");
        let e = client
            .call::<_, String>("Echo.nope", &Args { text: "" })
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
    let (server_config, _) = configs("json");
    let listening = Server::new(server_config, Registry::new().with(Echo).unwrap())
        .bind()
        .await
        .unwrap();
    let address = listening.local_addr().to_owned();
    let server = tokio::spawn(listening.serve());
    let client_config = ClientConfig::builder()
        .connect(address)
        .authkey("k")
        .codec("json")
        .no_env()
        .build()
        .unwrap();
    let client = tokio::time::timeout(
        Duration::from_secs(5),
        rpc_transport::connect(&client_config),
    )
    .await
    .unwrap()
    .unwrap();
    #[derive(serde::Serialize)]
    struct Args {
        text: String,
    }
    let calls = (0..100).map(|i| {
        let client = client.clone();
        async move {
            client
                .call::<_, String>(
                    "Echo.shout",
                    &Args {
                        text: format!("n{i}"),
                    },
                )
                .await
        }
    });
    let outs = futures::future::join_all(calls).await;
    for (i, out) in outs.into_iter().enumerate() {
        assert_eq!(out.unwrap(), format!("N{i}"));
    }
    server.abort();
}

#[cfg(unix)]
#[tokio::test]
async fn calls_cross_a_unix_socket() {
    let path = std::env::temp_dir().join(format!("rpc-test-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let address = format!("unix:{}", path.display());
    let server_config = ServerConfig::builder()
        .listen(&address)
        .authkey("k")
        .no_env()
        .build()
        .unwrap();
    let listening = Server::new(server_config, Registry::new().with(Echo).unwrap())
        .bind()
        .await
        .unwrap();
    assert_eq!(listening.local_addr(), address);
    let server = tokio::spawn(listening.serve());
    let client_config = ClientConfig::builder()
        .connect(&address)
        .authkey("k")
        .no_env()
        .build()
        .unwrap();
    let client = tokio::time::timeout(
        Duration::from_secs(5),
        rpc_transport::connect(&client_config),
    )
    .await
    .unwrap()
    .unwrap();
    #[derive(serde::Serialize)]
    struct Args {
        text: &'static str,
    }
    let out: String = client
        .call("Echo.shout", &Args { text: "unix" })
        .await
        .unwrap();
    assert_eq!(out, "UNIX");
    server.abort();
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn a_panicking_serialize_fails_that_call_only_on_either_side() {
    for codec in ["bincode", "json"] {
        let (server_config, client_config) = configs(codec);
        let server = Server::new(server_config, Registry::new().with(Echo).unwrap());
        let (a, b) = tokio::io::duplex(4096);
        let _serving = tokio::spawn(async move { server.serve_stream(a, None).await });
        let client = Client::new(Connection::over(b, &client_config).await.unwrap());

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

        #[derive(serde::Serialize)]
        struct Args {
            text: &'static str,
        }
        let out: String = client
            .call("Echo.shout", &Args { text: "still here" })
            .await
            .unwrap();
        assert_eq!(out, "STILL HERE", "{codec}");
    }
}
