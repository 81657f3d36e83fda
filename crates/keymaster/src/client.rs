//! The CLI side of the control API: finds the running server through the
//! data directory, sends one request and prints the response.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use keymaster_api::{
    AddKeyRequest, AddZoneRequest, DsInfo, ErrorBody, ImportKeyRequest, KeyInfo, KeyRole, RoleInfo,
    RoleRequest, ServerInfo, SignRequest, ZoneInfo, API_PREFIX,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::cli::{
    DigestArg, DsArgs, GlobalArgs, KeyCommand, PlanArgs, RoleArg, RoleCommand, ServerCommand,
    ZoneCommand,
};
use crate::daemon::{unix_now, CONTROL_FILE, TOKEN_FILE};

/// Longest wait for a connection to the control API. The server listens
/// on loopback or a nearby host, so a connection that takes longer means a
/// server that is stopped or a wrong address.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to a running server's control API.
pub struct Client {
    base: String,
    token: String,
    json: bool,
    agent: ureq::Agent,
    timeout: Duration,
}

/// Returns the data directory from the flag, the environment or the default.
pub fn data_dir(global: &GlobalArgs) -> PathBuf {
    global
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("keymaster-data"))
}

impl Client {
    /// Finds the server URL and token from flags or the data directory.
    pub fn connect(global: &GlobalArgs) -> anyhow::Result<Self> {
        let dir = data_dir(global);
        let base = match &global.server {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => {
                let path = dir.join(CONTROL_FILE);
                let text = std::fs::read_to_string(&path).with_context(|| {
                    format!("cannot read {}: is `keymaster serve` running with --data-dir {}? Or pass --server URL", path.display(), dir.display())
                })?;
                text.trim().trim_end_matches('/').to_string()
            }
        };
        let token_path = global
            .token_file
            .clone()
            .unwrap_or_else(|| dir.join(TOKEN_FILE));
        let token = std::fs::read_to_string(&token_path)
            .with_context(|| {
                format!(
                    "cannot read the control API token {}; pass --token-file FILE",
                    token_path.display()
                )
            })?
            .trim()
            .to_string();
        // The whole request, response included, is bounded because a stopped
        // server still accepts connections on its socket but never responds.
        let timeout = Duration::from_secs(global.timeout);
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .build();
        Ok(Self {
            base,
            token,
            json: global.json,
            agent,
            timeout,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{API_PREFIX}{path}", self.base)
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let request = self
            .agent
            .get(&self.url(path))
            .set("Authorization", &format!("Bearer {}", self.token));
        self.finish(request.call())
    }

    fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> anyhow::Result<T> {
        let request = self
            .agent
            .post(&self.url(path))
            .set("Authorization", &format!("Bearer {}", self.token));
        self.finish(request.send_json(body))
    }

    fn finish<T: DeserializeOwned>(
        &self,
        result: Result<ureq::Response, ureq::Error>,
    ) -> anyhow::Result<T> {
        match result {
            Ok(response) => response
                .into_json()
                .context("the server sent an unreadable response"),
            Err(ureq::Error::Status(code, response)) => {
                let message = response
                    .into_json::<ErrorBody>()
                    .map(|body| body.error)
                    .unwrap_or_else(|_| format!("HTTP status {code}"));
                bail!("{message}")
            }
            Err(ureq::Error::Transport(error)) if is_timeout(&error) => bail!(
                "request to the keymaster control API at {} timed out after {} s: check that \
                 `keymaster serve` is running and not stopped, or wait longer with --timeout \
                 SECONDS (or KEYMASTER_TIMEOUT)",
                self.base,
                self.timeout.as_secs()
            ),
            Err(error) => Err(anyhow::Error::new(error).context(format!(
                "cannot reach the keymaster control API at {}",
                self.base
            ))),
        }
    }

    fn print<T: Serialize>(
        &self,
        value: &T,
        text: impl FnOnce(&T) -> String,
    ) -> anyhow::Result<()> {
        let output = if self.json {
            serde_json::to_string_pretty(value)?
        } else {
            text(value)
        };
        write_stdout(&output)
    }
}

/// Returns true if a transport error is a timeout.
fn is_timeout(error: &ureq::Transport) -> bool {
    use std::error::Error;
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) {
                return true;
            }
        }
        source = cause.source();
    }
    false
}

