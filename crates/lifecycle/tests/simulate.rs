//! Ten-year simulations of every rollover method, each of which must leave
//! no resolver with a bogus answer at any moment.

use keymaster_api::KeyRole;
use keymaster_lifecycle::sim::{run, Report, Scenario, MAX_STEPS};
use keymaster_lifecycle::testing::{policy, DAY, HOUR};
use keymaster_lifecycle::{DenialSettings, LifecyclePolicy, Request};
use keymaster_policy::{KeyLayout, KskRollover, ParentDsCheck, Policy, ZskRollover};

/// Asserts that a run reached its end with no bogus second, no stall and
/// no action a server would reject.
fn assert_clean(report: &Report) {
    assert_eq!(report.errors, Vec::<String>::new());
    assert_eq!(
        report.bogus_seconds, 0,
        "first bogus at {:?}",
        report.first_bogus
    );
    assert_eq!(report.stalls, Vec::new());
    assert!(
        report.steps < MAX_STEPS,
        "the run stopped at {MAX_STEPS} steps"
    );
}

/// Number of keys of a role a ten-year run should generate at least: one
/// per lifetime, less one for rounding.
fn rolls(report: &Report, role: &str) -> usize {
    report.generated.get(role).copied().unwrap_or(0)
}

#[test]
fn zsk_pre_publication() {
    let report = run(&Scenario::new(policy(), 10));
    assert_clean(&report);
    assert!(rolls(&report, "Zsk") >= 60, "{:?}", report.generated);
    assert!(rolls(&report, "Ksk") >= 10, "{:?}", report.generated);
}

#[test]
fn zsk_double_signature() {
    let policy = LifecyclePolicy {
        zsk_method: ZskRollover::DoubleSignature,
        ..policy()
    };
    let report = run(&Scenario::new(policy, 10));
    assert_clean(&report);
    assert!(rolls(&report, "Zsk") >= 60, "{:?}", report.generated);
}

#[test]
fn ksk_double_ksk_with_slow_parent() {
    let policy = LifecyclePolicy {
        ksk_lifetime: Some(120 * DAY),
        ..policy()
    };
    let mut scenario = Scenario::new(policy, 10);
    scenario.parent_delay = 3 * DAY;
    let report = run(&scenario);
    assert_clean(&report);
    assert!(rolls(&report, "Ksk") >= 30, "{:?}", report.generated);
}

#[test]
fn ksk_double_ds() {
    let policy = LifecyclePolicy {
        ksk_method: KskRollover::DoubleDs,
        ksk_lifetime: Some(120 * DAY),
        ..policy()
    };
    let report = run(&Scenario::new(policy, 10));
    assert_clean(&report);
    assert!(rolls(&report, "Ksk") >= 30, "{:?}", report.generated);
}

#[test]
fn csk_rollover() {
    let policy = LifecyclePolicy {
        layout: KeyLayout::Csk,
        csk_lifetime: Some(90 * DAY),
        ..policy()
    };
    let report = run(&Scenario::new(policy, 10));
    assert_clean(&report);
    assert!(rolls(&report, "Csk") >= 40, "{:?}", report.generated);
    assert_eq!(rolls(&report, "Zsk"), 0);
}

fn algorithm_rollover(from: u8, to: u8) -> Report {
    let policy = LifecyclePolicy {
        algorithm: from,
        ..policy()
    };
    let mut scenario = Scenario::new(policy.clone(), 10);
    let change = scenario.start + 400 * DAY;
    scenario.policy_changes.push((
        change,
        LifecyclePolicy {
            algorithm: to,
            ..policy
        },
    ));
    run(&scenario)
}

/// Runs an algorithm rollover and checks that only keys of the new
/// algorithm are left.
fn assert_rolls_algorithm(from: u8, to: u8) {
    let report = algorithm_rollover(from, to);
    assert_clean(&report);
    let final_algorithms: Vec<u8> = report
        .final_state
        .keys
        .iter()
        .map(|k| k.algorithm)
        .collect();
    assert!(
        final_algorithms.iter().all(|a| *a == to),
        "{final_algorithms:?}"
    );
}

#[test]
fn algorithm_rollover_8_to_13() {
    assert_rolls_algorithm(8, 13);
}

#[test]
fn algorithm_rollover_13_to_15() {
    assert_rolls_algorithm(13, 15);
}

