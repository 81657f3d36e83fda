//! Command-line syntax of `keymaster`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// keymaster: an authoritative primary DNS server that signs its zones
/// online and manages their DNSSEC keys as each zone's Key Master.
#[derive(Debug, Parser)]
#[command(name = "keymaster", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// State directory: database, key-encryption key, control endpoint and token.
    #[arg(long, global = true, env = "KEYMASTER_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Control API URL of a running server, such as http://127.0.0.1:8053
    /// (default: read from the data directory).
    #[arg(long, global = true, env = "KEYMASTER_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// File holding the control API bearer token (default: in the data directory).
    #[arg(long, global = true, env = "KEYMASTER_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Seconds to wait for the response to one request, connecting
    /// included; a full signing of a large zone can take a minute.
    #[arg(
        long,
        global = true,
        env = "KEYMASTER_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = 120,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub timeout: u64,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the DNS server, the Key Master and the control API.
    Serve(ServeArgs),
    /// Sign a master file offline.
    Sign(SignArgs),
    /// Check a signed master file, like dnssec-verify.
    Verify(VerifyArgs),
    /// Zones served by the running server.
    #[command(subcommand)]
    Zone(ZoneCommand),
    /// DNSSEC keys of a zone.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Print the DS (and DNSKEY) records to hand to the parent.
    Ds(DsArgs),
    /// The Key Master role of a zone.
    #[command(subcommand)]
    Role(RoleCommand),
    /// Servers of the cluster.
    #[command(subcommand)]
    Server(ServerCommand),
    /// Cluster administration.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Show the future key events of a zone under its policy.
    Plan(PlanArgs),
    /// Run the lifecycle engine on a virtual clock against a model of
    /// resolver caches and a parent, and count the bogus seconds.
    Simulate(SimulateArgs),
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    pub zone: String,
    /// How far ahead to plan, such as 90d or 2y.
    #[arg(long = "for", value_name = "DURATION", default_value = "2y")]
    pub span: String,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Policy file: a TOML file with the policy keys at top level.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// Master file of the zone; its largest TTL is checked against the
    /// policy's max_zone_ttl.
    #[arg(long, value_name = "FILE")]
    pub zone: Option<PathBuf>,
    /// Length of the simulated run, such as 10y.
    #[arg(long = "for", value_name = "DURATION")]
    pub span: String,
    /// Time the simulated parent takes to publish a requested DS change.
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub parent_delay: String,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (TOML).
    #[arg(long, short = 'c', env = "KEYMASTER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// DNS address to answer on (UDP and TCP); repeat for several.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Vec<String>,
    /// Control API address.
    #[arg(long, value_name = "ADDR:PORT")]
    pub control: Option<String>,
    /// Serve and sign a zone from a master file; repeat for several.
    #[arg(long = "zone", value_name = "NAME=PATH")]
    pub zones: Vec<String>,
    /// Name of this server (default: the host name).
    #[arg(long, env = "KEYMASTER_NAME")]
    pub name: Option<String>,
    /// etcd endpoint of the cluster store; repeat for several.
    #[arg(long, value_name = "URL")]
    pub etcd: Vec<String>,
    /// Cluster key file.
    #[arg(long, value_name = "FILE")]
    pub cluster_key: Option<PathBuf>,
    /// Check the configuration and exit.
    #[arg(long)]
    pub check_config: bool,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// Master file to sign.
    pub zonefile: PathBuf,
    /// Zone apex.
    #[arg(long)]
    pub origin: String,
    /// Output file (default: ZONEFILE.signed).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Policy file: a TOML file with the policy keys at top level.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Folder of BIND key files (K<zone>+<alg>+<tag>); keys are generated
    /// there when it has none for the zone.
    #[arg(long, value_name = "DIR")]
    pub keys: Option<PathBuf>,
    /// Signature inception and expiration base, as UNIX seconds or
    /// YYYYMMDDHHMMSS (default: now).
    #[arg(long, value_name = "TIMESTAMP")]
    pub time: Option<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Signed master file.
    pub zonefile: PathBuf,
    /// Zone apex.
    #[arg(long)]
    pub origin: String,
    /// Check signature windows at this time: UNIX seconds or YYYYMMDDHHMMSS (default: now).
    #[arg(long, value_name = "TIMESTAMP")]
    pub time: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ZoneCommand {
    /// List every zone.
    List,
    /// Show a zone's DNSSEC settings and its Key Master.
    Show { zone: String },
    /// Add a zone.
    Add {
        zone: String,
        /// Master file of a file-backed zone.
        #[arg(long, conflicts_with = "cluster")]
        file: Option<PathBuf>,
        /// Store the zone in the cluster.
        #[arg(long)]
        cluster: bool,
        /// With --cluster: initial records from this master file, read
        /// here (with its $INCLUDEs) and sent to the server as text.
        #[arg(long, requires = "cluster")]
        from_file: Option<PathBuf>,
    },
    /// Re-read a file-backed zone's master file.
    Reload { zone: String },
    /// Replace a cluster zone's records with a master file's; the serial
    /// goes up and every member serves the new version.
    Import {
        zone: String,
        /// Master file, read here (with its $INCLUDEs) and sent to the
        /// server as text.
        path: PathBuf,
    },
    /// Sign a zone, making this server (or SERVER) its Key Master.
    Sign {
        zone: String,
        #[arg(long, value_name = "SERVER")]
        key_master: Option<String>,
        #[arg(long, value_name = "NAME")]
        policy: Option<String>,
    },
    /// Stop signing a zone; the Key Master setting is kept. A zone whose
    /// parent may hold a DS stays signed, publishing the CDS delete form,
    /// until the DS is gone from the parent and from every cache.
    Unsign {
        zone: String,
        /// The parent holds no DS for the zone and never did: go unsigned
        /// at once.
        #[arg(long)]
        no_parent_ds: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List a zone's keys with their states.
    List { zone: String },
    /// Add a key to a zone.
    Add {
        zone: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        #[arg(long)]
        algorithm: Option<String>,
        #[arg(long)]
        bits: Option<u32>,
    },
    /// Import keys from BIND key files (K<zone>+<alg>+<tag>.key and .private).
    Import {
        zone: String,
        /// `.key` or `.private` files, or their common stem.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Start a rollover of KEY (a key tag or id) now; the successor is
    /// generated and rolled in with every wait the policy demands.
    Rollover { zone: String, key: String },
    /// Confirm by hand that the parent now serves the requested DS RRset
    /// (for policies with parent_ds_check = "manual").
    Step { zone: String, key: String },
    /// Take KEY out of the zone without a successor; refused for the only
    /// key of its role and algorithm.
    Retire { zone: String, key: String },
    /// Write a zone's keys as BIND key files, reading the data directory
    /// directly (private keys never travel through the control API). A
    /// cluster zone's keys are read from etcd and opened with the cluster
    /// key, named as for `serve`: `--config`, `--etcd`, `--cluster-key`.
    Export {
        zone: String,
        /// Folder to write the files to.
        #[arg(long, short = 'o', value_name = "DIR")]
        output: PathBuf,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
}

/// Cluster store and cluster key that `key export` reads a cluster zone's keys with.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Configuration file of the server, whose `[cluster]` table is used.
    #[arg(long, short = 'c', env = "KEYMASTER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// etcd endpoint of the cluster store; repeat for several.
    #[arg(long, value_name = "URL")]
    pub etcd: Vec<String>,
    /// Cluster key file.
    #[arg(long, value_name = "FILE")]
    pub cluster_key: Option<PathBuf>,
}

/// Key roles on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RoleArg {
    Ksk,
    Zsk,
    Csk,
}

#[derive(Debug, Args)]
pub struct DsArgs {
    pub zone: String,
    /// Digest algorithm.
    #[arg(long, value_enum, default_value = "sha256")]
    pub digest: DigestArg,
    /// Also print the DNSKEY records of the key-signing keys.
    #[arg(long)]
    pub dnskey: bool,
}

/// DS digests on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DigestArg {
    Sha256,
    Sha384,
}

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Show a zone's Key Master.
    Show { zone: String },
    /// Set the Key Master of a zone that has none yet.
    Assign {
        zone: String,
        #[arg(value_name = "SERVER")]
        target: String,
    },
    /// Move the role to another online server.
    Transfer {
        zone: String,
        #[arg(value_name = "SERVER")]
        target: String,
    },
    /// Take the role from an offline Key Master, for this server or SERVER.
    Seize {
        zone: String,
        #[arg(value_name = "SERVER")]
        target: Option<String>,
        /// Seize even while the current Key Master looks online.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// List the servers with their state and the zones they are Key Master of.
    List,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Write a fresh cluster key with mode 0600.
    NewKey {
        #[arg(short = 'o', long, value_name = "FILE")]
        output: PathBuf,
    },
}
