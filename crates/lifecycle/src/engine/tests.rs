use keymaster_policy::{KeyLayout, KskRollover, UnknownParentDs, ZskRollover};

use super::*;
use crate::policy::DenialSettings;
use crate::testing::{policy, DAY, HOUR, T0};

fn parent(state: &EngineState, present: &[&str]) -> Observations {
    let mut observations = Observations::default();
    for key in &state.keys {
        let seen = if present.contains(&key.id.as_str()) {
            ParentDs::AtAllServers
        } else {
            ParentDs::Gone
        };
        observations.parent_ds.insert(key.id.clone(), seen);
    }
    observations.secure_delegation = Some(!present.is_empty());
    observations
}

fn record(state: &EngineState, id: &str, kind: RecordKind) -> (RecordState, u64) {
    let record = state.key(id).expect("key exists").record(kind);
    (record.state, record.since)
}

/// Brings a new zone to KSK and ZSK fully in place, with the DS seen an
/// hour after it was requested, checking each transition time on the way.
fn bootstrap(policy: &LifecyclePolicy) -> (EngineState, u64) {
    let first = step(
        &EngineState::default(),
        policy,
        &Observations::default(),
        T0,
    );
    let state = first.state;
    assert_eq!(
        record(&state, "ksk-1", RecordKind::Dnskey),
        (RecordState::Rumoured, T0)
    );
    assert_eq!(
        record(&state, "ksk-1", RecordKind::Krrsig),
        (RecordState::Rumoured, T0)
    );
    assert_eq!(
        record(&state, "zsk-2", RecordKind::Zrrsig),
        (RecordState::Rumoured, T0)
    );
    assert_eq!(
        record(&state, "ksk-1", RecordKind::Ds),
        (RecordState::Hidden, 0)
    );

    // DNSKEY: TTL + propagation + publish safety.
    let dnskey_at = T0 + HOUR + 300 + 600;
    assert_eq!(first.next_due, Some(dnskey_at));
    let second = step(&state, policy, &parent(&state, &[]), dnskey_at);
    let state = second.state;
    assert_eq!(
        record(&state, "ksk-1", RecordKind::Dnskey),
        (RecordState::Omnipresent, dnskey_at)
    );

    // The DS waits for zone signatures in every cache, because unsigned
    // data cached from before signing would be bogus under a DS.
    assert_eq!(
        record(&state, "ksk-1", RecordKind::Ds),
        (RecordState::Hidden, 0)
    );
    let zone_at = T0 + DAY + 300 + 600;
    assert_eq!(second.next_due, Some(zone_at));
    let third = step(&state, policy, &parent(&state, &[]), zone_at);
    let state = third.state;
    assert_eq!(
        record(&state, "zsk-2", RecordKind::Zrrsig),
        (RecordState::Omnipresent, zone_at)
    );
    assert_eq!(
        record(&state, "ksk-1", RecordKind::Ds),
        (RecordState::Rumoured, zone_at)
    );
    assert!(third.actions.contains(&Action::RequestDs {
        ids: vec!["ksk-1".to_string()],
        appear: vec!["ksk-1".to_string()],
        disappear: vec![],
    }));

    // DS: seen at the parent, then its TTL + publish safety.
    let seen_at = zone_at + HOUR;
    let fourth = step(&state, policy, &parent(&state, &["ksk-1"]), seen_at);
    let state = fourth.state;
    assert_eq!(state.key("ksk-1").unwrap().ds_seen, Some(seen_at));
    let ds_at = seen_at + 2 * HOUR + 600;
    let fifth = step(&state, policy, &parent(&state, &["ksk-1"]), ds_at);
    let state = fifth.state;
    assert_eq!(
        record(&state, "ksk-1", RecordKind::Ds),
        (RecordState::Omnipresent, ds_at)
    );
    (state, ds_at)
}

#[test]
fn bootstrap_times() {
    bootstrap(&policy());
}

#[test]
fn waits_name_generated_keys_without_tag() {
    let first = step(
        &EngineState::default(),
        &policy(),
        &Observations::default(),
        T0,
    );
    let ksk_wait = first
        .waiting
        .iter()
        .find(|wait| wait.what.starts_with("Dnskey of key ksk-1 "))
        .unwrap_or_else(|| panic!("no DNSKEY wait for ksk-1 in {:?}", first.waiting));
    assert!(
        ksk_wait.what.contains("(new, algorithm 13)"),
        "{}",
        ksk_wait.what
    );
    assert!(!ksk_wait.what.contains("tag 0"), "{}", ksk_wait.what);
}

#[test]
fn zsk_pre_publication_times() {
    let policy = policy();
    let (state, _) = bootstrap(&policy);
    let observe = |state: &EngineState| parent(state, &["ksk-1"]);

    // The rollover starts the DNSKEY publication wait before the end of
    // the 30-day lifetime counted from the start of signing at T0.
    let lead = HOUR + 300 + 600;
    let start = T0 + 30 * DAY - lead;
    let early = step(&state, &policy, &observe(&state), start - 1);
    assert!(early.state.key("zsk-3").is_none());
    let rolled = step(&state, &policy, &observe(&state), start);
    let state = rolled.state;
    assert_eq!(
        record(&state, "zsk-3", RecordKind::Dnskey),
        (RecordState::Rumoured, start)
    );
    assert_eq!(
        record(&state, "zsk-3", RecordKind::Zrrsig),
        (RecordState::Hidden, 0)
    );
    assert_eq!(state.key("zsk-2").unwrap().goal, Goal::Hidden);

    // Once the new DNSKEY is everywhere, the signatures swap in one step.
    let swap = start + lead;
    assert_eq!(rolled.next_due, Some(swap));
    let swapped = step(&state, &policy, &observe(&state), swap).state;
    assert_eq!(
        record(&swapped, "zsk-3", RecordKind::Zrrsig),
        (RecordState::Rumoured, swap)
    );
    assert_eq!(
        record(&swapped, "zsk-2", RecordKind::Zrrsig),
        (RecordState::Unretentive, swap)
    );
    assert_eq!(
        record(&swapped, "zsk-2", RecordKind::Dnskey).0,
        RecordState::Omnipresent
    );

    // The old DNSKEY leaves when no cache can hold its signatures.
    let signatures_gone = swap + DAY + 300 + 1_200;
    let withdrawn = step(&swapped, &policy, &observe(&swapped), signatures_gone).state;
    assert_eq!(
        record(&withdrawn, "zsk-2", RecordKind::Zrrsig),
        (RecordState::Hidden, signatures_gone)
    );
    assert_eq!(
        record(&withdrawn, "zsk-2", RecordKind::Dnskey),
        (RecordState::Unretentive, signatures_gone)
    );

    let removed_at = signatures_gone + HOUR + 300 + 1_200;
    let removed = step(&withdrawn, &policy, &observe(&withdrawn), removed_at);
    assert!(removed.state.key("zsk-2").is_none());
    assert!(removed.actions.contains(&Action::RemoveKey {
        id: "zsk-2".to_string()
    }));
}