#[test]
fn nsec_to_nsec3_and_back() {
    let policy = LifecyclePolicy {
        denial: DenialSettings::Nsec,
        ..policy()
    };
    let mut scenario = Scenario::new(policy.clone(), 10);
    let nsec3 = DenialSettings::Nsec3 {
        iterations: 0,
        salt_length: 8,
        opt_out: false,
    };
    scenario.policy_changes.push((
        scenario.start + 100 * DAY,
        LifecyclePolicy {
            denial: nsec3,
            ..policy.clone()
        },
    ));
    scenario
        .policy_changes
        .push((scenario.start + 200 * DAY, policy));
    let report = run(&scenario);
    assert_clean(&report);
    assert_eq!(report.final_state.denial, Some(DenialSettings::Nsec));
}

#[test]
fn dnskey_ttl_lowered_before_rollover() {
    let policy = LifecyclePolicy {
        dnskey_ttl: DAY,
        ..policy()
    };
    let mut scenario = Scenario::new(policy.clone(), 10);
    // The first ZSK starts signing at the start and rolls 60 days later,
    // less the DNSKEY publication wait; lower the TTL an hour before that.
    let lead = policy.rollover_lead(KeyRole::Zsk);
    let change = scenario.start + 60 * DAY - lead - HOUR;
    scenario.policy_changes.push((
        change,
        LifecyclePolicy {
            dnskey_ttl: HOUR,
            ..policy
        },
    ));
    let report = run(&scenario);
    assert_clean(&report);
}

#[test]
fn manual_rollover_during_rollover() {
    let mut scenario = Scenario::new(policy(), 10);
    let first = scenario.start + 20 * DAY;
    scenario
        .requests
        .push((first, Request::Rollover { role: KeyRole::Zsk }));
    scenario
        .requests
        .push((first + HOUR, Request::Rollover { role: KeyRole::Zsk }));
    scenario
        .requests
        .push((first + 2 * HOUR, Request::Rollover { role: KeyRole::Ksk }));
    let report = run(&scenario);
    assert_clean(&report);
    assert!(report.max_keys <= 4, "max keys {}", report.max_keys);
}

#[test]
fn parent_publishes_after_two_weeks() {
    let mut scenario = Scenario::new(policy(), 10);
    scenario.parent_delay = 14 * DAY;
    let report = run(&scenario);
    assert_clean(&report);
    assert!(rolls(&report, "Ksk") >= 10, "{:?}", report.generated);
}

#[test]
fn key_store_outage_at_due_step() {
    let scenario = Scenario::new(policy(), 10);
    let reference = run(&scenario);
    // Pick a step with actions well after the start, when a rollover runs.
    let due = *reference
        .action_times
        .iter()
        .find(|at| **at > scenario.start + 100 * DAY)
        .expect("a step with actions after day 100");
    let mut outage = scenario.clone();
    outage.key_store_outages.push((due, due + 600));
    let report = run(&outage);
    assert_clean(&report);
    assert_eq!(report.halts, 1);
    assert_eq!(report.generated, reference.generated);
}

#[test]
fn rfc5011_ksk_rollover() {
    let policy = LifecyclePolicy {
        rfc5011: true,
        ksk_lifetime: Some(365 * DAY),
        ..policy()
    };
    let report = run(&Scenario::new(policy, 10));
    assert_clean(&report);
    assert!(rolls(&report, "Ksk") >= 9, "{:?}", report.generated);
}

#[test]
fn unchecked_slow_parent_is_caught() {
    // With no DS check the engine assumes the parent publishes within its
    // propagation delay. A parent that takes two weeks breaks that
    // assumption, so the simulation must see a bogus window.
    let policy = LifecyclePolicy {
        parent_ds_check: ParentDsCheck::None,
        ksk_lifetime: Some(120 * DAY),
        ..policy()
    };
    let mut scenario = Scenario::new(policy, 2);
    scenario.parent_delay = 14 * DAY;
    let report = run(&scenario);
    assert!(report.bogus_seconds > 0, "{report:?}");
}

/// Returns the time of the first timeline entry with this text.
fn first_event(report: &Report, event: &str) -> Option<u64> {
    report
        .timeline
        .iter()
        .find(|entry| entry.event == event)
        .map(|entry| entry.at)
}

#[test]
fn timeline_lists_actions_and_parent() {
    let scenario = Scenario::new(policy(), 1);
    let report = run(&scenario);
    assert_clean(&report);
    assert_eq!(
        first_event(&report, "ksk-1: DNSKEY published"),
        Some(scenario.start)
    );

    // The DS is requested once zone signatures are in every cache, and the
    // parent serves it an hour later.
    let requested = scenario.start + DAY + 300 + 600;
    assert_eq!(
        first_event(&report, "ksk-1: DS requested at the parent"),
        Some(requested)
    );
    assert_eq!(
        first_event(&report, "ksk-1: DS at the parent"),
        Some(requested + HOUR)
    );
    assert!(report
        .timeline
        .windows(2)
        .all(|pair| pair[0].at <= pair[1].at));
}

