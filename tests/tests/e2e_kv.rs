//! The key-value store in-process over TCP, in both codecs: dynamic values of
//! every shape round-trip, and missing keys are the typed `NotFound`.

mod common;

use common::{CODECS, connect, serve, within};
use examples::kv::{KeyValueClient, KeyValueServer, KvError, MemoryStore};
use rpc_core::{CallError, Registry, Value};
use serde_json::json;

fn store() -> Registry {
    Registry::new()
        .with(KeyValueServer::new(MemoryStore::default()))
        .expect("the store registers")
}

/// One value of every shape `Value` can hold, by name.
fn every_shape() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("null", json!(null)),
        ("true", json!(true)),
        ("false", json!(false)),
        ("zero", json!(0)),
        ("positive", json!(42)),
        ("negative", json!(-7)),
        ("i64-min", json!(i64::MIN)),
        ("i64-max", json!(i64::MAX)),
        ("u64-max", json!(u64::MAX)),
        ("float", json!(1.5)),
        ("negative-float", json!(-0.25)),
        ("large-float", json!(1e300)),
        ("empty-string", json!("")),
        ("string", json!("spam")),
        ("unicode", json!("ünïcødé ✓ 😀 \u{0} \"quoted\" \\")),
        ("empty-array", json!([])),
        ("array", json!([1, 2, 3])),
        (
            "mixed-array",
            json!([null, true, -1, u64::MAX, 2.5, "s", [], {}]),
        ),
        ("empty-object", json!({})),
        ("object", json!({"a": 1, "b": "two"})),
        (
            "nested",
            json!({
                "list": [1, {"inner": [null, false, {"deep": [[[-3]]]}]}],
                "map": {"x": {"y": {"z": "bottom"}}},
                "numbers": [0, -1, 18446744073709551615u64, 0.125],
            }),
        ),
    ]
}

#[tokio::test]
async fn dynamic_values_of_every_shape_round_trip_through_set_and_get() {
    let server = serve(store()).await;
    for codec in CODECS {
        let kv = KeyValueClient::new(connect(&server.address, codec).await);
        for (name, value) in every_shape() {
            let key = format!("{codec}-{name}");
            within("set", kv.set(key.clone(), Value::from(value.clone())))
                .await
                .unwrap_or_else(|e| panic!("{codec}: set {name}: {e}"));
            match within("get", kv.get(key.clone())).await {
                Ok(back) => assert_eq!(back.into_inner(), value, "{codec}: {name}"),
                Err(e) => panic!("{codec}: get {name}: {e:?}"),
            }
        }
        let keys = within("keys", kv.keys()).await.unwrap();
        let ours = keys.iter().filter(|k| k.starts_with(codec)).count();
        assert_eq!(ours, every_shape().len(), "{codec}: {keys:?}");
    }
}

#[tokio::test]
async fn a_value_set_in_one_codec_reads_back_the_same_in_the_other() {
    let server = serve(store()).await;
    let bincode = KeyValueClient::new(connect(&server.address, "bincode").await);
    let json = KeyValueClient::new(connect(&server.address, "json").await);
    for (name, value) in every_shape() {
        within("set", bincode.set(name.into(), Value::from(value.clone())))
            .await
            .unwrap();
        match within("get", json.get(name.into())).await {
            Ok(back) => assert_eq!(back.into_inner(), value, "{name}"),
            Err(e) => panic!("get {name}: {e:?}"),
        }
    }
}

#[tokio::test]
async fn getting_a_missing_key_is_the_typed_not_found_naming_the_key() {
    let server = serve(store()).await;
    for codec in CODECS {
        let kv = KeyValueClient::new(connect(&server.address, codec).await);
        match within("get", kv.get("nope".into())).await {
            Err(CallError::Application(KvError::NotFound { key })) => {
                assert_eq!(key, "nope", "{codec}")
            }
            other => panic!("{codec}: get(\"nope\") should be NotFound, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn deleting_a_missing_key_is_the_typed_not_found() {
    let server = serve(store()).await;
    for codec in CODECS {
        let kv = KeyValueClient::new(connect(&server.address, codec).await);
        match within("delete", kv.delete("ghost".into())).await {
            Err(CallError::Application(KvError::NotFound { key })) => {
                assert_eq!(key, "ghost", "{codec}")
            }
            other => panic!("{codec}: delete(\"ghost\") should be NotFound, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_deleted_key_no_longer_exists_and_deleting_it_again_is_not_found() {
    let server = serve(store()).await;
    for codec in CODECS {
        let kv = KeyValueClient::new(connect(&server.address, codec).await);
        let key = format!("{codec}-gone");
        within("set", kv.set(key.clone(), Value::from(json!([1, 2, 3]))))
            .await
            .unwrap();
        assert!(
            within("exists", kv.exists(key.clone())).await.unwrap(),
            "{codec}"
        );
        within("delete", kv.delete(key.clone()))
            .await
            .unwrap_or_else(|e| panic!("{codec}: delete: {e:?}"));
        assert!(
            !within("exists", kv.exists(key.clone())).await.unwrap(),
            "{codec}"
        );
        match within("delete again", kv.delete(key.clone())).await {
            Err(CallError::Application(KvError::NotFound { key: named })) => {
                assert_eq!(named, key, "{codec}")
            }
            other => panic!("{codec}: a second delete should be NotFound, got {other:?}"),
        }
    }
}