#[test]
fn zsk_double_signature_times() {
    let policy = LifecyclePolicy {
        zsk_method: ZskRollover::DoubleSignature,
        ..policy()
    };
    let (state, _) = bootstrap(&policy);
    let start = T0 + 30 * DAY;
    let rolled = step(&state, &policy, &parent(&state, &["ksk-1"]), start).state;
    assert_eq!(
        record(&rolled, "zsk-3", RecordKind::Dnskey),
        (RecordState::Rumoured, start)
    );
    assert_eq!(
        record(&rolled, "zsk-3", RecordKind::Zrrsig),
        (RecordState::Rumoured, start)
    );
    assert_eq!(
        record(&rolled, "zsk-2", RecordKind::Zrrsig).0,
        RecordState::Omnipresent
    );

    let both = start + DAY + 300 + 600;
    let retired = step(&rolled, &policy, &parent(&rolled, &["ksk-1"]), both).state;
    assert_eq!(
        record(&retired, "zsk-2", RecordKind::Zrrsig),
        (RecordState::Unretentive, both)
    );
    assert_eq!(
        record(&retired, "zsk-2", RecordKind::Dnskey),
        (RecordState::Unretentive, both)
    );
}

#[test]
fn ksk_double_ksk_waits_for_parent() {
    let policy = policy();
    let (state, now) = bootstrap(&policy);
    let request = Request::Rollover { role: KeyRole::Ksk };
    let mut observations = parent(&state, &["ksk-1"]);
    observations.requests.push(request);
    let rolled = step(&state, &policy, &observations, now).state;
    assert_eq!(
        record(&rolled, "ksk-3", RecordKind::Dnskey),
        (RecordState::Rumoured, now)
    );

    // After the DNSKEY wait the DS swap is requested.
    let swap = now + HOUR + 300 + 600;
    let requested = step(&rolled, &policy, &parent(&rolled, &["ksk-1"]), swap);
    let state = requested.state;
    assert_eq!(
        record(&state, "ksk-3", RecordKind::Ds),
        (RecordState::Rumoured, swap)
    );
    assert_eq!(
        record(&state, "ksk-1", RecordKind::Ds),
        (RecordState::Unretentive, swap)
    );
    assert!(requested
        .waiting
        .iter()
        .any(|wait| wait.what.contains("must appear")));

    // Without the parent's change nothing moves, however long it takes.
    let later = swap + 30 * DAY;
    let stuck = step(&state, &policy, &parent(&state, &["ksk-1"]), later).state;
    assert_eq!(
        record(&stuck, "ksk-3", RecordKind::Ds).0,
        RecordState::Rumoured
    );
    assert_eq!(
        record(&stuck, "ksk-1", RecordKind::Dnskey).0,
        RecordState::Omnipresent
    );

    // Seen swapped at `later`: DS TTL + safety margins from there.
    let seen = step(&stuck, &policy, &parent(&stuck, &["ksk-3"]), later).state;
    let retire_at = later + 2 * HOUR + 1_200;
    let done = step(&seen, &policy, &parent(&seen, &["ksk-3"]), retire_at).state;
    assert_eq!(
        record(&done, "ksk-1", RecordKind::Ds),
        (RecordState::Hidden, retire_at)
    );
    assert_eq!(
        record(&done, "ksk-1", RecordKind::Dnskey),
        (RecordState::Unretentive, retire_at)
    );
    // The new DS needs the shorter publish safety and is in place too.
    assert_eq!(
        record(&done, "ksk-3", RecordKind::Ds),
        (RecordState::Omnipresent, retire_at)
    );
}

#[test]
fn key_store_unreadable_halts() {
    let policy = policy();
    let (state, now) = bootstrap(&policy);
    let mut observations = parent(&state, &["ksk-1"]);
    observations.key_store_readable = false;
    observations
        .requests
        .push(Request::Rollover { role: KeyRole::Zsk });
    let halted = step(&state, &policy, &observations, now);
    assert_eq!(halted.actions, vec![Action::HaltKeyManagement]);
    assert_eq!(halted.state.keys, state.keys);
    let again = step(&halted.state, &policy, &observations, now + 60);
    assert!(again.actions.is_empty());
    let resumed = step(
        &again.state,
        &policy,
        &parent(&state, &["ksk-1"]),
        now + 120,
    );
    assert!(resumed
        .actions
        .contains(&Action::ResumeKeyManagement { halted_since: now }));
}

#[test]
fn queued_rollover_waits() {
    let policy = policy();
    let (state, now) = bootstrap(&policy);
    let mut observations = parent(&state, &["ksk-1"]);
    observations
        .requests
        .push(Request::Rollover { role: KeyRole::Zsk });
    let first = step(&state, &policy, &observations, now).state;
    let second = step(&first, &policy, &observations, now + 1).state;
    assert_eq!(
        second.requests,
        vec![Request::Rollover { role: KeyRole::Zsk }]
    );
    assert_eq!(second.keys.len(), 3);
}

#[test]
fn standby_key_succeeds_without_extra_roll() {
    let policy = policy();
    let (mut state, _) = bootstrap(&policy);
    state.add_key(Key::new("imported".to_string(), 7, 13, KeyRole::Zsk, T0));
    let lead = HOUR + 300 + 600;
    let before = step(&state, &policy, &parent(&state, &["ksk-1"]), T0 + 2 * DAY).state;
    assert_eq!(
        record(&before, "imported", RecordKind::Dnskey).0,
        RecordState::Hidden
    );
    let start = T0 + 30 * DAY - lead;
    let rolled = step(&before, &policy, &parent(&before, &["ksk-1"]), start);
    assert!(!rolled
        .actions
        .iter()
        .any(|a| matches!(a, Action::GenerateKey { .. })));
    assert_eq!(
        record(&rolled.state, "imported", RecordKind::Dnskey),
        (RecordState::Rumoured, start)
    );
}

#[test]
fn state_round_trips_as_json() {
    let (state, _) = bootstrap(&policy());
    let json = serde_json::to_string(&state).expect("serialise");
    let back: EngineState = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back, state);
}