#[test]
fn manual_check_without_step_stalls() {
    // No operator confirms the parent's DS changes, so the first DS never
    // becomes omnipresent.
    let policy = LifecyclePolicy {
        parent_ds_check: ParentDsCheck::Manual,
        ..policy()
    };
    let scenario = Scenario::new(policy, 1);
    let report = run(&scenario);
    assert_eq!(report.bogus_seconds, 0);
    let stall = report.stalls.first().expect("a stall");
    assert_eq!(stall.key_id.as_deref(), Some("ksk-1"));
    assert_eq!(
        Some(stall.since),
        first_event(&report, "ksk-1: DS requested at the parent")
    );
    assert!(stall.to_string().contains("Ds of key ksk-1"), "{stall}");
}

#[test]
fn rollover_without_due_time_stalls() {
    // With no lifetimes nothing wakes the engine once it waits for a
    // confirmation that never comes.
    let policy = LifecyclePolicy {
        parent_ds_check: ParentDsCheck::Manual,
        ksk_lifetime: None,
        zsk_lifetime: None,
        ..policy()
    };
    let scenario = Scenario::new(policy, 1);
    let report = run(&scenario);
    let idle = report
        .stalls
        .iter()
        .find(|stall| stall.key_id.is_none())
        .expect("a stall with no due time");
    assert_eq!(
        Some(idle.since),
        first_event(&report, "ksk-1: DS at the parent")
    );
}

#[test]
fn scenario_from_configured_policy() {
    let scenario = Scenario::from_policy(&Policy::default(), 2 * 365 * DAY, 6 * HOUR);
    assert_eq!(scenario.end - scenario.start, 2 * 365 * DAY);
    assert_eq!(scenario.parent_delay, 6 * HOUR);
    assert_eq!(scenario.policy, LifecyclePolicy::default());
    let report = run(&scenario);
    assert_clean(&report);
    assert!(rolls(&report, "Zsk") >= 8, "{:?}", report.generated);
}

/// Returns the time of the first event with this suffix of a KSK other
/// than the first one.
fn first_successor_ksk_event(report: &Report, suffix: &str) -> Option<u64> {
    report
        .timeline
        .iter()
        .find(|entry| {
            entry.event.starts_with("ksk-")
                && !entry.event.starts_with("ksk-1:")
                && entry.event.ends_with(suffix)
        })
        .map(|entry| entry.at)
}

#[test]
fn parent_ds_ttl_lowered_with_new_ds() {
    // The parent serves its DS RRset with a two-day TTL and lowers it to
    // an hour when it publishes the DS of the first KSK rollover. Caches
    // may still hold the old DS for two days, so the old KSK must stay.
    let policy = LifecyclePolicy {
        parent_ds_ttl: 2 * DAY,
        ksk_lifetime: Some(120 * DAY),
        ..policy()
    };
    let scenario = Scenario::new(policy, 10);
    let reference = run(&scenario);
    assert_clean(&reference);
    let new_ds_at =
        first_successor_ksk_event(&reference, ": DS at the parent").expect("a KSK rollover");

    let mut lowered = scenario.clone();
    lowered.parent_ds_ttl_changes.push((new_ds_at, HOUR));
    let report = run(&lowered);
    assert_clean(&report);
    // The old KSK leaves once the new DS is in every cache: two days (the
    // old TTL) and the publish safety margin after the new DS appeared.
    let withdrawn = first_event(&report, "ksk-1: DNSKEY withdrawn").expect("old KSK withdrawn");
    assert!(
        withdrawn >= new_ds_at + 2 * DAY + 600,
        "old KSK withdrawn at {withdrawn}, new DS at {new_ds_at}"
    );
    assert!(rolls(&report, "Ksk") >= 30, "{:?}", report.generated);
}

#[test]
fn ksk_zsk_to_csk_and_back() {
    let policy = policy();
    let mut scenario = Scenario::new(policy.clone(), 10);
    let csk = LifecyclePolicy {
        layout: KeyLayout::Csk,
        csk_lifetime: Some(90 * DAY),
        ..policy.clone()
    };
    scenario
        .policy_changes
        .push((scenario.start + 100 * DAY, csk));
    scenario
        .policy_changes
        .push((scenario.start + 3 * 365 * DAY, policy));
    let report = run(&scenario);
    assert_clean(&report);
    assert!(rolls(&report, "Csk") >= 8, "{:?}", report.generated);
    let roles: Vec<KeyRole> = report.final_state.keys.iter().map(|k| k.role).collect();
    assert!(roles.contains(&KeyRole::Ksk), "{roles:?}");
    assert!(roles.contains(&KeyRole::Zsk), "{roles:?}");
    assert!(!roles.contains(&KeyRole::Csk), "{roles:?}");
}

