//! Who gets in before credentials: the connections of every listener of a
//! server that have not authenticated yet, and which of them makes way when
//! there are too many.
//!
//! A TCP connection is pending from `accept` until its hello is read; an
//! HTTP connection until it has sent a whole request head. Each entry knows
//! its source address and how far it got:
//!
//! ```text
//! Connected      accepted; has not answered our challenge (HTTP: no whole request head yet)
//! Answered       answered our challenge rightly; the rest of the handshake is under way
//! Authenticated  both sides proved the key; waiting for the hello
//! ```
//!
//! When one more connection arrives and `max_pending_handshakes` are
//! pending, one is shed: of those that made the least progress, one from
//! the source address holding the most of them, the oldest first. So a
//! flood of silent sockets sheds its own, and an honest client that
//! answered the challenge outlives any number of them; a client still on
//! its first round trip is safe as long as fewer connections than the cap
//! arrive during that round trip. An address holding `max_pending_per_ip`
//! sheds its own least advanced first, whatever the total. Addresses in
//! `trusted_proxies` (and Unix-socket peers) count each connection as an
//! address of its own. When the process runs out of descriptors, a listener
//! sheds one the same way ([`Admission::shed_one`]) and accepts again.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::config::limits::Limits;
use crate::metrics::{Gauge, Metrics, Refused};

/// How far a pending connection got; later stages are shed last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    /// Accepted, nothing proved yet.
    Connected = 0,
    /// Answered our challenge rightly.
    Answered = 1,
    /// Authenticated both ways, the hello not read yet.
    Authenticated = 2,
}

const STAGES: usize = 3;

/// Why a pending connection was shed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shed {
    /// `max_pending_handshakes` were pending and this one made the least progress.
    Crowded,
    /// Its address held `max_pending_per_ip`.
    PerAddress,
    /// `accept` ran out of file descriptors.
    Descriptors,
}

impl Shed {
    fn refused(self) -> Refused {
        match self {
            Shed::Crowded => Refused::HandshakeShed,
            Shed::PerAddress => Refused::PerAddressShed,
            Shed::Descriptors => Refused::DescriptorShed,
        }
    }

    /// Why, for the error that ends the connection.
    pub(crate) fn reason(self, limits: &Limits) -> String {
        match self {
            Shed::Crowded => format!(
                "dropped before authenticating to make room: {} connections were waiting to \
                 authenticate and this one had made the least progress (max_pending_handshakes)",
                limits.max_pending_handshakes
            ),
            Shed::PerAddress => format!(
                "dropped before authenticating: its address had {} connections waiting to \
                 authenticate (max_pending_per_ip)",
                limits.max_pending_per_ip
            ),
            Shed::Descriptors => "dropped before authenticating: the server ran out of file \
                                  descriptors and this connection had made the least progress"
                .to_owned(),
        }
    }
}

/// Which entries are shed together: one address, or one connection alone
/// (trusted proxies, Unix sockets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Group {
    Address(IpAddr),
    Alone(u64),
}

/// The connections not yet authenticated; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Admission {
    max_pending: usize,
    max_per_address: usize,
    trusted: Vec<IpAddr>,
    metrics: Arc<Metrics>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next: u64,
    /// Every entry: its group, stage and the way to shed it.
    entries: BTreeMap<u64, Entry>,
    /// Per group, its entries per stage, oldest first.
    groups: HashMap<Group, [BTreeSet<u64>; STAGES]>,
    /// Per stage, every group with entries in it, the one to shed from
    /// last: the most entries, then the oldest.
    ranks: [BTreeSet<Rank>; STAGES],
}

/// A group's rank in one stage: its entries there, its oldest there.
type Rank = (usize, Reverse<u64>, Group);

fn rank(ids: &BTreeSet<u64>, group: Group) -> Option<Rank> {
    let oldest = *ids.first()?;
    Some((ids.len(), Reverse(oldest), group))
}

