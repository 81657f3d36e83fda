//! Key events on a timeline: the `plan` table and the `simulate` command.
//!
//! `simulate` needs no running server. It runs the lifecycle engine on a
//! virtual clock with [`keymaster_lifecycle::sim`], which models resolver
//! caches and a parent that publishes DS changes after a delay. At every
//! moment anything changes it checks every combination of cached RRsets.

use std::path::Path;

use anyhow::Context;
use keymaster_lifecycle::plan::PlannedEvent;
use keymaster_lifecycle::sim::{self, Report, Scenario};
use keymaster_zone::format_utc;
use serde::Serialize;

use crate::cli::SimulateArgs;

/// Renders planned key events as a table, one line per event.
pub fn plan_table(events: &[PlannedEvent]) -> String {
    let mut out = format!(
        "{:<19}  {:<17} {:>5} {:<4} {:>4}  {}\n",
        "TIME (UTC)", "KEY", "TAG", "ROLE", "ALG", "EVENT"
    );
    if events.is_empty() {
        out.push_str("(no key events in this period)\n");
    }
    for event in events {
        out.push_str(&format!(
            "{:<19}  {:<17} {:>5} {:<4} {:>4}  {}\n",
            format_utc(event.at),
            event.key_id,
            event.key_tag.map_or("-".to_string(), |tag| tag.to_string()),
            format!("{:?}", event.role).to_lowercase(),
            event.algorithm,
            event.event
        ));
    }
    out
}

/// Output of `simulate --json`.
#[derive(Serialize)]
struct SimulationOutput<'a> {
    policy: String,
    start: u64,
    end: u64,
    bogus_seconds: u64,
    first_bogus: Option<u64>,
    insecure_seconds: u64,
    stalls: &'a [sim::Stall],
    errors: &'a [String],
    generated: &'a std::collections::BTreeMap<String, usize>,
    timeline: &'a [sim::TimelineEntry],
}

/// Runs `keymaster simulate`. It fails when any resolver could have held
/// a bogus response, when a step stalled, or when the engine returned an
/// action a server would reject.
pub fn simulate(args: &SimulateArgs, json: bool) -> anyhow::Result<()> {
    let policy = crate::offline::read_policy(Some(&args.policy))?;
    let span = parse_span(&args.span)?;
    let parent_delay = parse_duration("--parent-delay", &args.parent_delay)?;
    if let Some(zone) = &args.zone {
        check_zone_ttls(zone, &policy)?;
    }
    let scenario = Scenario::from_policy(&policy, span, parent_delay);
    let report = sim::run(&scenario);
    let output = SimulationOutput {
        policy: policy.name.clone(),
        start: scenario.start,
        end: scenario.end,
        bogus_seconds: report.bogus_seconds,
        first_bogus: report.first_bogus,
        insecure_seconds: report.insecure_seconds,
        stalls: &report.stalls,
        errors: &report.errors,
        generated: &report.generated,
        timeline: &report.timeline,
    };
    let text = if json {
        serde_json::to_string_pretty(&output)?
    } else {
        simulation_text(&scenario, &report)
    };
    crate::client::write_stdout(&text)?;
    if report.bogus_seconds > 0 {
        anyhow::bail!(
            "{} bogus seconds: some resolver could have failed to validate the zone, first at {}",
            report.bogus_seconds,
            report.first_bogus.map_or("-".to_string(), format_utc)
        );
    }
    if let Some(stall) = report.stalls.first() {
        anyhow::bail!("{} stalled steps, first: {stall}", report.stalls.len());
    }
    if let Some(error) = report.errors.first() {
        anyhow::bail!("{} invalid actions, first: {error}", report.errors.len());
    }
    Ok(())
}

fn simulation_text(scenario: &Scenario, report: &Report) -> String {
    let mut out = String::new();
    for entry in &report.timeline {
        out.push_str(&format!("{}  {}\n", format_utc(entry.at), entry.event));
    }
    out.push_str(&format!(
        "\nsimulated {} to {} ({} steps)\n",
        format_utc(scenario.start),
        format_utc(scenario.end),
        report.steps
    ));
    for (role, count) in &report.generated {
        out.push_str(&format!("keys generated ({role}): {count}\n"));
    }
    out.push_str(&format!(
        "insecure seconds: {}\nstalled steps: {}\nbogus seconds: {}\n",
        report.insecure_seconds,
        report.stalls.len(),
        report.bogus_seconds
    ));
    out
}

/// Parses a duration flag such as `10y` into seconds.
fn parse_duration(flag: &str, text: &str) -> anyhow::Result<u64> {
    let duration: keymaster_policy::Duration = text
        .parse()
        .map_err(|error| anyhow::anyhow!("invalid {flag} {text:?}: {error}"))?;
    Ok(duration.as_secs())
}

/// Maximum span that `plan` and `simulate` look ahead: 100 years.
pub const MAX_SPAN: u64 = 100 * 365 * 86_400;

/// Parses the `--for` span of `plan` or `simulate` and rejects one longer
/// than [`MAX_SPAN`], whose forecast would be cut short.
pub fn parse_span(text: &str) -> anyhow::Result<u64> {
    let span = parse_duration("--for", text)?;
    if span > MAX_SPAN {
        anyhow::bail!("invalid --for {text:?}: the maximum span is 100y");
    }
    Ok(span)
}

/// Rejects a zone whose records outlive the policy's max_zone_ttl: the
/// engine's waits would be too short for them.
fn check_zone_ttls(path: &Path, policy: &keymaster_policy::Policy) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read zone file {}", path.display()))?;
    // The apex: the file's $ORIGIN, else its name without the extension.
    let stem = path
        .file_name()
        .and_then(|name| name.to_str())
        .map(|name| name.trim_end_matches(".zone").trim_end_matches(".db"))
        .unwrap_or(".")
        .to_string();
    let origin = text
        .lines()
        .find_map(|line| line.strip_prefix("$ORIGIN"))
        .map_or(stem, |origin| origin.trim().to_string());
    let origin = keymaster_zone::parse_name(&origin, &keymaster_zone::Name::root())
        .map_err(|error| anyhow::anyhow!("zone file {}: bad $ORIGIN: {error}", path.display()))?;
    let loaded =
        keymaster_zone::load_zone_file(path, &origin, &keymaster_zone::LoadOptions::default())
            .map_err(|error| anyhow::anyhow!("{error}"))?;
    let largest = loaded
        .zone
        .records()
        .map(|record| record.ttl)
        .max()
        .unwrap_or(0);
    let limit = policy.max_zone_ttl.as_secs();
    if u64::from(largest) > limit {
        anyhow::bail!(
            "zone file {}: a record has TTL {largest} s, above the policy's max_zone_ttl of {limit} s; \
             raise max_zone_ttl or lower the TTL",
            path.display()
        );
    }
    Ok(())
}
