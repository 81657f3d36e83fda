use super::*;
use crate::testing::{policy, DAY, HOUR, T0};

/// Returns the events of a forecast for one key, as (time, event).
fn of_key(events: &[PlannedEvent], id: &str) -> Vec<(u64, String)> {
    events
        .iter()
        .filter(|event| event.key_id == id)
        .map(|event| (event.at, event.event.clone()))
        .collect()
}

fn timed(pairs: &[(u64, &str)]) -> Vec<(u64, String)> {
    pairs
        .iter()
        .map(|(at, event)| (*at, event.to_string()))
        .collect()
}

#[test]
fn forecast_new_zone_times() {
    let events = forecast(&EngineState::default(), &policy(), T0, T0 + 40 * DAY);
    let dnskey_at = T0 + HOUR + 300 + 600;
    let zone_at = T0 + DAY + 300 + 600;
    let seen_at = zone_at + HOUR;
    let ds_at = seen_at + 2 * HOUR + 600;
    assert_eq!(
        of_key(&events, "ksk-1"),
        timed(&[
            (T0, "generated"),
            (T0, "DNSKEY published"),
            (T0, "signs the DNSKEY RRset"),
            (dnskey_at, "DNSKEY omnipresent"),
            (dnskey_at, "RRSIG over DNSKEY omnipresent"),
            (zone_at, "DS requested at the parent"),
            (seen_at, "DS at the parent"),
            (ds_at, "DS omnipresent"),
        ])
    );

    // The ZSK rolls 30 days after it started signing, less the DNSKEY
    // publication wait of its successor.
    let roll_at = T0 + 30 * DAY - (HOUR + 300 + 600);
    let successor = of_key(&events, "zsk-3");
    assert_eq!(
        successor.first(),
        Some(&(roll_at, "successor generated".to_string()))
    );
    let generated = events
        .iter()
        .find(|event| event.key_id == "zsk-3")
        .expect("a successor ZSK");
    assert_eq!(generated.key_tag, None);
    assert_eq!(generated.role, KeyRole::Zsk);
    assert_eq!(generated.algorithm, 13);
    let old = of_key(&events, "zsk-2");
    assert!(old.contains(&(
        roll_at + HOUR + 300 + 600,
        "stops signing zone data".to_string()
    )));
}

#[test]
fn forecast_ends_at_until() {
    let until = T0 + 10 * DAY;
    let events = forecast(&EngineState::default(), &policy(), T0, until);
    assert!(!events.is_empty());
    assert!(events.iter().all(|event| event.at <= until));
}

#[test]
fn forecast_keeps_known_key_tags() {
    let mut state = forecast_state(T0 + 2 * DAY);
    state.set_key_tag("zsk-2", 4711);
    let events = forecast(&state, &policy(), T0 + 2 * DAY, T0 + 40 * DAY);
    let old = events
        .iter()
        .find(|event| event.key_id == "zsk-2")
        .expect("events of the current ZSK");
    assert_eq!(old.key_tag, Some(4711));
}

/// Returns the engine state of a new zone at `at`, after the steps a
/// forecast would run.
fn forecast_state(at: u64) -> EngineState {
    let policy = policy();
    let mut state = EngineState::default();
    let mut parent = Parent {
        served: BTreeSet::new(),
        pending: None,
    };
    let mut now = T0;
    for _ in 0..100 {
        parent.publish(now, &mut Vec::new());
        let result = step(&state, &policy, &parent.observe(&state, &policy), now);
        for action in &result.actions {
            if let Action::RequestDs { ids, .. } = action {
                let ids = ids.iter().cloned().collect();
                parent.pending = Some((now + policy.parent_propagation_delay, ids));
            }
        }
        state = result.state;
        let parent_at = parent.pending.as_ref().map(|(due, _)| *due);
        match [result.next_due, parent_at].into_iter().flatten().min() {
            Some(next) if next <= at => now = next,
            _ => return state,
        }
    }
    state
}

#[test]
fn forecast_confirms_manual_check() {
    let policy = LifecyclePolicy {
        parent_ds_check: ParentDsCheck::Manual,
        ..policy()
    };
    let events = forecast(&EngineState::default(), &policy, T0, T0 + 10 * DAY);
    let seen_at = T0 + DAY + 300 + 600 + HOUR;
    let ksk = of_key(&events, "ksk-1");
    assert!(ksk.contains(&(seen_at, "DS at the parent".to_string())));
    assert!(ksk.contains(&(seen_at + 2 * HOUR + 600, "DS omnipresent".to_string())));
}

#[test]
fn forecast_of_unsigned_zone_is_empty() {
    let state = EngineState {
        unsigned_since: Some(T0),
        ..EngineState::default()
    };
    assert!(forecast(&state, &policy(), T0 + 1, T0 + 400 * DAY).is_empty());
}

#[test]
fn next_transitions_per_key() {
    let now = T0 + 2 * DAY;
    let state = forecast_state(now);
    let transitions = next_transitions(&state, &policy(), now, 2);
    assert_eq!(
        transitions.keys().collect::<Vec<_>>(),
        vec!["ksk-1", "zsk-2"]
    );

    // The ZSK's next events belong to its rollover: its DNSKEY is withdrawn
    // once the successor's signatures are in every cache. The KSK's next
    // events belong to its own rollover a year later.
    let roll_at = T0 + 30 * DAY - (HOUR + 300 + 600);
    let swap_at = roll_at + HOUR + 300 + 600;
    assert_eq!(
        transitions["zsk-2"],
        timed(&[
            (swap_at, "stops signing zone data"),
            (swap_at + DAY + 300 + 600, "DNSKEY withdrawn"),
        ])
    );
    assert_eq!(transitions["ksk-1"].len(), 2);
    assert!(transitions["ksk-1"][0].0 > T0 + 300 * DAY);
}

#[test]
fn planned_event_round_trips_as_json() {
    let event = PlannedEvent {
        at: T0,
        key_id: "ksk-1".to_string(),
        role: KeyRole::Ksk,
        algorithm: 13,
        key_tag: Some(12_345),
        event: "DNSKEY published".to_string(),
    };
    let json = serde_json::to_string(&event).expect("serialise");
    let back: PlannedEvent = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back, event);
}