#[derive(Debug)]
struct Entry {
    group: Group,
    stage: Stage,
    shed: oneshot::Sender<Shed>,
}

impl Admission {
    /// An empty registry under `limits`, counting sheds into `metrics`.
    pub(crate) fn new(limits: &Limits, metrics: Arc<Metrics>) -> Admission {
        Admission {
            max_pending: limits.max_pending_handshakes,
            max_per_address: limits.max_pending_per_ip,
            trusted: limits.trusted_proxies.clone(),
            metrics,
            state: Mutex::default(),
        }
    }

    /// Registers a connection from `peer` (`None`: a Unix socket), shedding
    /// others first if it would exceed a cap: its place, and the notice
    /// that it was shed in turn.
    pub(crate) fn admit(self: &Arc<Self>, peer: Option<IpAddr>) -> (Pending, Notice) {
        let (tx, rx) = oneshot::channel();
        let mut state = self.lock();
        state.next += 1;
        let id = state.next;
        let group = match peer {
            Some(ip) if !self.trusted.contains(&ip) => Group::Address(ip.to_canonical()),
            _ => Group::Alone(id),
        };
        if let Group::Address(_) = group {
            let held = state
                .groups
                .get(&group)
                .map_or(0, |stages| stages.iter().map(BTreeSet::len).sum::<usize>());
            if held >= self.max_per_address {
                self.shed(&mut state, Some(group), Shed::PerAddress);
            }
        }
        while state.entries.len() >= self.max_pending {
            if !self.shed(&mut state, None, Shed::Crowded) {
                break;
            }
        }
        let stage = Stage::Connected;
        state.entries.insert(
            id,
            Entry {
                group,
                stage,
                shed: tx,
            },
        );
        state.place(id, group, stage);
        drop(state);
        let pending = Pending {
            admission: self.clone(),
            id,
            _gauge: self.metrics.handshake_started(),
        };
        (pending, Notice(rx))
    }

    /// Sheds one pending connection, the least advanced, because the
    /// process ran out of descriptors; `false` if there is none.
    pub(crate) fn shed_one(&self) -> bool {
        let mut state = self.lock();
        self.shed(&mut state, None, Shed::Descriptors)
    }

    /// How many are pending.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().entries.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("admission lock")
    }

    /// Sheds the least advanced entry of `group` (any group: of the one
    /// holding the most in that stage), oldest first.
    fn shed(&self, state: &mut State, group: Option<Group>, why: Shed) -> bool {
        let Some(victim) = state.victim(group) else {
            return false;
        };
        let entry = state.remove(victim).expect("a victim is an entry");
        self.metrics.refused(why.refused());
        // Its task may have ended already; it is gone from the registry either way.
        let _ = entry.shed.send(why);
        true
    }

    fn advance(&self, id: u64, stage: Stage) {
        let mut state = self.lock();
        let Some(entry) = state.entries.get_mut(&id) else {
            return;
        };
        let (group, from) = (entry.group, entry.stage);
        if from >= stage {
            return;
        }
        entry.stage = stage;
        state.unplace(id, group, from);
        state.place(id, group, stage);
    }
}