/// Reads the records of a cluster zone from the operator's master file,
/// following its `$INCLUDE`s here, and returns them as master-file text
/// with absolute names for the server, which reads no file itself.
fn read_cluster_content(zone: &str, path: &Path) -> anyhow::Result<String> {
    use keymaster_store::MAX_ZONE_CONTENT;
    let origin = keymaster_zone::parse_name(
        &crate::config::normalize_zone(zone),
        &keymaster_zone::Name::root(),
    )
    .map_err(|error| anyhow::anyhow!("invalid zone name {zone:?}: {error}"))?;
    let options = keymaster_zone::LoadOptions {
        max_file_size: MAX_ZONE_CONTENT as u64,
        ..keymaster_zone::LoadOptions::default()
    };
    let loaded = keymaster_zone::load_zone_file(path, &origin, &options)
        .with_context(|| format!("zone {zone}: cannot load {}", path.display()))?;
    for warning in &loaded.warnings {
        eprintln!("keymaster: warning: {warning}");
    }
    let mut text = Vec::new();
    keymaster_zone::write_zone(&loaded.zone, &mut text)?;
    if text.len() > MAX_ZONE_CONTENT {
        bail!(
            "zone {zone}: the records of {} take {} octets as text, more than the cluster limit of {MAX_ZONE_CONTENT} octets",
            path.display(),
            text.len()
        );
    }
    Ok(String::from_utf8(text)?)
}

