//! The `keymaster` command: the daemon and the operator's tools.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use keymaster::cli::{Cli, ClusterCommand, Command, ServeArgs};
use keymaster::config::{Config, ConfigFile, Overrides};
use keymaster::{client, cluster, daemon, offline, schedule};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(matches!(cli.command, Command::Serve(_)));
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("keymaster: {}", error_chain(&error));
            ExitCode::FAILURE
        }
    }
}

/// Joins an error and its causes, skipping a cause whose text the message
/// already contains.
fn error_chain(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

/// Logs to standard error; `RUST_LOG` overrides the level (info by default).
fn init_logging(daemon: bool) {
    let default = if daemon {
        "info"
    } else {
        "warn,keymaster=info"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let global = cli.global;
    match cli.command {
        Command::Serve(args) => serve(args, global.data_dir),
        Command::Sign(args) => offline::sign(args),
        Command::Verify(args) => offline::verify(args),
        Command::Zone(command) => client::zone(&global, command),
        Command::Key(command) => client::key(&global, command),
        Command::Ds(args) => client::ds(&global, args),
        Command::Role(command) => client::role(&global, command),
        Command::Server(command) => client::server(&global, command),
        Command::Plan(args) => client::plan(&global, args),
        Command::Simulate(args) => schedule::simulate(&args, global.json),
        Command::Cluster(ClusterCommand::NewKey { output }) => cluster::new_key(&output),
    }
}

fn serve(args: ServeArgs, data_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let file = match &args.config {
        Some(path) => Some((path.as_path(), ConfigFile::read(path)?)),
        None => None,
    };
    let mut zones = Vec::new();
    for pair in &args.zones {
        let Some((name, path)) = pair.split_once('=') else {
            anyhow::bail!("invalid --zone {pair:?}: expected NAME=PATH");
        };
        zones.push((name.to_string(), PathBuf::from(path)));
    }
    let overrides = Overrides {
        name: args.name,
        listen: args.listen,
        control: args.control,
        data_dir,
        zones,
        etcd: args.etcd,
        cluster_key: args.cluster_key,
    };
    let config = Config::build(file, &overrides)?;
    if let Some(settings) = &config.cluster {
        cluster::check_files(settings)?;
    }
    if args.check_config {
        let cluster = match &config.cluster {
            Some(settings) => format!(
                ", cluster store {} ({})",
                settings.endpoints.join(","),
                if settings.cluster_key.is_some() {
                    "can sign"
                } else {
                    "no cluster key: cannot sign"
                }
            ),
            None => String::new(),
        };
        client::write_stdout(&format!(
            "configuration is valid: server {}, {} zones, {} policies{cluster}",
            config.name,
            config.zones.len(),
            config.policies.len()
        ))?;
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(daemon::serve(config));
    // A signing still running in a blocking thread must not hold up exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    result
}