impl State {
    fn victim(&self, group: Option<Group>) -> Option<u64> {
        match group {
            Some(group) => {
                let stages = self.groups.get(&group)?;
                stages.iter().find_map(|ids| ids.first().copied())
            }
            None => {
                let (_, _, group) = self.ranks.iter().find_map(|rank| rank.last())?;
                let stages = self.groups.get(group)?;
                stages.iter().find_map(|ids| ids.first().copied())
            }
        }
    }

    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.entries.remove(&id)?;
        self.unplace(id, entry.group, entry.stage);
        Some(entry)
    }

    fn place(&mut self, id: u64, group: Group, stage: Stage) {
        let ids = &mut self.groups.entry(group).or_default()[stage as usize];
        let before = rank(ids, group);
        ids.insert(id);
        let after = rank(ids, group);
        self.rerank(stage, before, after);
    }

    fn unplace(&mut self, id: u64, group: Group, stage: Stage) {
        let Some(stages) = self.groups.get_mut(&group) else {
            return;
        };
        let ids = &mut stages[stage as usize];
        let before = rank(ids, group);
        if !ids.remove(&id) {
            return;
        }
        let after = rank(ids, group);
        if stages.iter().all(BTreeSet::is_empty) {
            self.groups.remove(&group);
        }
        self.rerank(stage, before, after);
    }

    fn rerank(&mut self, stage: Stage, before: Option<Rank>, after: Option<Rank>) {
        let ranks = &mut self.ranks[stage as usize];
        if let Some(before) = before {
            ranks.remove(&before);
        }
        if let Some(after) = after {
            ranks.insert(after);
        }
    }
}

/// One pending connection's place in the registry, given up when dropped.
#[derive(Debug)]
pub(crate) struct Pending {
    admission: Arc<Admission>,
    id: u64,
    _gauge: Gauge,
}

impl Pending {
    /// Records that the connection got as far as `stage`.
    pub(crate) fn advance(&self, stage: Stage) {
        self.admission.advance(self.id, stage);
    }
}

/// Tells a pending connection it was shed.
#[derive(Debug)]
pub(crate) struct Notice(oneshot::Receiver<Shed>);

impl Notice {
    /// Completes when the connection is shed, with why; never once its
    /// [`Pending`] is dropped.
    pub(crate) async fn shed(&mut self) -> Shed {
        match (&mut self.0).await {
            Ok(why) => why,
            Err(_) => std::future::pending().await,
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.admission.lock().remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rpc_core::Registry;

    fn admission(max_pending: usize, max_per_ip: usize, trusted: &[&str]) -> Arc<Admission> {
        let limits = Limits {
            max_pending_handshakes: max_pending,
            max_pending_per_ip: max_per_ip,
            trusted_proxies: trusted.iter().map(|a| a.parse().unwrap()).collect(),
            ..Limits::default()
        };
        Arc::new(Admission::new(&limits, Metrics::new(&Registry::new())))
    }

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([127, 0, 0, last]))
    }

    fn shed_now(pending: &mut (Pending, Notice)) -> Option<Shed> {
        pending.1.0.try_recv().ok()
    }

    #[test]
    fn a_flood_from_one_address_sheds_its_own_not_a_client_from_another() {
        let admission = admission(8, 100, &[]);
        let mut honest = admission.admit(ip(1));
        let mut junk: Vec<_> = (0..100).map(|_| admission.admit(ip(2))).collect();
        assert_eq!(shed_now(&mut honest), None);
        assert_eq!(admission.len(), 8);
        let shed = junk.iter_mut().filter_map(shed_now).count();
        assert_eq!(shed, 93);
    }

    #[test]
    fn a_client_that_answered_outlives_any_number_of_silent_ones_from_its_address() {
        let admission = admission(8, 100, &[]);
        let mut honest = admission.admit(ip(1));
        honest.0.advance(Stage::Answered);
        let _junk: Vec<_> = (0..100).map(|_| admission.admit(ip(1))).collect();
        assert_eq!(shed_now(&mut honest), None);
    }

    #[test]
    fn among_equals_the_oldest_goes_first() {
        let admission = admission(2, 100, &[]);
        let mut first = admission.admit(ip(1));
        let mut second = admission.admit(ip(1));
        let _third = admission.admit(ip(1));
        assert_eq!(shed_now(&mut first), Some(Shed::Crowded));
        assert_eq!(shed_now(&mut second), None);
    }

