//! The words for key and zone events, shared by forecasts ([`crate::plan`])
//! and simulation timelines ([`crate::sim`]).

use keymaster_api::RecordState;

use crate::state::{EngineState, RecordKind};
use crate::types::Action;

/// Event of a key whose DS the parent started serving.
pub(crate) const DS_AT_PARENT: &str = "DS at the parent";

/// Event of a key whose DS the parent stopped serving.
pub(crate) const DS_GONE_FROM_PARENT: &str = "DS gone from the parent";

/// Lists the key events of one action as (key id, event) pairs. `before` is
/// the state before the step that returned the action.
pub(crate) fn key_events(before: &EngineState, action: &Action) -> Vec<(String, String)> {
    let single = |id: &String, event: &str| vec![(id.clone(), event.to_string())];
    match action {
        Action::GenerateKey { id, role, .. } => {
            let replaces = before
                .keys
                .iter()
                .any(|key| key.role == *role && !key.is_gone());
            let event = if replaces {
                "successor generated"
            } else {
                "generated"
            };
            single(id, event)
        }
        Action::PublishDnskey { id } => single(id, "DNSKEY published"),
        Action::UnpublishDnskey { id } => single(id, "DNSKEY withdrawn"),
        Action::StartSigningDnskey { id } => single(id, "signs the DNSKEY RRset"),
        Action::StopSigningDnskey { id } => single(id, "stops signing the DNSKEY RRset"),
        Action::StartSigningZone { id } => single(id, "signs zone data"),
        Action::StopSigningZone { id } => single(id, "stops signing zone data"),
        Action::SetRevoke { id } => single(id, "revoked"),
        Action::RemoveKey { id } => single(id, "removed"),
        Action::RequestDs {
            appear, disappear, ..
        } => {
            let requested = appear
                .iter()
                .map(|id| (id.clone(), "DS requested at the parent".to_string()));
            let withdrawn = disappear
                .iter()
                .map(|id| (id.clone(), "DS removal requested at the parent".to_string()));
            requested.chain(withdrawn).collect()
        }
        Action::PublishCds { .. }
        | Action::PublishCdsDelete
        | Action::Unsign
        | Action::ChangeDenial { .. }
        | Action::PublishTtls { .. }
        | Action::ResignZone
        | Action::HaltKeyManagement
        | Action::ResumeKeyManagement { .. } => Vec::new(),
    }
}

/// Describes an action that concerns the zone rather than one key.
pub(crate) fn zone_event(action: &Action) -> Option<String> {
    let event = match action {
        Action::PublishCds { ids } if ids.is_empty() => "CDS and CDNSKEY removed".to_string(),
        Action::PublishCds { ids } => {
            format!("CDS and CDNSKEY published for {}", ids.join(", "))
        }
        Action::PublishCdsDelete => "CDS and CDNSKEY delete form published".to_string(),
        Action::Unsign => "zone published unsigned".to_string(),
        Action::RequestDs { ids, .. } if ids.is_empty() => {
            "removal of every DS requested at the parent".to_string()
        }
        Action::ChangeDenial { to } => format!("denial of existence changed to {to}"),
        Action::PublishTtls {
            dnskey_ttl,
            max_zone_ttl,
        } => format!("TTLs published: DNSKEY {dnskey_ttl}s, zone data up to {max_zone_ttl}s"),
        Action::ResignZone => "zone re-signed".to_string(),
        Action::HaltKeyManagement => "key management halted: key store unreadable".to_string(),
        Action::ResumeKeyManagement { halted_since } => {
            format!("key management resumed after a halt since {halted_since}")
        }
        _ => return None,
    };
    Some(event)
}

/// Lists the records that completed a transition between two states, as
/// (key id, event) pairs such as "DS omnipresent" or "DNSKEY hidden".
pub(crate) fn record_events(before: &EngineState, after: &EngineState) -> Vec<(String, String)> {
    let mut events = Vec::new();
    for key in &after.keys {
        let Some(old) = before.key(&key.id) else {
            continue;
        };
        for kind in key.kinds() {
            let (was, now) = (old.record(*kind).state, key.record(*kind).state);
            if was == now {
                continue;
            }
            let reached = match now {
                RecordState::Omnipresent => "omnipresent",
                RecordState::Hidden => "hidden",
                RecordState::Rumoured | RecordState::Unretentive => continue,
            };
            events.push((key.id.clone(), format!("{} {reached}", kind_name(*kind))));
        }
    }
    events
}

/// Returns the name of a record kind in events.
fn kind_name(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Dnskey => "DNSKEY",
        RecordKind::Krrsig => "RRSIG over DNSKEY",
        RecordKind::Zrrsig => "RRSIG over zone data",
        RecordKind::Ds => "DS",
    }
}