/// Runs an RFC 5011 KSK rollover after `bootstrap` and checks every
/// transition time. The DS waits for the add hold-down after the new DNSKEY
/// is in every cache. The old key stays revoked and self-signed for
/// `revoked_hold` before it is withdrawn.
fn rfc5011_rollover(add_hold_down: u64, remove_hold_down: u64, revoked_hold: u64) {
    let policy = LifecyclePolicy {
        rfc5011: true,
        rfc5011_add_hold_down: add_hold_down,
        rfc5011_remove_hold_down: remove_hold_down,
        zsk_lifetime: None,
        ..policy()
    };
    let (state, now) = bootstrap(&policy);
    let mut observations = parent(&state, &["ksk-1"]);
    observations
        .requests
        .push(Request::Rollover { role: KeyRole::Ksk });
    let rolled = step(&state, &policy, &observations, now).state;
    assert_eq!(
        record(&rolled, "ksk-3", RecordKind::Dnskey),
        (RecordState::Rumoured, now)
    );

    // The new DNSKEY reaches every cache; the add hold-down starts then.
    let dnskey_at = now + HOUR + 300 + 600;
    let held = step(&rolled, &policy, &parent(&rolled, &["ksk-1"]), dnskey_at);
    assert_eq!(
        record(&held.state, "ksk-3", RecordKind::Dnskey),
        (RecordState::Omnipresent, dnskey_at)
    );
    assert_eq!(
        record(&held.state, "ksk-3", RecordKind::Ds),
        (RecordState::Hidden, 0)
    );
    let swap_at = dnskey_at + add_hold_down;
    assert_eq!(held.next_due, Some(swap_at));
    let early = step(
        &held.state,
        &policy,
        &parent(&held.state, &["ksk-1"]),
        swap_at - 1,
    );
    assert_eq!(
        record(&early.state, "ksk-3", RecordKind::Ds),
        (RecordState::Hidden, 0)
    );
    let swapped = step(
        &held.state,
        &policy,
        &parent(&held.state, &["ksk-1"]),
        swap_at,
    )
    .state;
    assert_eq!(
        record(&swapped, "ksk-3", RecordKind::Ds),
        (RecordState::Rumoured, swap_at)
    );
    assert_eq!(
        record(&swapped, "ksk-1", RecordKind::Ds),
        (RecordState::Unretentive, swap_at)
    );

    // The parent swaps the DS an hour later. Once the old DS has left every
    // cache (its TTL plus the retire safety margin), the old key is revoked.
    let seen_at = swap_at + HOUR;
    let seen = step(&swapped, &policy, &parent(&swapped, &["ksk-3"]), seen_at).state;
    let revoke_at = seen_at + 2 * HOUR + 1_200;
    let revoked = step(&seen, &policy, &parent(&seen, &["ksk-3"]), revoke_at);
    assert!(revoked.actions.contains(&Action::SetRevoke {
        id: "ksk-1".to_string()
    }));
    assert!(!revoked.actions.contains(&Action::StopSigningDnskey {
        id: "ksk-1".to_string()
    }));
    let old = revoked.state.key("ksk-1").expect("revoked key stays");
    assert_eq!(old.flags & FLAG_REVOKE, FLAG_REVOKE);
    assert_eq!(old.revoked, Some(revoke_at));
    assert_eq!(old.dnskey.state, RecordState::Omnipresent);
    assert_eq!(old.krrsig.state, RecordState::Omnipresent);

    // The revoked key is withdrawn after the hold and removed once it has
    // left every cache.
    let withdraw_at = revoke_at + revoked_hold;
    assert_eq!(revoked.next_due, Some(withdraw_at));
    let state = revoked.state;
    let still = step(
        &state,
        &policy,
        &parent(&state, &["ksk-3"]),
        withdraw_at - 1,
    );
    assert_eq!(
        record(&still.state, "ksk-1", RecordKind::Dnskey).0,
        RecordState::Omnipresent
    );
    let withdrawn = step(&state, &policy, &parent(&state, &["ksk-3"]), withdraw_at);
    assert!(withdrawn.actions.contains(&Action::UnpublishDnskey {
        id: "ksk-1".to_string()
    }));
    assert!(withdrawn.actions.contains(&Action::StopSigningDnskey {
        id: "ksk-1".to_string()
    }));
    let removed_at = withdraw_at + HOUR + 300 + 1_200;
    assert_eq!(withdrawn.next_due, Some(removed_at));
    let state = withdrawn.state;
    let removed = step(&state, &policy, &parent(&state, &["ksk-3"]), removed_at);
    assert!(removed.actions.contains(&Action::RemoveKey {
        id: "ksk-1".to_string()
    }));
}

#[test]
fn rfc5011_revoke_held_for_remove_hold_down() {
    rfc5011_rollover(30 * DAY, 30 * DAY, 30 * DAY);
}

#[test]
fn rfc5011_short_hold_downs() {
    // With hold-downs of seconds, the revoked key still stays until every
    // cache has it with the REVOKE bit (DNSKEY TTL + propagation + safety).
    rfc5011_rollover(5, 5, HOUR + 300 + 600);
}

/// Starts a KSK rollover after `bootstrap` and returns the state and time
/// at which the new KSK's DNSKEY is in every cache and its DS may be
/// requested, stepping with the parent also serving DS tag `unknown`.
fn ksk_rollover_until_swap(policy: &LifecyclePolicy, unknown: u16) -> (EngineState, u64) {
    let (state, now) = bootstrap(policy);
    let mut observations = parent(&state, &["ksk-1"]);
    observations.unknown_ds_tags = vec![unknown];
    observations
        .requests
        .push(Request::Rollover { role: KeyRole::Ksk });
    let rolled = step(&state, policy, &observations, now).state;
    (rolled, now + HOUR + 300 + 600)
}

fn with_unknown(mut observations: Observations, tag: u16) -> Observations {
    observations.unknown_ds_tags = vec![tag];
    observations
}

#[test]
fn unknown_parent_ds_blocks() {
    let policy = LifecyclePolicy {
        unknown_parent_ds: UnknownParentDs::Block,
        ..policy()
    };
    let (state, swap) = ksk_rollover_until_swap(&policy, 999);

    // The new DS may be requested, but the old one may not leave.
    let observed = with_unknown(parent(&state, &["ksk-1"]), 999);
    let requested = step(&state, &policy, &observed, swap);
    let state = requested.state;
    assert_eq!(
        record(&state, "ksk-3", RecordKind::Ds),
        (RecordState::Rumoured, swap)
    );
    assert_eq!(
        record(&state, "ksk-1", RecordKind::Ds).0,
        RecordState::Omnipresent
    );
    let blocked = requested
        .waiting
        .iter()
        .find(|wait| wait.what.contains("unknown key tags 999"))
        .expect("a wait names the unknown tag");
    assert!(
        blocked.what.starts_with("DS changes wait"),
        "{}",
        blocked.what
    );

    // Seen at the parent, the new DS still does not become omnipresent.
    let seen_at = swap + HOUR;
    let observed = with_unknown(parent(&state, &["ksk-1", "ksk-3"]), 999);
    let state = step(&state, &policy, &observed, seen_at).state;
    assert_eq!(state.key("ksk-3").unwrap().ds_seen, Some(seen_at));
    let later = seen_at + 2 * DAY;
    let observed = with_unknown(parent(&state, &["ksk-1", "ksk-3"]), 999);
    let stuck = step(&state, &policy, &observed, later);
    assert_eq!(
        record(&stuck.state, "ksk-3", RecordKind::Ds),
        (RecordState::Rumoured, swap)
    );
    let ds_wait = stuck
        .waiting
        .iter()
        .find(|wait| wait.what.starts_with("Ds of key ksk-3"))
        .unwrap_or_else(|| panic!("no wait for the new DS in {:?}", stuck.waiting));
    assert_eq!(ds_wait.until, None);

    // Once the unknown DS is gone, the new DS is in place at once (its
    // waits have passed) and the old one starts to leave.
    let cleared = later + 60;
    let state = stuck.state;
    let moved = step(
        &state,
        &policy,
        &parent(&state, &["ksk-1", "ksk-3"]),
        cleared,
    );
    assert_eq!(
        record(&moved.state, "ksk-3", RecordKind::Ds),
        (RecordState::Omnipresent, cleared)
    );
    assert_eq!(
        record(&moved.state, "ksk-1", RecordKind::Ds),
        (RecordState::Unretentive, cleared)
    );
    assert!(!moved
        .waiting
        .iter()
        .any(|wait| wait.what.contains("unknown key tags")));
}

