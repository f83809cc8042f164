//! What every `RegistryStore` must do with rollouts, and every `LedgerStore` with usage, run
//! against each backend by its tests.

use activity_registry::ledger::{LedgerStore, OutcomeRow, UsageGroup, UsageRow, USAGE_BUCKET_MS};
use activity_registry::rollout::{Candidate, EventKind, RolloutEvent, RolloutPolicy, RolloutState};
use activity_registry::{RegistryStore, RolloutChange, VersionRecord};
use activity_runtime::{ActivitySpec, ComponentDigest};

fn record(bytes: &[u8]) -> VersionRecord {
    VersionRecord {
        seq: 0,
        digest: ComponentDigest::of(bytes),
        size: bytes.len() as u64,
        deployed_at_ms: 1,
        deployed_by: "contract".into(),
        spec: ActivitySpec::new("Rolled"),
        source: None,
        signature: None,
    }
}

fn event(kind: EventKind) -> RolloutEvent {
    RolloutEvent {
        kind,
        at_ms: 1,
        by: "contract".into(),
        reason: None,
        digest: None,
        ramp_percent: None,
    }
}

/// Candidates stay inactive, pins are first-writer-wins, an abort drops its pins, events
/// come back newest first, expired pins are swept, and removing a type forgets it all.
pub fn rollouts_pins_and_events(s: &dyn RegistryStore) {
    let name = "Rolled";
    let v1 = s.add_version(name, record(b"r1"), true, None).expect("v1");
    let v2 = s.add_version(name, record(b"r2"), false, None).expect("v2");
    assert_eq!(s.versions(name).expect("versions").1, Some(v1.seq));
    assert!(!s.rollouts().expect("rollouts").contains_key(name));

    let ramp = RolloutState {
        policy: RolloutPolicy::Ramp,
        candidate: Some(Candidate {
            seq: v2.seq,
            ramp_percent: 30,
        }),
    };
    s.set_rollout(
        name,
        RolloutChange {
            state: ramp,
            activate: None,
            unpin: Vec::new(),
            event: event(EventKind::Deploy),
        },
    )
    .expect("deploy");
    assert_eq!(s.rollouts().expect("rollouts").get(name), Some(&ramp));
    assert_eq!(s.rollout(name).expect("rollout"), ramp);
    assert_eq!(
        s.rollout("NeverDeployed").expect("rollout"),
        RolloutState::default()
    );

    assert_eq!(
        s.pin(name, "run:a", Some(v2.seq), 1000).expect("pin"),
        v2.seq
    );
    assert_eq!(
        s.pin(name, "run:a", Some(v1.seq), 1001).expect("pin again"),
        v2.seq,
        "the first pin wins"
    );
    // `None`: the version active in the store.
    assert_eq!(s.pin(name, "run:b", None, 5000).expect("pin b"), v1.seq);
    assert_eq!(s.pin_count(name).expect("count"), 2);

    s.set_rollout(
        name,
        RolloutChange {
            state: RolloutState {
                candidate: None,
                ..ramp
            },
            activate: None,
            unpin: vec![v2.seq],
            event: event(EventKind::Abort),
        },
    )
    .expect("abort");
    assert_eq!(
        s.pin_count(name).expect("count"),
        1,
        "the abort drops its pins"
    );
    // A host that has not heard of the abort yet chooses the aborted candidate for a new
    // run: the run is pinned to the active version instead, never to the aborted one.
    assert_eq!(
        s.pin(name, "run:late", Some(v2.seq), 1500)
            .expect("late pin"),
        v1.seq,
        "a run pinned to an aborted candidate"
    );
    assert_eq!(s.pin_count(name).expect("count"), 2);
    let kinds: Vec<EventKind> = s
        .events(name, 10)
        .expect("events")
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, vec![EventKind::Abort, EventKind::Deploy]);
    assert_eq!(s.events(name, 1).expect("events").len(), 1);

    s.set_rollout(
        name,
        RolloutChange {
            state: RolloutState::default(),
            activate: Some(v2.seq),
            unpin: Vec::new(),
            event: event(EventKind::Promote),
        },
    )
    .expect("promote");
    assert_eq!(s.versions(name).expect("versions").1, Some(v2.seq));

    assert_eq!(s.sweep_pins(1000).expect("sweep"), 0);
    assert_eq!(s.sweep_pins(6000).expect("sweep"), 2);
    assert_eq!(s.pin_count(name).expect("count"), 0);

    s.pin(name, "run:c", Some(v1.seq), 7000).expect("pin c");
    assert!(s.remove(name).expect("remove"));
    assert!(!s.rollouts().expect("rollouts").contains_key(name));
    assert!(s.events(name, 10).expect("events").is_empty());
    assert_eq!(s.pin_count(name).expect("count"), 0);
}

fn usage_row(bucket_ms: u64, activity: &str, caller: &str, cpu_us: u64, peak: u64) -> UsageRow {
    UsageRow {
        bucket_ms,
        activity: activity.into(),
        version: "sha256:01".into(),
        caller: caller.into(),
        calls: 2,
        failures: 1,
        wall_us: 3000,
        cpu_us,
        peak_memory_bytes: peak,
        fuel: 0,
        egress_requests: 1,
        egress_bytes: 10,
    }
}