/// Runs ten years in which the zone goes insecure after `after` seconds,
/// and checks that it was published unsigned only once the DS had left
/// every cache. Returns the report and the time it was published unsigned.
fn go_insecure(policy: LifecyclePolicy, after: u64) -> (Report, u64) {
    let mut scenario = Scenario::new(policy.clone(), 10);
    let requested = scenario.start + after;
    scenario.requests.push((requested, Request::GoInsecure));
    let report = run(&scenario);
    assert_clean(&report);
    let unsigned = first_event(&report, "zone published unsigned").expect("zone unsigned");
    let removal = report
        .timeline
        .iter()
        .find(|entry| entry.at >= requested && entry.event.ends_with("DS gone from the parent"))
        .expect("the parent removed the DS")
        .at;
    assert_eq!(removal, requested + scenario.parent_delay);
    assert!(
        unsigned >= removal + policy.parent_ds_ttl,
        "unsigned at {unsigned}, DS removed at {removal}"
    );
    (report, unsigned)
}

#[test]
fn going_insecure_with_secure_delegation() {
    let policy = policy();
    let (report, unsigned) = go_insecure(policy.clone(), 200 * DAY);
    let start = Scenario::new(policy, 10).start;
    // DS removal seen, then DS TTL + parent propagation + retire safety.
    assert_eq!(unsigned, start + 200 * DAY + HOUR + HOUR + 2 * HOUR + 1_200);
    assert!(report.final_state.is_unsigned());
    assert!(report.final_state.keys.is_empty());
    assert!(report.insecure_seconds > 0);
    let removed = report
        .timeline
        .iter()
        .filter(|entry| entry.at == unsigned && entry.event.ends_with(": removed"))
        .count();
    assert_eq!(removed, 2);
}

#[test]
fn going_insecure_during_ksk_rollover() {
    // A KSK rollover runs at day 365 with a DS TTL of a day. Going insecure
    // in the middle of it lets both DS records expire.
    let policy = LifecyclePolicy {
        parent_ds_ttl: DAY,
        ..policy()
    };
    let reference = run(&Scenario::new(policy.clone(), 2));
    let swap = first_successor_ksk_event(&reference, ": DS requested at the parent")
        .expect("a KSK rollover");
    let start = Scenario::new(policy.clone(), 2).start;
    go_insecure(policy, swap - start + 2 * HOUR);
}

#[test]
fn going_insecure_and_signing_again() {
    let policy = policy();
    let mut scenario = Scenario::new(policy, 10);
    let requested = scenario.start + 200 * DAY;
    scenario.requests.push((requested, Request::GoInsecure));
    scenario
        .requests
        .push((requested + 100 * DAY, Request::Sign));
    let report = run(&scenario);
    assert_clean(&report);
    assert!(!report.final_state.is_unsigned());
    assert!(rolls(&report, "Ksk") >= 10, "{:?}", report.generated);
}

#[test]
fn rfc5011_short_hold_downs() {
    // Hold-downs, TTLs and delays of seconds, as in a test against a
    // resolver that permits small hold-downs, and daily rollovers.
    let policy = LifecyclePolicy {
        rfc5011: true,
        rfc5011_add_hold_down: 10,
        rfc5011_remove_hold_down: 10,
        ksk_lifetime: Some(DAY),
        zsk_lifetime: Some(DAY),
        dnskey_ttl: 10,
        max_zone_ttl: 10,
        zone_propagation_delay: 1,
        parent_ds_ttl: 10,
        parent_propagation_delay: 5,
        publish_safety: 1,
        retire_safety: 2,
        ..policy()
    };
    assert_eq!(policy.check(), Ok(()));
    let mut scenario = Scenario::new(policy, 10);
    scenario.parent_delay = 5;
    let report = run(&scenario);
    assert_clean(&report);
    assert!(rolls(&report, "Ksk") >= 3_000, "{:?}", report.generated);
    let revoked = report
        .timeline
        .iter()
        .filter(|entry| entry.event.ends_with(": revoked"))
        .count();
    assert!(revoked >= 3_000, "{revoked} revoked keys");
}
