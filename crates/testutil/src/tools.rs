//! The independent tools the cluster tests check members with.
//!
//! [`Tools::find`] looks up `dig`, `delv`, `named-compilezone` and
//! `dnssec-verify`, and returns `None` after a loud skip notice when one is
//! missing. Its methods query [`Member`]s on loopback: the SOA serial a member
//! serves, whether every member serves one version of a zone with the same
//! records (compared by AXFR in `named-compilezone`'s canonical text, each
//! transfer accepted by `dnssec-verify`), and whether answers validate with
//! `delv` from a trust anchor made of `keymaster ds`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::dns::{delv_validates, dig_answer, serial_newer, static_ds_entries, transfer_canonical};
use crate::member::Member;
use crate::{output_text, run, tool, wait_until};

/// How long [`Tools::wait_one_version`] waits for the members to agree.
const ONE_VERSION_TIMEOUT: Duration = Duration::from_secs(20);

/// Paths of the independent tools.
pub struct Tools {
    pub dig: PathBuf,
    pub delv: PathBuf,
    pub compile: PathBuf,
    pub verify: PathBuf,
}

impl Tools {
    /// Finds every tool, or prints a skip notice for `test` and returns
    /// `None`.
    pub fn find(test: &str) -> Option<Self> {
        Some(Self {
            dig: tool(test, "dig")?,
            delv: tool(test, "delv")?,
            compile: tool(test, "named-compilezone")?,
            verify: tool(test, "dnssec-verify")?,
        })
    }

    /// Returns the SOA serial `member` serves for `zone`.
    pub fn serial(&self, member: &Member, zone: &str) -> Option<u32> {
        let soa = dig_answer(&self.dig, member.dns_port, zone, "SOA")?;
        soa.split_whitespace().nth(2)?.parse().ok()
    }

    /// Transfers `zone` from `member` into `dir` and returns the file, its
    /// serial and its records in named-compilezone's canonical text, sorted.
    pub fn transfer(&self, member: &Member, zone: &str, dir: &Path) -> (PathBuf, u32, Vec<String>) {
        transfer_canonical(
            &self.dig,
            &self.compile,
            (&member.name, member.dns_port),
            zone,
            dir,
        )
    }

    /// Transfers `zone` from every member and, when all serve one serial,
    /// asserts that their records are identical and that dnssec-verify
    /// accepts each. Returns the serial and the records, or `None` while a
    /// member is between versions.
    pub fn identical_records(
        &self,
        members: &[&Member],
        zone: &str,
        dir: &Path,
    ) -> Option<(u32, Vec<String>)> {
        let transfers: Vec<_> = members
            .iter()
            .map(|member| self.transfer(member, zone, dir))
            .collect();
        let serial = transfers[0].1;
        if transfers.iter().any(|(_, other, _)| *other != serial) {
            return None;
        }
        for (member, (file, _, lines)) in members.iter().zip(&transfers) {
            assert_eq!(
                lines, &transfers[0].2,
                "{} and {} serve different records for {zone} serial {serial}",
                member.name, members[0].name
            );
            let verified = run(Command::new(&self.verify).arg("-o").arg(zone).arg(file));
            assert!(
                verified.status.success(),
                "dnssec-verify rejects the AXFR of {zone} serial {serial} from {}: {}",
                member.name,
                output_text(&verified)
            );
        }
        Some((serial, transfers[0].2.clone()))
    }

    /// Checks as [`Tools::identical_records`] does and returns the serial.
    pub fn identical(&self, members: &[&Member], zone: &str, dir: &Path) -> Option<u32> {
        self.identical_records(members, zone, dir)
            .map(|(serial, _)| serial)
    }

