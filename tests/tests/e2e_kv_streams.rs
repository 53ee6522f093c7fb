//! The key-value store's streams in-process over TCP, in both codecs:
//! `watch` sends the changes under its prefix in order, `set_many` stores
//! every pair it is sent, a watcher that goes away is removed, and one that
//! lags is ended with the documented `OverBudget` reason, after every
//! change it was sent.

mod common;

use std::time::Duration;

use common::{CODECS, connect, serve, serve_with, server_builder, within};
use examples::kv::{Change, KeyValue, KeyValueClient, KeyValueServer, MemoryStore};
use futures::StreamExt;
use rpc_core::{ErrorKind, Registry, Stream, Value};
use rpc_transport::config::Limits;
use serde_json::json;

fn registry(store: &MemoryStore) -> Registry {
    Registry::new()
        .with(KeyValueServer::new(store.clone()))
        .expect("the store registers")
}

fn set(key: &str, value: serde_json::Value) -> Change {
    Change::Set {
        key: key.into(),
        value: Value::from(value),
    }
}

/// Waits (bounded) until `store` has `n` watchers.
async fn until_watchers(store: &MemoryStore, n: usize) {
    within("the watcher count", async {
        while store.watchers() != n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[test]
fn a_change_is_externally_tagged_in_json() {
    let set = serde_json::to_value(set("a/1", json!("x"))).unwrap();
    assert_eq!(set, json!({"Set": {"key": "a/1", "value": "x"}}));
    let delete = serde_json::to_value(Change::Delete { key: "a/1".into() }).unwrap();
    assert_eq!(delete, json!({"Delete": {"key": "a/1"}}));
}

#[tokio::test]
async fn a_watcher_sees_the_sets_and_deletes_under_its_prefix_in_order_and_nothing_else() {
    let store = MemoryStore::default();
    let server = serve(registry(&store)).await;
    for codec in CODECS {
        let watcher = KeyValueClient::new(connect(&server.address, codec).await);
        let writer = KeyValueClient::new(connect(&server.address, codec).await);
        let mut changes = within("watch", watcher.watch("a/".into())).await.unwrap();
        for (key, value) in [
            ("a/1", json!("x")),
            ("b/1", json!(1)),
            ("a/2", json!([1, 2])),
        ] {
            within("set", writer.set(key.into(), Value::from(value)))
                .await
                .unwrap();
        }
        within("delete", writer.delete("a/1".into())).await.unwrap();
        within("delete", writer.delete("b/1".into())).await.unwrap();
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(within("a change", changes.next()).await.expect("a change"));
        }
        let expected = vec![
            set("a/1", json!("x")),
            set("a/2", json!([1, 2])),
            Change::Delete { key: "a/1".into() },
        ];
        assert_eq!(seen, expected, "{codec}");
        within("delete", writer.delete("a/2".into())).await.unwrap();
        let last = within("the last change", changes.next()).await;
        assert_eq!(last, Some(Change::Delete { key: "a/2".into() }), "{codec}");
    }
}

#[tokio::test]
async fn set_many_of_ten_thousand_pairs_returns_ten_thousand_and_stores_them_all() {
    let store = MemoryStore::default();
    let server = serve(registry(&store)).await;
    for codec in CODECS {
        let kv = KeyValueClient::new(connect(&server.address, codec).await);
        let pairs = (0..10_000u64).map(move |i| (format!("{codec}/{i:05}"), Value::from(i)));
        let stored = within("set_many", kv.set_many(Stream::iter(pairs)))
            .await
            .unwrap();
        assert_eq!(stored, 10_000, "{codec}");
        let keys = within("keys", kv.keys()).await.unwrap();
        let ours: Vec<&String> = keys.iter().filter(|k| k.starts_with(codec)).collect();
        assert_eq!(ours.len(), 10_000, "{codec}");
        for i in [0u64, 4_321, 9_999] {
            let value = within("get", kv.get(format!("{codec}/{i:05}"))).await;
            assert_eq!(value.unwrap().into_inner(), json!(i), "{codec}: {i}");
        }
    }
}

#[tokio::test]
async fn set_many_of_nothing_returns_zero() {
    let server = serve(registry(&MemoryStore::default())).await;
    for codec in CODECS {
        let kv = KeyValueClient::new(connect(&server.address, codec).await);
        let stored = within("set_many", kv.set_many(Stream::empty())).await;
        assert_eq!(stored.unwrap(), 0, "{codec}");
    }
}

#[tokio::test]
async fn set_many_tells_a_watcher_of_every_pair() {
    let store = MemoryStore::default();
    let server = serve(registry(&store)).await;
    for codec in CODECS {
        let kv = KeyValueClient::new(connect(&server.address, codec).await);
        let prefix = format!("{codec}/");
        let mut changes = within("watch", kv.watch(prefix.clone())).await.unwrap();
        let pairs: Vec<(String, Value)> = (0..100u64)
            .map(|i| (format!("{prefix}{i:03}"), Value::from(i)))
            .collect();
        let stored = within("set_many", kv.set_many(Stream::iter(pairs.clone()))).await;
        assert_eq!(stored.unwrap(), 100, "{codec}");
        for (key, value) in pairs {
            let change = within("a change", changes.next()).await;
            assert_eq!(change, Some(Change::Set { key, value }), "{codec}");
        }
    }
}

#[tokio::test]
async fn a_watcher_that_drops_its_stream_is_removed_by_the_next_set_of_any_key() {
    let store = MemoryStore::default();
    let server = serve(registry(&store)).await;
    for codec in CODECS {
        let kv = KeyValueClient::new(connect(&server.address, codec).await);
        let changes = within("watch", kv.watch("gone/".into())).await.unwrap();
        assert_eq!(store.watchers(), 1, "{codec}");
        drop(changes);
        // The cancel reaches the server on its own time; each set after it
        // must still succeed, and one of them removes the watcher, even
        // under a prefix it did not watch.
        within("the watcher to be removed", async {
            let mut i = 0u64;
            while store.watchers() != 0 {
                kv.set(format!("elsewhere/{i}"), Value::from(i))
                    .await
                    .unwrap_or_else(|e| panic!("{codec}: set after the drop: {e}"));
                i += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        within(
            "a set with no watcher",
            kv.set("gone/last".into(), Value::from(0)),
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn a_watcher_whose_connection_closes_is_removed_at_the_next_set() {
    let store = MemoryStore::default();
    let server = serve(registry(&store)).await;
    let writer = KeyValueClient::new(connect(&server.address, "bincode").await);
    for codec in CODECS {
        let watcher = KeyValueClient::new(connect(&server.address, codec).await);
        let changes = within("watch", watcher.watch("closed/".into()))
            .await
            .unwrap();
        drop(watcher);
        drop(changes);
        within("the watcher to be removed", async {
            while store.watchers() != 0 {
                writer.set("closed/x".into(), Value::from(1)).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
    }
}

#[tokio::test]
async fn a_lagging_watcher_gets_every_change_before_it_lagged_then_an_over_budget_end() {
    const BUFFER: usize = 16;
    // Past what the watcher's window (4096 items) and its buffer can hold.
    const SETS: u64 = 6_000;
    let store = MemoryStore::with_watch_buffer(BUFFER);
    let server = serve(registry(&store)).await;
    for codec in CODECS {
        let prefix = format!("lag-{codec}/");
        let watcher = KeyValueClient::new(connect(&server.address, codec).await);
        let writer = KeyValueClient::new(connect(&server.address, codec).await);
        let mut changes = within("watch", watcher.watch(prefix.clone()))
            .await
            .unwrap();
        // Nobody reads `changes` while the writer writes: the writer is not held up.
        let keys = prefix.clone();
        let pairs = (0..SETS).map(move |i| (format!("{keys}{i:05}"), Value::from(i)));
        let stored = within("set_many", writer.set_many(Stream::iter(pairs))).await;
        assert_eq!(stored.unwrap(), SETS, "{codec}");
        until_watchers(&store, 0).await;

        let mut seen = 0u64;
        while let Some(change) = within("a change or the end", changes.next()).await {
            let expected = set(&format!("{prefix}{seen:05}"), json!(seen));
            assert_eq!(change, expected, "{codec}: no change is skipped");
            seen += 1;
        }
        assert!(
            seen > 0 && seen < SETS,
            "{codec}: {seen} changes before the end"
        );
        match changes.end() {
            Some(Err(e)) => {
                assert_eq!(e.kind(), ErrorKind::OverBudget, "{codec}: {e}");
                assert!(e.message().contains("lagged"), "{codec}: {e}");
                assert!(e.message().contains(&prefix), "{codec}: {e}");
            }
            other => panic!("{codec}: the end should be OverBudget, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn in_the_store_alone_a_watcher_lags_after_exactly_its_buffer() {
    let store = MemoryStore::with_watch_buffer(4);
    let mut changes = store.watch("k/".into()).await;
    for i in 0..6u64 {
        store.set(format!("k/{i}"), Value::from(i)).await;
    }
    assert_eq!(store.watchers(), 0, "the lagging watcher is removed");
    let seen: Vec<Change> = (&mut changes).collect().await;
    let expected: Vec<Change> = (0..4u64)
        .map(|i| set(&format!("k/{i}"), json!(i)))
        .collect();
    assert_eq!(seen, expected);
    match changes.end() {
        Some(Err(e)) => assert_eq!(e.kind(), ErrorKind::OverBudget, "{e}"),
        other => panic!("the end should be OverBudget, got {other:?}"),
    }
}

#[tokio::test]
async fn deleting_a_missing_key_tells_no_watcher() {
    let store = MemoryStore::default();
    let mut changes = store.watch(String::new()).await;
    assert!(store.delete("ghost".into()).await.is_err());
    store.set("real".into(), Value::from(1)).await;
    let first = within("a change", changes.next()).await;
    assert_eq!(first, Some(set("real", json!(1))));
}

#[tokio::test]
async fn a_quiet_watch_outlives_the_idle_timeout() {
    let store = MemoryStore::default();
    let limits = Limits {
        idle_timeout: Some(Duration::from_millis(200)),
        ..Limits::default()
    };
    let config = server_builder().limits(limits).build().unwrap();
    let server = serve_with(config, registry(&store)).await;
    for codec in CODECS {
        let watcher = KeyValueClient::new(connect(&server.address, codec).await);
        let mut changes = within("watch", watcher.watch("quiet/".into()))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        let writer = KeyValueClient::new(connect(&server.address, codec).await);
        within("set", writer.set("quiet/1".into(), Value::from(1)))
            .await
            .unwrap();
        let change = within("the change after the quiet", changes.next()).await;
        assert_eq!(
            change,
            Some(set("quiet/1", json!(1))),
            "{codec}: {:?}",
            changes.end()
        );
    }
}
