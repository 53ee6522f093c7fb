//! The check of a run: every outcome against the journals, and the tally
//! the tests print.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use rpc_core::ErrorKind;
use tests::ledger::tokens;

use super::{Method, Outcome};

/// What a run came to; printed by the tests.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Calls made (tokens handed out).
    pub(crate) calls: u64,
    /// `add` calls that returned ok.
    pub(crate) add_ok: u64,
    /// `add` calls that failed, by error kind (`+not_run` when marked).
    pub(crate) add_failed: BTreeMap<String, u64>,
    /// `record` calls that returned ok.
    pub(crate) record_ok: u64,
    /// `record` calls that failed, by kind (`+not_run` when marked).
    pub(crate) record_failed: BTreeMap<String, u64>,
    /// Of the failed `record` calls, those that ran all the same (in a journal).
    pub(crate) record_failed_but_ran: u64,
    /// Lines in each journal.
    pub(crate) journals: Vec<usize>,
}

impl Tally {
    /// Calls that failed, of either method.
    pub(crate) fn failed(&self) -> u64 {
        self.add_failed
            .values()
            .chain(self.record_failed.values())
            .sum()
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "calls {} | add ok {} failed {:?} | record ok {} failed {:?} (of which ran: {}) | journal lines {:?}",
            self.calls,
            self.add_ok,
            self.add_failed,
            self.record_ok,
            self.record_failed,
            self.record_failed_but_ran,
            self.journals
        )
    }
}

/// A failure's key in a tally: its kind's label, `+not_run` when marked.
fn label(kind: ErrorKind, not_run: bool) -> String {
    format!("{}{}", kind.label(), if not_run { "+not_run" } else { "" })
}

/// Every token in `journals`, with how many times each appears.
fn journal_counts(journals: &[&Path]) -> (BTreeMap<u64, u32>, Vec<usize>) {
    let mut counts = BTreeMap::new();
    let mut lines = Vec::new();
    for journal in journals {
        let text = std::fs::read_to_string(journal).unwrap_or_default();
        let tokens = tokens(&text);
        lines.push(tokens.len());
        for token in tokens {
            *counts.entry(token).or_insert(0) += 1;
        }
    }
    (counts, lines)
}

/// Checks the run's invariants and returns its tally:
/// - every token handed out has exactly one outcome;
/// - every `add` succeeded;
/// - no token appears twice across the journals, and each journal token was
///   a `record`'s;
/// - a `record` that returned ok appears exactly once;
/// - a `record` that failed did so with the did-not-run mark (and is in no
///   journal) or with `ConnectionLost` saying it may or may not have run.
pub(crate) fn check(outcomes: &[Outcome], issued: u64, journals: &[&Path]) -> Tally {
    let (counts, lines) = journal_counts(journals);
    let mut tally = Tally {
        calls: issued,
        journals: lines,
        ..Tally::default()
    };
    let mut seen: BTreeMap<u64, (u32, Method)> = BTreeMap::new();
    let mut problems = Vec::new();
    for outcome in outcomes {
        seen.entry(outcome.token).or_insert((0, outcome.method)).0 += 1;
        let in_journals = counts.get(&outcome.token).copied().unwrap_or(0);
        match (outcome.method, &outcome.failed) {
            (Method::Add, None) => tally.add_ok += 1,
            (Method::Add, Some((kind, not_run, message))) => {
                *tally.add_failed.entry(label(*kind, *not_run)).or_insert(0) += 1;
                problems.push(format!(
                    "add token {} failed: {kind:?}: {message}",
                    outcome.token
                ));
            }
            (Method::Record, None) => {
                tally.record_ok += 1;
                if in_journals != 1 {
                    problems.push(format!(
                        "record {} returned ok but is in the journals {in_journals} times",
                        outcome.token
                    ));
                }
            }
            (Method::Record, Some((kind, not_run, message))) => {
                *tally
                    .record_failed
                    .entry(label(*kind, *not_run))
                    .or_insert(0) += 1;
                tally.record_failed_but_ran += u64::from(in_journals > 0);
                if *not_run && in_journals > 0 {
                    problems.push(format!(
                        "record {} failed marked did-not-run ({kind:?}: {message}) but ran",
                        outcome.token
                    ));
                }
                let says_maybe =
                    *kind == ErrorKind::ConnectionLost && message.contains("may or may not");
                if !*not_run && !says_maybe {
                    problems.push(format!(
                        "record {} failed with {kind:?} \"{message}\" (ran: {}): neither marked \
                         did-not-run nor a ConnectionLost saying it may or may not have run",
                        outcome.token,
                        in_journals > 0
                    ));
                }
            }
        }
    }
    for (&token, &n) in &counts {
        if n > 1 {
            problems.push(format!(
                "token {token} is in the journals {n} times: it ran twice"
            ));
        }
        let method = seen.get(&token).map(|&(_, method)| method);
        if method != Some(Method::Record) {
            problems.push(format!(
                "journal token {token} is not a record call's ({method:?})"
            ));
        }
    }
    let missing: Vec<u64> = (1..=issued).filter(|t| !seen.contains_key(t)).collect();
    let twice: Vec<u64> = seen
        .iter()
        .filter(|&(_, &(n, _))| n > 1)
        .map(|(&t, _)| t)
        .collect();
    if !missing.is_empty() || !twice.is_empty() {
        problems.push(format!(
            "not every call is accounted for: {} tokens without an outcome (first {:?}), {} with more than one",
            missing.len(),
            missing.first(),
            twice.len()
        ));
    }
    assert!(
        problems.is_empty(),
        "{} problems; tally: {tally}\n{}",
        problems.len(),
        problems
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    tally
}