/// Writes one block of output to standard output.
pub fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_all(text.as_bytes()).and_then(|()| {
        if text.ends_with('\n') {
            Ok(())
        } else {
            stdout.write_all(b"\n")
        }
    });
    match written {
        // A reader such as `head` that stops early is not an error.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Encodes a zone name for a URL path segment; the root becomes `@`
/// because URL parsers remove a segment of `.`.
pub(crate) fn segment(zone: &str) -> String {
    if zone.trim_end_matches('.').is_empty() {
        return "@".to_string();
    }
    let mut out = String::with_capacity(zone.len());
    for byte in zone.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn zone_table(zones: &[ZoneInfo]) -> String {
    let mut out = format!(
        "{:<32} {:<8} {:<9} {:<20} {:<8} {:>10}\n",
        "ZONE", "STORAGE", "DNSSEC", "KEY MASTER", "STATUS", "SERIAL"
    );
    for zone in zones {
        out.push_str(&format!(
            "{:<32} {:<8} {:<9} {:<20} {:<8} {:>10}\n",
            zone.zone,
            format!("{:?}", zone.storage).to_lowercase(),
            if zone.is_signed { "signed" } else { "unsigned" },
            zone.key_master_server.as_deref().unwrap_or("-"),
            format!("{:?}", zone.key_master_status).to_lowercase(),
            zone.serial.map_or("-".to_string(), |s| s.to_string()),
        ));
    }
    out
}

fn zone_details(zone: &ZoneInfo) -> String {
    let value = serde_json::to_value(zone).unwrap_or_default();
    let mut out = String::new();
    if let serde_json::Value::Object(map) = value {
        for (key, value) in map {
            let text = match value {
                serde_json::Value::Null => "-".to_string(),
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            out.push_str(&format!("{key:<34} {text}\n"));
        }
    }
    out
}

fn key_table(keys: &[KeyInfo]) -> String {
    let mut out = format!(
        "{:<17} {:>5} {:<4} {:<16} {:>5} {:<12} {:<12} {:<12} {:<12}\n",
        "ID", "TAG", "ROLE", "ALGORITHM", "BITS", "DNSKEY", "KRRSIG", "ZRRSIG", "DS"
    );
    for key in keys {
        let state = |s: keymaster_api::RecordState| format!("{s:?}").to_lowercase();
        out.push_str(&format!(
            "{:<17} {:>5} {:<4} {:<16} {:>5} {:<12} {:<12} {:<12} {:<12}\n",
            key.id,
            key.key_tag,
            format!("{:?}", key.role).to_lowercase(),
            key.algorithm_name,
            key.bits,
            state(key.dnskey_state),
            state(key.krrsig_state),
            state(key.zrrsig_state),
            state(key.ds_state),
        ));
    }
    out
}

fn role_text(role: &RoleInfo) -> String {
    let changed = role.changed.map_or(String::new(), |at| {
        format!(", changed {} UTC", keymaster_zone::format_utc(at))
    });
    format!(
        "zone {}: Key Master {} (epoch {}, {}{changed}), storage {}\n",
        role.zone,
        role.key_master.as_deref().unwrap_or("none"),
        role.epoch,
        format!("{:?}", role.key_master_status).to_lowercase(),
        format!("{:?}", role.storage).to_lowercase()
    )
}

/// Runs a `zone` subcommand.
pub fn zone(global: &GlobalArgs, command: ZoneCommand) -> anyhow::Result<()> {
    let client = Client::connect(global)?;
    match command {
        ZoneCommand::List => {
            client.print(&client.get::<Vec<ZoneInfo>>("/zones")?, |z| zone_table(z))
        }
        ZoneCommand::Show { zone } => client.print(
            &client.get::<ZoneInfo>(&format!("/zones/{}", segment(&zone)))?,
            zone_details,
        ),
        ZoneCommand::Add {
            zone,
            file,
            cluster,
            from_file,
        } => {
            let content = match &from_file {
                Some(path) => Some(read_cluster_content(&zone, path)?),
                None => None,
            };
            let file = file.map(|path| std::fs::canonicalize(&path).unwrap_or(path));
            let request = AddZoneRequest {
                zone,
                file: file.map(|p| p.display().to_string()),
                cluster,
                content,
            };
            client.print(
                &client.post::<_, ZoneInfo>("/zones", &request)?,
                zone_details,
            )
        }
        ZoneCommand::Import { zone, path } => {
            let request = keymaster_api::ImportZoneRequest {
                content: read_cluster_content(&zone, &path)?,
            };
            client.print(
                &client
                    .post::<_, ZoneInfo>(&format!("/zones/{}/import", segment(&zone)), &request)?,
                zone_details,
            )
        }
        ZoneCommand::Reload { zone } => client.print(
            &client.post::<_, ZoneInfo>(&format!("/zones/{}/reload", segment(&zone)), &())?,
            zone_details,
        ),
        ZoneCommand::Sign {
            zone,
            key_master,
            policy,
        } => {
            let request = SignRequest { key_master, policy };
            client.print(
                &client
                    .post::<_, ZoneInfo>(&format!("/zones/{}/sign", segment(&zone)), &request)?,
                zone_details,
            )
        }
        ZoneCommand::Unsign { zone, no_parent_ds } => client.print(
            &client.post::<_, ZoneInfo>(
                &format!("/zones/{}/unsign", segment(&zone)),
                &keymaster_api::UnsignRequest { no_parent_ds },
            )?,
            zone_details,
        ),
    }
}

/// Runs a `key` subcommand.
pub fn key(global: &GlobalArgs, command: KeyCommand) -> anyhow::Result<()> {
    if let KeyCommand::Export {
        zone,
        output,
        cluster,
    } = &command
    {
        return crate::keyfiles::export(&data_dir(global), zone, output, cluster);
    }
    let client = Client::connect(global)?;
    match command {
        KeyCommand::List { zone } => client.print(
            &client.get::<Vec<KeyInfo>>(&format!("/zones/{}/keys", segment(&zone)))?,
            |k| key_table(k),
        ),
        KeyCommand::Add {
            zone,
            role,
            algorithm,
            bits,
        } => {
            let role = match role {
                RoleArg::Ksk => KeyRole::Ksk,
                RoleArg::Zsk => KeyRole::Zsk,
                RoleArg::Csk => KeyRole::Csk,
            };
            let request = AddKeyRequest {
                role,
                algorithm,
                bits,
            };
            let key: KeyInfo = client.post(&format!("/zones/{}/keys", segment(&zone)), &request)?;
            client.print(&key, |k| key_table(std::slice::from_ref(k)))
        }
        KeyCommand::Import { zone, files } => {
            let mut imported = Vec::new();
            for file in files {
                let key = keymaster_keys::bind::read(&file)
                    .with_context(|| format!("cannot import {}", file.display()))?;
                let request = ImportKeyRequest {
                    owner: Some(key.owner.to_string()),
                    flags: key.flags,
                    algorithm: key.key.algorithm().to_u8(),
                    pkcs8: data_encoding::BASE64.encode(&key.key.to_pkcs8()),
                };
                let path = format!("/zones/{}/keys/import", segment(&zone));
                imported.push(client.post::<_, KeyInfo>(&path, &request)?);
            }
            client.print(&imported, |keys| key_table(keys))
        }
        KeyCommand::Rollover { zone, key } => key_action(&client, &zone, &key, "rollover"),
        KeyCommand::Step { zone, key } => key_action(&client, &zone, &key, "step"),
        KeyCommand::Retire { zone, key } => key_action(&client, &zone, &key, "retire"),
        KeyCommand::Export { .. } => Ok(()),
    }
}

/// Sends a request about one key and prints the key.
fn key_action(client: &Client, zone: &str, key: &str, action: &str) -> anyhow::Result<()> {
    let path = format!("/zones/{}/keys/{}/{action}", segment(zone), segment(key));
    let info: KeyInfo = client.post(&path, &())?;
    client.print(&info, |k| {
        format!(
            "key {} (tag {}): {action} requested; `keymaster key list {zone}` shows the progress",
            k.id, k.key_tag
        )
    })
}

/// Runs `plan`: the zone's future key events as a table or JSON.
pub fn plan(global: &GlobalArgs, args: PlanArgs) -> anyhow::Result<()> {
    crate::schedule::parse_span(&args.span)?;
    let client = Client::connect(global)?;
    let path = format!(
        "/zones/{}/plan?for={}",
        segment(&args.zone),
        segment(&args.span)
    );
    let events: Vec<keymaster_lifecycle::plan::PlannedEvent> = client.get(&path)?;
    client.print(&events, |events| crate::schedule::plan_table(events))
}

/// Runs `ds`.
pub fn ds(global: &GlobalArgs, args: DsArgs) -> anyhow::Result<()> {
    let client = Client::connect(global)?;
    let digest = match args.digest {
        DigestArg::Sha256 => "sha256",
        DigestArg::Sha384 => "sha384",
    };
    let info: DsInfo = client.get(&format!(
        "/zones/{}/ds?digest={digest}",
        segment(&args.zone)
    ))?;
    let with_dnskey = args.dnskey;
    if let Some(note) = &info.note {
        eprintln!("keymaster: zone {}: {note}", info.zone);
    }
    client.print(&info, |info| {
        let mut lines = info.ds.clone();
        if with_dnskey {
            lines.extend(info.dnskey.iter().cloned());
        }
        lines.join("\n")
    })
}

/// Runs a `role` subcommand.
pub fn role(global: &GlobalArgs, command: RoleCommand) -> anyhow::Result<()> {
    let client = Client::connect(global)?;
    let (zone, action, request) = match command {
        RoleCommand::Show { zone } => {
            return client.print(
                &client.get::<RoleInfo>(&format!("/zones/{}/role", segment(&zone)))?,
                role_text,
            );
        }
        RoleCommand::Assign { zone, target } => (
            zone,
            "assign",
            RoleRequest {
                server: Some(target),
                ..RoleRequest::default()
            },
        ),
        RoleCommand::Transfer { zone, target } => (
            zone,
            "transfer",
            RoleRequest {
                server: Some(target),
                ..RoleRequest::default()
            },
        ),
        RoleCommand::Seize {
            zone,
            target,
            force,
        } => (
            zone,
            "seize",
            RoleRequest {
                server: target,
                force,
                ..RoleRequest::default()
            },
        ),
    };
    // An empty name would reach the server as the root zone.
    if zone.trim().is_empty() {
        bail!("the zone name is empty; write the root zone as `.`");
    }
    // The server changes nothing once this command has stopped waiting.
    let request = RoleRequest {
        deadline: Some(unix_now() + client.timeout.as_secs()),
        ..request
    };
    let role: RoleInfo = client.post(
        &format!("/zones/{}/role/{action}", segment(&zone)),
        &request,
    )?;
    client.print(&role, role_text)
}

/// Runs a `server` subcommand.
pub fn server(global: &GlobalArgs, command: ServerCommand) -> anyhow::Result<()> {
    let client = Client::connect(global)?;
    match command {
        ServerCommand::List => {
            client.print(&client.get::<Vec<ServerInfo>>("/servers")?, |servers| {
                let mut out = format!(
                    "{:<20} {:<8} {:<8} {}\n",
                    "SERVER", "STATE", "CAN SIGN", "KEY MASTER OF"
                );
                for server in servers {
                    out.push_str(&format!(
                        "{:<20} {:<8} {:<8} {}\n",
                        server.name,
                        if server.online { "online" } else { "offline" },
                        if server.can_sign { "yes" } else { "no" },
                        server.key_master_of.join(", ")
                    ));
                }
                out
            })
        }
    }
}