/// Usage sums add up across flushes (peak memory: the highest), group by activity type or
/// caller, count only minutes that end after `since`, and are swept; candidate outcomes
/// of other hosts are summed without the asking host's.
pub fn ledger(s: &dyn LedgerStore) {
    let minute = USAGE_BUCKET_MS;
    s.add_usage(&[
        usage_row(10 * minute, "A", "k1", 1000, 100),
        usage_row(10 * minute, "B", "k1", 5000, 50),
    ])
    .expect("add");
    // The same minute again: summed, not replaced.
    s.add_usage(&[
        usage_row(10 * minute, "A", "k1", 1000, 300),
        usage_row(11 * minute, "A", "k2", 1000, 10),
    ])
    .expect("add again");
    let by_activity = s.usage(0, UsageGroup::Activity, None).expect("usage");
    assert_eq!(
        by_activity
            .iter()
            .map(|r| r.key.as_str())
            .collect::<Vec<_>>(),
        ["B", "A"],
        "largest CPU first"
    );
    let a = &by_activity[1];
    assert_eq!((a.calls, a.failures, a.peak_memory_bytes), (6, 3, 300));
    assert_eq!((a.cpu_ms, a.wall_ms, a.egress_bytes), (3.0, 9.0, 30));
    let by_caller = s.usage(0, UsageGroup::Caller, None).expect("usage");
    assert_eq!(by_caller.len(), 2);
    assert_eq!(by_caller[0].key, "k1");
    assert_eq!(by_caller[0].calls, 6);
    // A minute counts while it ends after `since`.
    assert_eq!(
        s.usage(11 * minute - 1, UsageGroup::Activity, None)
            .expect("usage")
            .len(),
        2
    );
    let late = s
        .usage(11 * minute, UsageGroup::Activity, None)
        .expect("usage");
    assert_eq!(late.len(), 1);
    assert_eq!((late[0].key.as_str(), late[0].calls), ("A", 2));
    assert!(s
        .usage(12 * minute, UsageGroup::Activity, None)
        .expect("usage")
        .is_empty());
    let one = s.usage(0, UsageGroup::Activity, Some("k2")).expect("usage");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].calls, 2);

    let outcome = |seq, bucket_ms, calls, failures| OutcomeRow {
        activity: "A".into(),
        seq,
        bucket_ms,
        calls,
        failures,
    };
    s.add_outcomes("h1", &[outcome(2, 100_000, 5, 4)])
        .expect("h1");
    s.add_outcomes("h1", &[outcome(2, 100_000, 1, 1)])
        .expect("h1 again");
    s.add_outcomes(
        "h2",
        &[outcome(2, 110_000, 3, 0), outcome(3, 110_000, 1, 1)],
    )
    .expect("h2");
    let mut seen = s.outcomes_elsewhere("h2", 0).expect("elsewhere");
    seen.sort_by_key(|o| o.seq);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!((seen[0].seq, seen[0].calls, seen[0].failures), (2, 6, 5));
    let mut seen = s.outcomes_elsewhere("h3", 105_000).expect("elsewhere");
    seen.sort_by_key(|o| o.seq);
    assert_eq!(seen.len(), 2);
    assert_eq!(
        (seen[0].calls, seen[0].failures),
        (3, 0),
        "h1's older bucket is out"
    );

    let swept = s.sweep_ledger(11 * minute, 105_000).expect("sweep");
    assert_eq!(swept, 2 + 1, "two usage rows of minute 10 and h1's outcome");
    assert_eq!(
        s.usage(0, UsageGroup::Activity, None).expect("usage").len(),
        1
    );
}

/// A version added with its rollout: the candidate named by the new version's seq, the
/// event and the pins dropped, with the version, in one call.
pub fn a_version_with_its_rollout(s: &dyn RegistryStore) {
    let name = "Deployed";
    let v1 = s.add_version(name, record(b"d1"), true, None).expect("v1");
    s.pin(name, "run:a/1", Some(v1.seq), 1).expect("pin");
    let change = RolloutChange {
        state: RolloutState {
            policy: RolloutPolicy::Ramp,
            candidate: Some(Candidate {
                seq: 0,
                ramp_percent: 20,
            }),
        },
        activate: None,
        unpin: vec![v1.seq],
        event: event(EventKind::Deploy),
    };
    let v2 = s
        .add_version(name, record(b"d2"), false, Some(change))
        .expect("v2");
    let (_, active) = s.versions(name).expect("versions");
    assert_eq!(active, Some(v1.seq), "a candidate is not active");
    let state = s.rollout(name).expect("rollout");
    assert_eq!(
        state.candidate,
        Some(Candidate {
            seq: v2.seq,
            ramp_percent: 20
        })
    );
    assert_eq!(
        s.events(name, 5).expect("events")[0].kind,
        EventKind::Deploy
    );
    assert_eq!(
        s.pin_count(name).expect("pins"),
        0,
        "the pins named were dropped"
    );
    assert!(s.remove(name).expect("remove"));
}
