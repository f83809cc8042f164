//! What every `RegistryStore` must do with rollouts, run against each backend by its tests.

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
    let v1 = s.add_version(name, record(b"r1"), true).expect("v1");
    let v2 = s.add_version(name, record(b"r2"), false).expect("v2");
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
