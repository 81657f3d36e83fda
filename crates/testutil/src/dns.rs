//! DNS checks with independent tools: `dig`, `delv` and `named-compilezone`
//! from BIND, asked on 127.0.0.1 only.
//!
//! A zone's records are compared in the canonical text `named-compilezone`
//! writes (`-s full`), one record a line with its fields separated by one
//! space, sorted, so that two servers' transfers compare line by line.
//! Serials are compared in serial number arithmetic (RFC 1982).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{output_text, run};

/// RFC 1982: whether serial `a` is newer than serial `b`.
pub fn serial_newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

/// Runs `dig +short` for `name` `rtype` at 127.0.0.1:`port` and returns
/// the answer section's data, or `None` without an answer.
pub fn dig_answer(dig: &Path, port: u16, name: &str, rtype: &str) -> Option<String> {
    let output = run(Command::new(dig)
        .arg("@127.0.0.1")
        .arg("-p")
        .arg(port.to_string())
        .args(["+time=1", "+tries=1", "+short", name, rtype]));
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (output.status.success() && !text.is_empty() && !text.starts_with(';')).then_some(text)
}

/// Loads the master file `file` of `zone` with `named-compilezone`
/// (`compile`) and returns its records in canonical text, sorted. Panics
/// when the file does not load.
pub fn canonical_records(compile: &Path, zone: &str, file: &Path) -> Vec<String> {
    let canonical = file.with_extension("canonical");
    let compiled = run(Command::new(compile)
        .args(["-i", "local", "-k", "ignore", "-s", "full", "-o"])
        .arg(&canonical)
        .arg(zone)
        .arg(file));
    assert!(
        compiled.status.success(),
        "named-compilezone rejected {}: {}",
        file.display(),
        output_text(&compiled)
    );
    let mut lines: Vec<String> = std::fs::read_to_string(&canonical)
        .unwrap_or_else(|e| panic!("read {}: {e}", canonical.display()))
        .lines()
        .filter(|line| !line.starts_with(';') && !line.trim().is_empty())
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    lines.sort();
    lines
}

/// Transfers `zone` from the server `name` at 127.0.0.1:`port` with `dig`
/// into `dir`. Returns the file, its serial and its records in the
/// canonical text of `named-compilezone` (`compile`), sorted. Panics when
/// the transfer fails or the text does not load.
pub fn transfer_canonical(
    dig: &Path,
    compile: &Path,
    (name, port): (&str, u16),
    zone: &str,
    dir: &Path,
) -> (PathBuf, u32, Vec<String>) {
    let output = run(Command::new(dig)
        .arg("@127.0.0.1")
        .arg("-p")
        .arg(port.to_string())
        .args(["+time=5", "+tries=1", "+onesoa", "+nocmd", zone, "AXFR"]));
    let text = output_text(&output);
    assert!(
        output.status.success() && !text.contains("Transfer failed"),
        "{name} on port {port}: AXFR of {zone} failed: {text}"
    );
    let file = dir.join(format!("{name}.{zone}axfr"));
    std::fs::write(&file, &text).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
    let lines = canonical_records(compile, zone, &file);
    let serial = lines
        .iter()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            (fields.get(3) == Some(&"SOA"))
                .then(|| fields.get(6)?.parse().ok())
                .flatten()
        })
        .unwrap_or_else(|| panic!("no SOA in the AXFR from {name}: {text}"));
    (file, serial, lines)
}

/// Returns, for each DS record in `text` (as `keymaster ds` prints them),
/// its key tag and the `static-ds` entry of a delv `trust-anchors`
/// statement, such as `"example." static-ds 12345 13 2 "AB12...";`.
pub fn static_ds_entries(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|line| line.contains(" DS "))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let at = fields.iter().position(|field| *field == "DS")?;
            let tag = fields.get(at + 1)?.to_string();
            let entry = format!(
                "\"{}\" static-ds {} {} {} \"{}\";",
                fields[0],
                tag,
                fields.get(at + 2)?,
                fields.get(at + 3)?,
                fields.get(at + 4..)?.join("")
            );
            Some((tag, entry))
        })
        .collect()
}

/// Asks 127.0.0.1:`port` for `name` `rtype` through `delv` with the trust
/// anchors in `anchor` and `zone` as its root, stopping delv after 10 s.
/// Returns delv's output as the error unless delv fully validates the
/// response.
pub fn delv_validates(
    delv: &Path,
    port: u16,
    anchor: &Path,
    zone: &str,
    name: &str,
    rtype: &str,
) -> Result<(), String> {
    let output = run(Command::new("timeout")
        .arg("10")
        .arg(delv)
        .arg("@127.0.0.1")
        .arg("-p")
        .arg(port.to_string())
        .arg("-a")
        .arg(anchor)
        .arg(format!("+root={zone}"))
        .args([name, rtype]));
    let text = output_text(&output);
    if text.contains("fully validated") && !text.contains("bogus") {
        Ok(())
    } else {
        Err(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_newer_wraps_around() {
        assert!(serial_newer(2, 1));
        assert!(!serial_newer(1, 1));
        assert!(!serial_newer(1, 2));
        assert!(serial_newer(1, u32::MAX));
        assert!(!serial_newer(0x8000_0000, 0));
    }

    #[test]
    fn static_ds_entries_quote_owner_and_digest() {
        let text = "example. 3600 IN DS 4711 13 2 AB12 CD34\n\
                    ; a comment\n\
                    example. 3600 IN DS 815 8 2 EF56\n";
        assert_eq!(
            static_ds_entries(text),
            [
                (
                    "4711".to_string(),
                    "\"example.\" static-ds 4711 13 2 \"AB12CD34\";".to_string()
                ),
                (
                    "815".to_string(),
                    "\"example.\" static-ds 815 8 2 \"EF56\";".to_string()
                ),
            ]
        );
    }
}