    /// Waits up to `timeout` for every member to serve one serial for
    /// which `expected` is true, with identical records, and returns it.
    pub fn wait_identical_where(
        &self,
        members: &[&Member],
        zone: &str,
        dir: &Path,
        timeout: Duration,
        expected: impl Fn(u32, &[String]) -> bool,
    ) -> Option<u32> {
        let mut found = None;
        wait_until(timeout, || {
            found = self
                .identical_records(members, zone, dir)
                .filter(|(serial, lines)| expected(*serial, lines))
                .map(|(serial, _)| serial);
            found.is_some()
        });
        found
    }

    /// Waits up to `seconds` for every member to serve one serial newer
    /// than `above` with identical records, and returns it.
    pub fn wait_identical(
        &self,
        members: &[&Member],
        zone: &str,
        dir: &Path,
        above: u32,
        seconds: u64,
    ) -> Option<u32> {
        let timeout = Duration::from_secs(seconds);
        self.wait_identical_where(members, zone, dir, timeout, |serial, _| {
            serial_newer(serial, above)
        })
    }

    /// Waits up to 20 s for every member to serve one serial, any, with
    /// identical records, and returns it; panics when they do not.
    pub fn wait_one_version(&self, members: &[&Member], zone: &str, dir: &Path) -> u32 {
        self.wait_identical_where(members, zone, dir, ONE_VERSION_TIMEOUT, |_, _| true)
            .unwrap_or_else(|| panic!("the members do not serve one version of {zone}"))
    }

    /// Writes a delv trust anchor for `zone` from the first DS record
    /// `keymaster ds` prints on `member`, and returns the file.
    pub fn anchor(&self, member: &Member, zone: &str, dir: &Path) -> PathBuf {
        let output = member.cli(&["ds", zone]);
        let text = output_text(&output);
        assert!(
            output.status.success(),
            "{}: keymaster ds {zone}: {text}",
            member.name
        );
        let (_, entry) = static_ds_entries(&text)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no DS record for {zone}: {text}"));
        let file = dir.join(format!("{zone}anchor.conf"));
        std::fs::write(&file, format!("trust-anchors {{ {entry} }};\n"))
            .unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
        file
    }

    /// Queries `member` for `name` `rtype` through delv with `anchor`.
    /// Returns an error naming the member unless the response validates.
    pub fn validates(
        &self,
        member: &Member,
        anchor: &Path,
        zone: &str,
        name: &str,
        rtype: &str,
    ) -> Result<(), String> {
        delv_validates(&self.delv, member.dns_port, anchor, zone, name, rtype)
            .map_err(|text| format!("delv {name} {rtype} from {}: {text}", member.name))
    }

    /// Asserts as [`Tools::validates`] checks; the message quotes the
    /// member's log.
    pub fn assert_validates(
        &self,
        member: &Member,
        anchor: &Path,
        zone: &str,
        name: &str,
        rtype: &str,
    ) {
        if let Err(error) = self.validates(member, anchor, zone, name, rtype) {
            panic!("{error}\n{}", member.log());
        }
    }

    /// Queries `member` for `name` A with the DO bit and returns an error
    /// unless the response is NOERROR with the A record and its RRSIG.
    pub fn signed_answer(&self, member: &Member, name: &str) -> Result<(), String> {
        let output = run(Command::new(&self.dig)
            .arg("@127.0.0.1")
            .arg("-p")
            .arg(member.dns_port.to_string())
            .args(["+dnssec", "+norec", "+time=2", "+tries=1"])
            .args(["+noall", "+comments", "+answer", name, "A"]));
        let text = output_text(&output);
        let answer: Vec<&str> = text
            .lines()
            .filter(|line| !line.starts_with(';') && !line.trim().is_empty())
            .collect();
        let has = |rtype: &str| {
            answer
                .iter()
                .any(|line| line.split_whitespace().nth(3) == Some(rtype))
        };
        if text.contains("status: NOERROR") && has("A") && has("RRSIG") {
            Ok(())
        } else {
            Err(format!("{}: {name} A: {text}", member.name))
        }
    }
}
