//! Runs the keymaster CLI on a [`Member`] and reads its JSON.
//!
//! The key lists are those of `keymaster key list ZONE --json`: one object
//! a key with its `role` (`ksk`, `zsk` or `csk`), `id`, `key_tag` and the
//! state of each of its records (`dnskey_state`, `krrsig_state`,
//! `zrrsig_state`, `ds_state`), each `hidden`, `rumoured`, `omnipresent`
//! or `unretentive`.

use std::process::Output;

use serde_json::Value;

use crate::member::Member;
use crate::output_text;

/// Runs the CLI on `member` and returns its output; panics with the
/// member's log when the command fails.
pub fn ok(member: &Member, args: &[&str]) -> Output {
    let output = member.cli(args);
    assert!(
        output.status.success(),
        "{} {args:?} failed: {}\n{}",
        member.name,
        output_text(&output),
        member.log()
    );
    output
}

/// Runs the CLI on `member`, expects it to fail and returns its message.
pub fn rejected(member: &Member, args: &[&str]) -> String {
    let output = member.cli(args);
    let message = output_text(&output);
    assert!(
        !output.status.success(),
        "{} {args:?} succeeded: {message}",
        member.name
    );
    message
}

/// Parses a command's standard output as JSON; panics with the output
/// when it is not.
pub fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", output_text(output)))
}

/// Returns `zone show ZONE --json` on `member`.
pub fn zone_json(member: &Member, zone: &str) -> Value {
    json(&ok(member, &["zone", "show", zone, "--json"]))
}

/// Returns `key list ZONE --json` on `member`, one value a key.
pub fn keys_json(member: &Member, zone: &str) -> Vec<Value> {
    let list = json(&ok(member, &["key", "list", zone, "--json"]));
    match list {
        Value::Array(keys) => keys,
        other => panic!("{}: key list {zone} is not a list: {other}", member.name),
    }
}

/// Returns whether a zone has exactly one KSK and one ZSK, each fully in
/// the zone (every record of the key omnipresent).
pub fn keys_established(keys: &[Value]) -> bool {
    keys.len() == 2
        && keys.iter().all(|key| {
            let records: &[&str] = if key["role"] == "zsk" {
                &["dnskey_state", "zrrsig_state"]
            } else {
                &["dnskey_state", "krrsig_state"]
            };
            records.iter().all(|state| key[*state] == "omnipresent")
        })
}

/// Returns the id and key tag of the first key with `role`; panics with
/// the list when there is none.
pub fn key_of_role(keys: &[Value], role: &str) -> (String, u64) {
    let key = keys
        .iter()
        .find(|key| key["role"] == role)
        .unwrap_or_else(|| panic!("no {role} in {keys:?}"));
    (
        key["id"].as_str().unwrap().to_string(),
        key["key_tag"].as_u64().unwrap(),
    )
}