#[test]
fn unknown_parent_ds_tolerated() {
    let policy = policy();
    let (state, swap) = ksk_rollover_until_swap(&policy, 999);
    let observed = with_unknown(parent(&state, &["ksk-1"]), 999);
    let swapped = step(&state, &policy, &observed, swap);
    assert_eq!(
        record(&swapped.state, "ksk-3", RecordKind::Ds),
        (RecordState::Rumoured, swap)
    );
    assert_eq!(
        record(&swapped.state, "ksk-1", RecordKind::Ds),
        (RecordState::Unretentive, swap)
    );
    let listed = swapped
        .waiting
        .iter()
        .find(|wait| wait.what.contains("unknown key tags 999"))
        .expect("a wait lists the unknown tag");
    assert!(listed.what.contains("tolerated"), "{}", listed.what);
}

fn ids(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

fn requesting(mut observations: Observations, request: Request) -> Observations {
    observations.requests.push(request);
    observations
}

#[test]
fn go_insecure_with_secure_delegation() {
    let policy = policy();
    let (state, now) = bootstrap(&policy);
    let asked_at = now + DAY;
    let observed = requesting(parent(&state, &["ksk-1"]), Request::GoInsecure);
    let asked = step(&state, &policy, &observed, asked_at);
    assert_eq!(
        asked.actions,
        vec![
            Action::PublishCdsDelete,
            Action::RequestDs {
                ids: vec![],
                appear: vec![],
                disappear: ids(&["ksk-1"]),
            },
        ]
    );
    assert_eq!(
        record(&asked.state, "ksk-1", RecordKind::Ds),
        (RecordState::Unretentive, asked_at)
    );
    assert_eq!(asked.next_due, None);
    assert!(asked
        .waiting
        .iter()
        .any(|wait| wait.what.contains("every parent server must stop serving")));

    // No rollover starts while the zone goes insecure, even past the ZSK's
    // lifetime, and the DS stays until the parent has removed it.
    let state = asked.state;
    let later = T0 + 40 * DAY;
    let waiting = step(&state, &policy, &parent(&state, &["ksk-1"]), later);
    assert!(waiting.actions.is_empty(), "{:?}", waiting.actions);
    let state = waiting.state;

    // The parent serves no DS: its TTL, the parent propagation delay and
    // the retire safety margin follow.
    let gone_at = later + HOUR;
    let gone = step(&state, &policy, &parent(&state, &[]), gone_at);
    assert_eq!(gone.state.going_insecure.unwrap().ds_gone, Some(gone_at));
    let unsign_at = gone_at + HOUR + 2 * HOUR + 1_200;
    assert_eq!(gone.next_due, Some(unsign_at));
    let wait = gone
        .waiting
        .iter()
        .find(|wait| wait.what.starts_with("going insecure"))
        .expect("a wait for going insecure");
    assert_eq!(wait.until, Some(unsign_at));
    let state = gone.state;
    let early = step(&state, &policy, &parent(&state, &[]), unsign_at - 1);
    assert!(early.actions.is_empty(), "{:?}", early.actions);

    let unsigned = step(&state, &policy, &parent(&state, &[]), unsign_at);
    assert_eq!(
        unsigned.actions,
        vec![
            Action::Unsign,
            Action::RemoveKey {
                id: "ksk-1".to_string()
            },
            Action::RemoveKey {
                id: "zsk-2".to_string()
            },
        ]
    );
    assert!(unsigned.state.is_unsigned());
    assert!(unsigned.state.keys.is_empty());
    assert_eq!(unsigned.next_due, None);

    // Later steps do nothing until a `Sign` request.
    let state = unsigned.state;
    let quiet = step(&state, &policy, &parent(&state, &[]), unsign_at + DAY);
    assert!(quiet.actions.is_empty(), "{:?}", quiet.actions);
    assert_eq!(quiet.next_due, None);
    assert!(quiet.waiting.is_empty(), "{:?}", quiet.waiting);
    let sign_at = unsign_at + 2 * DAY;
    let observed = requesting(parent(&state, &[]), Request::Sign);
    let signed = step(&state, &policy, &observed, sign_at);
    assert!(!signed.state.is_unsigned());
    assert!(signed.actions.contains(&Action::GenerateKey {
        id: "ksk-3".to_string(),
        role: KeyRole::Ksk,
        algorithm: 13,
    }));
    assert!(signed.actions.contains(&Action::ChangeDenial {
        to: DenialSettings::Nsec
    }));
    assert_eq!(
        record(&signed.state, "zsk-4", RecordKind::Zrrsig),
        (RecordState::Rumoured, sign_at)
    );
}

#[test]
fn go_insecure_without_delegation() {
    // The parent never served the requested DS: the zone is unsigned at
    // once, and the DS request is withdrawn.
    let policy = policy();
    let first = step(
        &EngineState::default(),
        &policy,
        &Observations::default(),
        T0,
    );
    let zone_at = T0 + DAY + 300 + 600;
    let state = step(&first.state, &policy, &parent(&first.state, &[]), zone_at).state;
    assert_eq!(
        record(&state, "ksk-1", RecordKind::Ds),
        (RecordState::Rumoured, zone_at)
    );

    let asked_at = zone_at + 60;
    let observed = requesting(parent(&state, &[]), Request::GoInsecure);
    let unsigned = step(&state, &policy, &observed, asked_at);
    assert_eq!(
        unsigned.actions,
        vec![
            Action::Unsign,
            Action::RemoveKey {
                id: "ksk-1".to_string()
            },
            Action::RemoveKey {
                id: "zsk-2".to_string()
            },
            Action::RequestDs {
                ids: vec![],
                appear: vec![],
                disappear: ids(&["ksk-1"]),
            },
        ]
    );
    assert_eq!(unsigned.state.unsigned_since, Some(asked_at));
}

#[test]
fn go_insecure_manual_step() {
    let (state, now) = bootstrap(&policy());
    let policy = LifecyclePolicy {
        parent_ds_check: ParentDsCheck::Manual,
        ..policy()
    };
    let asked_at = now + DAY;
    let observed = requesting(parent(&state, &["ksk-1"]), Request::GoInsecure);
    let state = step(&state, &policy, &observed, asked_at).state;

    // An observation of the parent does not count with a manual check.
    let seen_gone = step(&state, &policy, &parent(&state, &[]), asked_at + HOUR);
    assert_eq!(seen_gone.state.going_insecure.unwrap().ds_gone, None);
    let wait = seen_gone
        .waiting
        .iter()
        .find(|wait| wait.what.starts_with("going insecure"))
        .expect("a wait for going insecure");
    assert!(wait.what.contains("keymaster key step"), "{}", wait.what);
    assert_eq!(seen_gone.next_due, None);

    let stepped_at = asked_at + 3 * DAY;
    let state = seen_gone.state;
    let observed = requesting(parent(&state, &[]), Request::Step);
    let stepped = step(&state, &policy, &observed, stepped_at);
    let unsign_at = stepped_at + HOUR + 2 * HOUR + 1_200;
    assert_eq!(stepped.next_due, Some(unsign_at));
    let state = stepped.state;
    let unsigned = step(&state, &policy, &parent(&state, &[]), unsign_at);
    assert_eq!(unsigned.actions.first(), Some(&Action::Unsign));
}

#[test]
fn go_insecure_unchecked_parent() {
    // With no DS check the parent is assumed to remove the DS within its
    // propagation delay.
    let (state, now) = bootstrap(&policy());
    let policy = LifecyclePolicy {
        parent_ds_check: ParentDsCheck::None,
        ..policy()
    };
    let asked_at = now + DAY;
    let observed = requesting(Observations::default(), Request::GoInsecure);
    let asked = step(&state, &policy, &observed, asked_at);
    let unsign_at = asked_at + HOUR + HOUR + 2 * HOUR + 1_200;
    assert_eq!(asked.next_due, Some(unsign_at));
    let state = asked.state;
    let early = step(&state, &policy, &Observations::default(), unsign_at - 1);
    assert!(early.actions.is_empty(), "{:?}", early.actions);
    let unsigned = step(&state, &policy, &Observations::default(), unsign_at);
    assert_eq!(unsigned.actions.first(), Some(&Action::Unsign));
}

#[test]
fn go_insecure_waits_for_old_ds_ttl() {
    // The parent lowers its DS TTL from two hours to a minute when it
    // removes the DS: the wait still uses two hours.
    let policy = policy();
    let (state, now) = bootstrap(&policy);
    let asked_at = now + DAY;
    let observed = requesting(parent(&state, &["ksk-1"]), Request::GoInsecure);
    let state = step(&state, &policy, &observed, asked_at).state;
    let gone_at = asked_at + HOUR;
    let mut observed = parent(&state, &[]);
    observed.parent_ds_ttl = Some(60);
    let gone = step(&state, &policy, &observed, gone_at);
    let unsign_at = gone_at + HOUR + 2 * HOUR + 1_200;
    let wait = gone
        .waiting
        .iter()
        .find(|wait| wait.what.starts_with("going insecure"))
        .expect("a wait for going insecure");
    assert_eq!(wait.until, Some(unsign_at));

    // The engine wakes when the old TTL has expired, and the wait still
    // counts it.
    let old_ttl_expired = gone_at + 2 * HOUR;
    assert_eq!(gone.next_due, Some(old_ttl_expired));
    let state = gone.state;
    let early = step(&state, &policy, &observed, old_ttl_expired);
    assert!(early.actions.is_empty(), "{:?}", early.actions);
    assert_eq!(early.next_due, Some(unsign_at));
    let state = early.state;
    let unsigned = step(&state, &policy, &observed, unsign_at);
    assert_eq!(unsigned.actions.first(), Some(&Action::Unsign));
}

#[test]
fn cancel_insecure_requests_ds_again() {
    let policy = policy();
    let (state, now) = bootstrap(&policy);
    let asked_at = now + DAY;
    let observed = requesting(parent(&state, &["ksk-1"]), Request::GoInsecure);
    let state = step(&state, &policy, &observed, asked_at).state;
    let cancel_at = asked_at + HOUR;
    let observed = requesting(parent(&state, &[]), Request::CancelInsecure);
    let cancelled = step(&state, &policy, &observed, cancel_at);
    assert_eq!(cancelled.state.going_insecure, None);
    assert_eq!(
        record(&cancelled.state, "ksk-1", RecordKind::Ds),
        (RecordState::Rumoured, cancel_at)
    );
    assert!(cancelled.actions.contains(&Action::RequestDs {
        ids: ids(&["ksk-1"]),
        appear: ids(&["ksk-1"]),
        disappear: vec![],
    }));
    assert!(cancelled.actions.contains(&Action::PublishCds {
        ids: ids(&["ksk-1"])
    }));
}

#[test]
fn cancel_insecure_replaces_delete_form() {
    // With CDS publication off, an empty CDS set still replaces the
    // delete form.
    let policy = LifecyclePolicy {
        cds_publish: CdsPublish::Never,
        ..policy()
    };
    let (state, now) = bootstrap(&policy);
    let observed = requesting(parent(&state, &["ksk-1"]), Request::GoInsecure);
    let state = step(&state, &policy, &observed, now + DAY).state;
    let observed = requesting(parent(&state, &["ksk-1"]), Request::CancelInsecure);
    let cancelled = step(&state, &policy, &observed, now + DAY + 60);
    assert!(cancelled
        .actions
        .contains(&Action::PublishCds { ids: vec![] }));
}

#[test]
fn requests_wait_out_key_store_outage() {
    let policy = policy();
    let (state, now) = bootstrap(&policy);
    let mut observed = requesting(parent(&state, &["ksk-1"]), Request::GoInsecure);
    observed.key_store_readable = false;
    let halted = step(&state, &policy, &observed, now);
    assert_eq!(halted.actions, vec![Action::HaltKeyManagement]);
    let state = halted.state;
    let resumed = step(&state, &policy, &parent(&state, &["ksk-1"]), now + 60);
    assert!(resumed.actions.contains(&Action::PublishCdsDelete));
    assert_eq!(
        resumed.state.going_insecure.map(|going| going.requested),
        Some(now + 60)
    );
}

#[test]
fn leaving_ds_waits_after_parent_drops_all() {
    // The parent serves the DS but no operator confirms it. When the parent
    // later serves no DS at all, caches may still hold the old one for its
    // TTL, so the old KSK stays until then.
    let policy = LifecyclePolicy {
        parent_ds_check: ParentDsCheck::Manual,
        ..policy()
    };
    let first = step(
        &EngineState::default(),
        &policy,
        &Observations::default(),
        T0,
    )
    .state;
    let zone_at = T0 + DAY + 300 + 600;
    let state = step(&first, &policy, &parent(&first, &[]), zone_at).state;
    let retire_at = zone_at + DAY;
    let observed = requesting(
        parent(&state, &["ksk-1"]),
        Request::Retire {
            id: "ksk-1".to_string(),
        },
    );
    let retired = step(&state, &policy, &observed, retire_at);
    assert!(retired.actions.contains(&Action::RequestDs {
        ids: vec![],
        appear: vec![],
        disappear: ids(&["ksk-1"]),
    }));
    let swapped = retired.state;
    assert_eq!(
        record(&swapped, "ksk-1", RecordKind::Ds),
        (RecordState::Unretentive, retire_at)
    );

    let gone_at = retire_at + HOUR;
    let gone = step(&swapped, &policy, &parent(&swapped, &[]), gone_at).state;
    assert_eq!(gone.key("ksk-1").unwrap().ds_gone, Some(gone_at));
    assert_eq!(
        record(&gone, "ksk-1", RecordKind::Ds),
        (RecordState::Unretentive, retire_at)
    );
    assert_eq!(
        record(&gone, "ksk-1", RecordKind::Dnskey).0,
        RecordState::Omnipresent
    );
    let hidden_at = gone_at + 2 * HOUR + 1_200;
    let early = step(&gone, &policy, &parent(&gone, &[]), hidden_at - 1).state;
    assert_eq!(
        record(&early, "ksk-1", RecordKind::Ds).0,
        RecordState::Unretentive
    );
    let hidden = step(&gone, &policy, &parent(&gone, &[]), hidden_at).state;
    assert_eq!(
        record(&hidden, "ksk-1", RecordKind::Ds),
        (RecordState::Hidden, hidden_at)
    );
}

/// Steps the engine with the parent serving DS records for `present`.
fn step_with(state: &EngineState, policy: &LifecyclePolicy, present: &[&str], now: u64) -> Step {
    step(state, policy, &parent(state, present), now)
}

#[test]
fn ksk_double_ds_times() {
    let policy = LifecyclePolicy {
        ksk_method: KskRollover::DoubleDs,
        ..policy()
    };
    let (state, start) = bootstrap(&policy);

    // The new KSK's DS comes first, next to the old one.
    let observed = requesting(
        parent(&state, &["ksk-1"]),
        Request::Rollover { role: KeyRole::Ksk },
    );
    let rolled = step(&state, &policy, &observed, start);
    assert_eq!(
        record(&rolled.state, "ksk-3", RecordKind::Ds),
        (RecordState::Rumoured, start)
    );
    assert_eq!(
        record(&rolled.state, "ksk-3", RecordKind::Dnskey),
        (RecordState::Hidden, 0)
    );
    assert!(rolled.actions.contains(&Action::RequestDs {
        ids: ids(&["ksk-1", "ksk-3"]),
        appear: ids(&["ksk-3"]),
        disappear: vec![],
    }));

    // Both DS records in every cache: the DNSKEYs swap in one step.
    let seen_at = start + HOUR;
    let state = step_with(&rolled.state, &policy, &["ksk-1", "ksk-3"], seen_at).state;
    let both_at = seen_at + 2 * HOUR + 600;
    let swapped = step_with(&state, &policy, &["ksk-1", "ksk-3"], both_at);
    let state = swapped.state;
    assert_eq!(
        record(&state, "ksk-3", RecordKind::Ds),
        (RecordState::Omnipresent, both_at)
    );
    assert_eq!(
        record(&state, "ksk-3", RecordKind::Dnskey),
        (RecordState::Rumoured, both_at)
    );
    assert_eq!(
        record(&state, "ksk-1", RecordKind::Dnskey),
        (RecordState::Unretentive, both_at)
    );
    assert_eq!(
        record(&state, "ksk-1", RecordKind::Ds).0,
        RecordState::Omnipresent
    );

    // The old DS leaves once the new DNSKEY is in every cache.
    let dnskey_at = both_at + HOUR + 300 + 600;
    assert_eq!(swapped.next_due, Some(dnskey_at));
    let withdrawn = step_with(&state, &policy, &["ksk-1", "ksk-3"], dnskey_at);
    let state = withdrawn.state;
    assert_eq!(
        record(&state, "ksk-1", RecordKind::Ds),
        (RecordState::Unretentive, dnskey_at)
    );
    assert!(withdrawn.actions.contains(&Action::RequestDs {
        ids: ids(&["ksk-3"]),
        appear: vec![],
        disappear: ids(&["ksk-1"]),
    }));

    // Gone at the parent an hour later, then out of caches.
    let gone_at = dnskey_at + HOUR;
    let state = step_with(&state, &policy, &["ksk-3"], gone_at).state;
    let removed_at = gone_at + 2 * HOUR + 1_200;
    let removed = step_with(&state, &policy, &["ksk-3"], removed_at);
    assert!(removed.actions.contains(&Action::RemoveKey {
        id: "ksk-1".to_string()
    }));
}

/// Brings a new zone with one CSK fully in place and returns the state
/// and the time its DS reached every cache.
fn bootstrap_csk(policy: &LifecyclePolicy) -> (EngineState, u64) {
    let first = step(
        &EngineState::default(),
        policy,
        &Observations::default(),
        T0,
    );
    let state = first.state;
    for kind in [RecordKind::Dnskey, RecordKind::Krrsig, RecordKind::Zrrsig] {
        assert_eq!(record(&state, "csk-1", kind), (RecordState::Rumoured, T0));
    }
    let zone_at = T0 + DAY + 300 + 600;
    let state = step_with(&state, policy, &[], T0 + HOUR + 300 + 600).state;
    let state = step_with(&state, policy, &[], zone_at).state;
    assert_eq!(
        record(&state, "csk-1", RecordKind::Ds),
        (RecordState::Rumoured, zone_at)
    );
    let seen_at = zone_at + HOUR;
    let state = step_with(&state, policy, &["csk-1"], seen_at).state;
    let ds_at = seen_at + 2 * HOUR + 600;
    let state = step_with(&state, policy, &["csk-1"], ds_at).state;
    assert!(state.key("csk-1").unwrap().is_established());
    (state, ds_at)
}

#[test]
fn csk_rollover_times() {
    let policy = LifecyclePolicy {
        layout: KeyLayout::Csk,
        ..policy()
    };
    let (state, start) = bootstrap_csk(&policy);
    let observed = requesting(
        parent(&state, &["csk-1"]),
        Request::Rollover { role: KeyRole::Csk },
    );
    let rolled = step(&state, &policy, &observed, start).state;
    assert_eq!(
        record(&rolled, "csk-2", RecordKind::Dnskey),
        (RecordState::Rumoured, start)
    );
    assert_eq!(
        record(&rolled, "csk-2", RecordKind::Zrrsig),
        (RecordState::Hidden, 0)
    );

    // Once the new DNSKEY is in every cache, the DS and the zone
    // signatures swap together.
    let swap_at = start + HOUR + 300 + 600;
    let swapped = step_with(&rolled, &policy, &["csk-1"], swap_at);
    let state = swapped.state;
    for (id, to) in [
        ("csk-2", RecordState::Rumoured),
        ("csk-1", RecordState::Unretentive),
    ] {
        assert_eq!(record(&state, id, RecordKind::Zrrsig), (to, swap_at));
        assert_eq!(record(&state, id, RecordKind::Ds), (to, swap_at));
    }
    assert_eq!(
        record(&state, "csk-1", RecordKind::Dnskey).0,
        RecordState::Omnipresent
    );
    assert!(swapped.actions.contains(&Action::RequestDs {
        ids: ids(&["csk-2"]),
        appear: ids(&["csk-2"]),
        disappear: ids(&["csk-1"]),
    }));

    // The parent swaps the DS an hour later, and the DS records settle first.
    let seen_at = swap_at + HOUR;
    let state = step_with(&state, &policy, &["csk-2"], seen_at).state;
    let ds_in = seen_at + 2 * HOUR + 600;
    let ds_out = seen_at + 2 * HOUR + 1_200;
    let state = step_with(&state, &policy, &["csk-2"], ds_in).state;
    let state = step_with(&state, &policy, &["csk-2"], ds_out).state;
    assert_eq!(
        record(&state, "csk-2", RecordKind::Ds),
        (RecordState::Omnipresent, ds_in)
    );
    assert_eq!(
        record(&state, "csk-1", RecordKind::Ds),
        (RecordState::Hidden, ds_out)
    );

    // The old DNSKEY stays until the new zone signatures are everywhere.
    assert_eq!(
        record(&state, "csk-1", RecordKind::Dnskey).0,
        RecordState::Omnipresent
    );
    let zone_in = swap_at + DAY + 300 + 600;
    let state = step_with(&state, &policy, &["csk-2"], zone_in).state;
    assert_eq!(
        record(&state, "csk-1", RecordKind::Dnskey),
        (RecordState::Unretentive, zone_in)
    );
    let zone_out = swap_at + DAY + 300 + 1_200;
    let state = step_with(&state, &policy, &["csk-2"], zone_out).state;
    assert_eq!(
        record(&state, "csk-1", RecordKind::Zrrsig),
        (RecordState::Hidden, zone_out)
    );
    let removed_at = zone_in + HOUR + 300 + 1_200;
    let removed = step_with(&state, &policy, &["csk-2"], removed_at);
    assert!(removed.actions.contains(&Action::RemoveKey {
        id: "csk-1".to_string()
    }));
}

#[test]
fn algorithm_rollover_order() {
    // RFC 6781 section 4.1.4: signatures of the new algorithm first, then
    // its DNSKEYs, then the DS, then the old DNSKEYs and signatures.
    let (state, start) = bootstrap(&policy());
    let policy = LifecyclePolicy {
        algorithm: 15,
        ..policy()
    };
    let signing = step_with(&state, &policy, &["ksk-1"], start);
    let state = signing.state;
    assert!(signing.actions.contains(&Action::StartSigningZone {
        id: "zsk-4".to_string()
    }));
    assert!(!signing
        .actions
        .iter()
        .any(|action| matches!(action, Action::PublishDnskey { .. })));
    assert_eq!(
        record(&state, "ksk-3", RecordKind::Dnskey),
        (RecordState::Hidden, 0)
    );
    assert_eq!(state.key("ksk-3").unwrap().algorithm, 15);

    // New signatures in every cache: both new DNSKEYs appear.
    let keys_at = start + DAY + 300 + 600;
    let state = step_with(&state, &policy, &["ksk-1"], keys_at).state;
    for id in ["ksk-3", "zsk-4"] {
        assert_eq!(
            record(&state, id, RecordKind::Dnskey),
            (RecordState::Rumoured, keys_at)
        );
    }
    assert_eq!(
        record(&state, "ksk-3", RecordKind::Ds),
        (RecordState::Hidden, 0)
    );

    // New DNSKEYs in every cache: the DS swaps.
    let ds_at = keys_at + HOUR + 300 + 600;
    let state = step_with(&state, &policy, &["ksk-1"], ds_at).state;
    assert_eq!(
        record(&state, "ksk-3", RecordKind::Ds),
        (RecordState::Rumoured, ds_at)
    );
    assert_eq!(
        record(&state, "ksk-1", RecordKind::Ds),
        (RecordState::Unretentive, ds_at)
    );
    for id in ["ksk-1", "zsk-2"] {
        assert_eq!(
            record(&state, id, RecordKind::Dnskey).0,
            RecordState::Omnipresent
        );
    }

    // The new DS in every cache: the old DNSKEYs leave. The old signatures
    // leave only once no cache can have an old DNSKEY.
    let seen_at = ds_at + HOUR;
    let state = step_with(&state, &policy, &["ksk-3"], seen_at).state;
    let new_ds_at = seen_at + 2 * HOUR + 600;
    let state = step_with(&state, &policy, &["ksk-3"], new_ds_at).state;
    for id in ["ksk-1", "zsk-2"] {
        assert_eq!(
            record(&state, id, RecordKind::Dnskey),
            (RecordState::Unretentive, new_ds_at)
        );
    }
    assert_eq!(
        record(&state, "zsk-2", RecordKind::Zrrsig).0,
        RecordState::Omnipresent
    );
    let dnskey_gone = new_ds_at + HOUR + 300 + 1_200;
    let state = step_with(&state, &policy, &["ksk-3"], dnskey_gone).state;
    assert_eq!(
        record(&state, "zsk-2", RecordKind::Zrrsig),
        (RecordState::Unretentive, dnskey_gone)
    );
    let removed_at = dnskey_gone + DAY + 300 + 1_200;
    let removed = step_with(&state, &policy, &["ksk-3"], removed_at);
    assert!(removed.actions.contains(&Action::RemoveKey {
        id: "zsk-2".to_string()
    }));
    assert!(removed.state.keys.iter().all(|key| key.algorithm == 15));
}

/// Counts the `ChangeDenial` actions of a step.
fn denial_changes(step: &Step) -> usize {
    step.actions
        .iter()
        .filter(|action| matches!(action, Action::ChangeDenial { .. }))
        .count()
}

#[test]
fn denial_changes_once() {
    let (state, now) = bootstrap(&policy());
    let salted = DenialSettings::Nsec3 {
        iterations: 0,
        salt_length: 8,
        opt_out: false,
    };
    let unsalted = DenialSettings::Nsec3 {
        iterations: 0,
        salt_length: 0,
        opt_out: false,
    };
    let mut state = state;
    let mut at = now;
    for to in [salted, unsalted, DenialSettings::Nsec] {
        let policy = LifecyclePolicy {
            denial: to.clone(),
            ..policy()
        };
        at += DAY;
        let changed = step_with(&state, &policy, &["ksk-1"], at);
        assert_eq!(denial_changes(&changed), 1, "{:?}", changed.actions);
        assert!(changed
            .actions
            .contains(&Action::ChangeDenial { to: to.clone() }));
        assert!(changed.actions.contains(&Action::ResignZone));
        assert_eq!(changed.state.denial, Some(to));

        // The next step changes nothing.
        let again = step_with(&changed.state, &policy, &["ksk-1"], at + 1);
        assert_eq!(denial_changes(&again), 0, "{:?}", again.actions);
        state = again.state;
    }
}

#[test]
fn lowered_dnskey_ttl_keeps_old_in_waits() {
    let (state, now) = bootstrap(&policy());

    // Raise the DNSKEY TTL to a day, then lower it back to an hour.
    let long = LifecyclePolicy {
        dnskey_ttl: DAY,
        ..policy()
    };
    let raised = step_with(&state, &long, &["ksk-1"], now);
    assert!(raised.actions.contains(&Action::PublishTtls {
        dnskey_ttl: DAY,
        max_zone_ttl: DAY,
    }));
    let lowered_at = now + 2 * DAY;
    let lowered = step_with(&raised.state, &policy(), &["ksk-1"], lowered_at);
    assert!(lowered.actions.contains(&Action::PublishTtls {
        dnskey_ttl: HOUR,
        max_zone_ttl: DAY,
    }));

    // A ZSK rollover right after waits with the old TTL of a day.
    let observed = requesting(
        parent(&lowered.state, &["ksk-1"]),
        Request::Rollover { role: KeyRole::Zsk },
    );
    let rolled = step(&lowered.state, &policy(), &observed, lowered_at);
    assert_eq!(
        record(&rolled.state, "zsk-3", RecordKind::Dnskey),
        (RecordState::Rumoured, lowered_at)
    );
    let old_ttl_gone = lowered_at + DAY + 300;
    assert_eq!(rolled.next_due, Some(old_ttl_gone));

    // The wait keeps the old TTL after the old TTL left caches.
    let state = step_with(&rolled.state, &policy(), &["ksk-1"], old_ttl_gone).state;
    assert_eq!(
        record(&state, "zsk-3", RecordKind::Dnskey).0,
        RecordState::Rumoured
    );
    let dnskey_at = lowered_at + DAY + 300 + 600;
    let state = step_with(&state, &policy(), &["ksk-1"], dnskey_at).state;
    assert_eq!(
        record(&state, "zsk-3", RecordKind::Dnskey),
        (RecordState::Omnipresent, dnskey_at)
    );

    // A rollover after the old TTL left caches uses the new one.
    let later = old_ttl_gone + 60 * DAY;
    let fresh = step_with(&state, &policy(), &["ksk-1"], later);
    let newest = fresh
        .state
        .keys
        .iter()
        .filter(|key| key.role == KeyRole::Zsk)
        .max_by_key(|key| key.created)
        .expect("a ZSK")
        .id
        .clone();
    assert_eq!(
        record(&fresh.state, &newest, RecordKind::Dnskey),
        (RecordState::Rumoured, later)
    );
    assert_eq!(fresh.next_due, Some(later + HOUR + 300 + 600));
}

#[test]
fn lifetime_change_applies_at_once() {
    let (state, now) = bootstrap(&policy());
    let shorter = LifecyclePolicy {
        zsk_lifetime: Some(DAY),
        ..policy()
    };
    // The ZSK started signing at T0, so a one-day lifetime is over.
    let changed_at = now + 60;
    let rolled = step_with(&state, &shorter, &["ksk-1"], changed_at);
    assert!(rolled.actions.contains(&Action::GenerateKey {
        id: "zsk-3".to_string(),
        role: KeyRole::Zsk,
        algorithm: 13,
    }));
    assert_eq!(
        record(&rolled.state, "zsk-3", RecordKind::Dnskey),
        (RecordState::Rumoured, changed_at)
    );
    assert_eq!(rolled.state.key("zsk-2").unwrap().goal, Goal::Hidden);

    // A longer lifetime moves the rollover later.
    let longer = LifecyclePolicy {
        zsk_lifetime: Some(60 * DAY),
        ..policy()
    };
    let lead = HOUR + 300 + 600;
    let old_due = T0 + 30 * DAY - lead;
    let kept = step_with(&state, &longer, &["ksk-1"], old_due);
    assert!(kept.state.key("zsk-3").is_none());
    assert_eq!(kept.state.key("zsk-2").unwrap().goal, Goal::Omnipresent);
    assert_eq!(kept.next_due, Some(T0 + 60 * DAY - lead));
}

#[test]
fn manual_check_waits_for_step() {
    let (state, now) = bootstrap(&policy());
    let policy = LifecyclePolicy {
        parent_ds_check: ParentDsCheck::Manual,
        ..policy()
    };
    let observed = requesting(
        parent(&state, &["ksk-1"]),
        Request::Rollover { role: KeyRole::Ksk },
    );
    let state = step(&state, &policy, &observed, now).state;
    let swap_at = now + HOUR + 300 + 600;
    let swapped = step_with(&state, &policy, &["ksk-1"], swap_at);
    assert_eq!(
        record(&swapped.state, "ksk-3", RecordKind::Ds),
        (RecordState::Rumoured, swap_at)
    );

    // The parent's change is seen, but only the operator's step counts.
    let later = swap_at + 10 * DAY;
    let waiting = step_with(&swapped.state, &policy, &["ksk-3"], later);
    assert_eq!(waiting.state.key("ksk-3").unwrap().ds_seen, None);
    assert_eq!(
        record(&waiting.state, "ksk-3", RecordKind::Ds),
        (RecordState::Rumoured, swap_at)
    );
    assert!(waiting
        .waiting
        .iter()
        .any(|wait| wait.what.contains("ksk-3") && wait.until.is_none()));

    let stepped_at = later + HOUR;
    let observed = requesting(parent(&waiting.state, &["ksk-3"]), Request::Step);
    let stepped = step(&waiting.state, &policy, &observed, stepped_at);
    let state = stepped.state;
    assert_eq!(state.key("ksk-3").unwrap().ds_seen, Some(stepped_at));
    assert_eq!(state.key("ksk-1").unwrap().ds_gone, Some(stepped_at));
    let ds_in = stepped_at + 2 * HOUR + 600;
    assert_eq!(stepped.next_due, Some(ds_in));
    let state = step_with(&state, &policy, &["ksk-3"], ds_in).state;
    assert_eq!(
        record(&state, "ksk-3", RecordKind::Ds),
        (RecordState::Omnipresent, ds_in)
    );
    let ds_out = stepped_at + 2 * HOUR + 1_200;
    let state = step_with(&state, &policy, &["ksk-3"], ds_out).state;
    assert_eq!(
        record(&state, "ksk-1", RecordKind::Ds),
        (RecordState::Hidden, ds_out)
    );
}

#[test]
fn state_with_denial_pending_loads() {
    let (state, _) = bootstrap(&policy());
    let mut json = serde_json::to_value(&state).expect("serialise");
    json["denial_pending"] = serde_json::json!({"method": "nsec"});
    let back: EngineState = serde_json::from_value(json).expect("deserialise");
    assert_eq!(back, state);
}

#[test]
fn rollover_during_first_signing_keeps_the_zone_signed() {
    let policy = policy();
    let first = step(
        &EngineState::default(),
        &policy,
        &Observations::default(),
        T0,
    );
    // While nothing is omnipresent resolvers treat the zone as insecure,
    // yet every version must still be signed completely.
    let request = Observations {
        requests: vec![Request::Retire {
            id: "zsk-2".to_string(),
        }],
        ..Observations::default()
    };
    let mut state = step(&first.state, &policy, &request, T0 + 60).state;
    assert_eq!(
        record(&state, "zsk-2", RecordKind::Zrrsig).0,
        RecordState::Rumoured,
        "the only zone-signing key stopped signing"
    );
    let successor = state
        .keys
        .iter()
        .find(|key| key.role == KeyRole::Zsk && key.id != "zsk-2")
        .map(|key| key.id.clone())
        .expect("a successor ZSK");
    // Step through the rollover: at no time does the zone lack a signer.
    let mut now = T0 + 60;
    for _ in 0..200 {
        let result = step(&state, &policy, &parent(&state, &[]), now);
        state = result.state;
        assert!(
            signable(&state.keys),
            "the zone cannot be signed at {now}: {:?}",
            state.keys
        );
        match result.next_due {
            Some(next) => now = next,
            None => break,
        }
        if state.key("zsk-2").is_none() {
            break;
        }
    }
    assert!(state.key("zsk-2").is_none(), "the old ZSK never left");
    assert_eq!(
        record(&state, &successor, RecordKind::Zrrsig).0,
        RecordState::Omnipresent
    );
}
