//! From `connect`'s entries to the addresses to dial: every address each
//! name resolves to is an endpoint (a Kubernetes headless Service is one
//! name for every pod), looked up again now and then.

use std::net::SocketAddr;

use tracing::warn;

/// One address to dial, and the entry of `connect` it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Target {
    pub(super) address: String,
    pub(super) name: String,
}

/// What a lookup of every entry found.
#[derive(Debug, Default)]
pub(super) struct Resolved {
    pub(super) targets: Vec<Target>,
    /// The entries that did not resolve, this time.
    pub(super) failed: Vec<String>,
}

/// Resolves every entry; `Err` names each entry that failed when none resolved.
pub(super) async fn resolve(entries: &[String]) -> Result<Resolved, String> {
    let mut targets: Vec<Target> = Vec::new();
    let mut failures = Vec::new();
    for entry in entries {
        if entry.starts_with("unix:") || entry.parse::<SocketAddr>().is_ok() {
            push(&mut targets, entry.clone(), entry);
            continue;
        }
        match tokio::net::lookup_host(entry.as_str()).await {
            Ok(addresses) => {
                let before = targets.len();
                for address in addresses {
                    push(&mut targets, address.to_string(), entry);
                }
                if targets.len() == before {
                    failures.push((entry.clone(), "no address".to_owned()));
                }
            }
            Err(e) => {
                warn!(entry = %entry, error = %e, "cannot resolve");
                failures.push((entry.clone(), e.to_string()));
            }
        }
    }
    if targets.is_empty() {
        let each: Vec<_> = failures
            .iter()
            .map(|(e, why)| format!("{e}: {why}"))
            .collect();
        return Err(each.join("; "));
    }
    Ok(Resolved {
        targets,
        failed: failures.into_iter().map(|(entry, _)| entry).collect(),
    })
}

/// Whether some entry is a name, to be looked up again later.
pub(super) fn has_names(entries: &[String]) -> bool {
    entries
        .iter()
        .any(|e| !e.starts_with("unix:") && e.parse::<SocketAddr>().is_err())
}

fn push(targets: &mut Vec<Target>, address: String, name: &str) {
    if !targets.iter().any(|t| t.address == address) {
        targets.push(Target {
            address,
            name: name.to_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literal_addresses_are_kept_once_and_in_order() {
        let entries = [
            "127.0.0.1:2".to_owned(),
            "127.0.0.1:1".into(),
            "127.0.0.1:2".into(),
        ];
        let targets = resolve(&entries).await.unwrap().targets;
        let addresses: Vec<_> = targets.iter().map(|t| t.address.as_str()).collect();
        assert_eq!(addresses, ["127.0.0.1:2", "127.0.0.1:1"]);
        assert!(!has_names(&entries));
        assert!(has_names(&["localhost:1".to_owned()]));
    }

    #[tokio::test]
    async fn a_name_is_every_address_it_resolves_to_and_keeps_its_name() {
        let targets = resolve(&["localhost:7".to_owned()]).await.unwrap().targets;
        assert!(!targets.is_empty());
        assert!(
            targets
                .iter()
                .all(|t| t.name == "localhost:7" && t.address.ends_with(":7"))
        );
    }

    #[tokio::test]
    async fn an_entry_that_fails_is_named_beside_those_that_resolved() {
        let entries = [
            "127.0.0.1:1".to_owned(),
            "no-such-host.invalid:1".to_owned(),
        ];
        let resolved = resolve(&entries).await.unwrap();
        assert_eq!(resolved.targets.len(), 1);
        assert_eq!(resolved.failed, ["no-such-host.invalid:1"]);
    }

    #[tokio::test]
    async fn nothing_resolved_names_each_failure() {
        let error = resolve(&["no-such-host.invalid:1".to_owned()])
            .await
            .unwrap_err();
        assert!(error.starts_with("no-such-host.invalid:1: "), "{error}");
    }
}