    #[test]
    fn among_addresses_holding_as_many_the_oldest_entry_goes_first() {
        let admission = admission(3, 100, &[]);
        let mut from_9 = admission.admit(ip(9));
        let mut from_1 = admission.admit(ip(1));
        let mut from_5 = admission.admit(ip(5));
        let _from_3 = admission.admit(ip(3));
        assert_eq!(shed_now(&mut from_9), Some(Shed::Crowded));
        let _from_2 = admission.admit(ip(2));
        assert_eq!(shed_now(&mut from_1), Some(Shed::Crowded));
        assert_eq!(shed_now(&mut from_5), None);
    }

    #[test]
    fn an_address_at_its_cap_sheds_its_own_least_advanced_first() {
        let admission = admission(100, 3, &[]);
        let mut answered = admission.admit(ip(1));
        answered.0.advance(Stage::Answered);
        let mut silent = admission.admit(ip(1));
        let _other = admission.admit(ip(1));
        let mut elsewhere = admission.admit(ip(2));
        let _fourth = admission.admit(ip(1));
        assert_eq!(shed_now(&mut silent), Some(Shed::PerAddress));
        assert_eq!(shed_now(&mut answered), None);
        assert_eq!(shed_now(&mut elsewhere), None);
    }

    #[test]
    fn a_trusted_proxy_is_not_capped_per_address() {
        let admission = admission(100, 2, &["127.0.0.9"]);
        let mut behind: Vec<_> = (0..50).map(|_| admission.admit(ip(9))).collect();
        assert_eq!(behind.iter_mut().filter_map(shed_now).count(), 0);
    }

    #[test]
    fn out_of_descriptors_sheds_the_least_advanced_and_a_dropped_entry_leaves() {
        let admission = admission(100, 100, &[]);
        let mut answered = admission.admit(ip(1));
        answered.0.advance(Stage::Authenticated);
        let mut silent = admission.admit(ip(1));
        assert!(admission.shed_one());
        assert_eq!(shed_now(&mut silent), Some(Shed::Descriptors));
        assert_eq!(shed_now(&mut answered), None);
        drop(answered);
        drop(silent);
        assert_eq!(admission.len(), 0);
        assert!(!admission.shed_one());
    }

    /// The victim a plain reading of the policy picks, from the entries alone.
    fn expected_victim(state: &State) -> Option<u64> {
        let stage = state.entries.values().map(|e| e.stage).min()?;
        let mut counts: HashMap<Group, (usize, u64)> = HashMap::new();
        for (&id, entry) in state.entries.iter().filter(|(_, e)| e.stage == stage) {
            let count = counts.entry(entry.group).or_insert((0, id));
            count.0 += 1;
            count.1 = count.1.min(id);
        }
        let most = counts.values().map(|c| c.0).max()?;
        counts.values().filter(|c| c.0 == most).map(|c| c.1).min()
    }

    #[test]
    fn the_indexes_pick_what_the_policy_says_through_random_traffic() {
        let admission = admission(24, 10, &["127.0.0.7"]);
        let mut held: Vec<(Pending, Notice)> = Vec::new();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..5_000 {
            {
                let state = admission.lock();
                assert_eq!(state.victim(None), expected_victim(&state));
                assert!(state.entries.len() <= 24);
                let ranked: usize = state.ranks.iter().map(BTreeSet::len).sum();
                let placed: usize = state
                    .groups
                    .values()
                    .map(|s| s.iter().filter(|ids| !ids.is_empty()).count())
                    .sum();
                assert_eq!(ranked, placed);
            }
            match next() % 4 {
                0 | 1 => held.push(admission.admit(ip((next() % 8) as u8))),
                2 if !held.is_empty() => {
                    let i = (next() as usize) % held.len();
                    let stage = [Stage::Answered, Stage::Authenticated][(next() % 2) as usize];
                    held[i].0.advance(stage);
                }
                _ if !held.is_empty() => {
                    let i = (next() as usize) % held.len();
                    held.swap_remove(i);
                }
                _ => {}
            }
            held.retain_mut(|p| shed_now(p).is_none());
        }
    }
}
