//! `cloudroutes ctl`: the node-admin console. It talks to any node's HTTP API with a token
//! (`--url`/`--token` or `CLOUDROUTES_URL`/`CLOUDROUTES_TOKEN`), prints tables for people and
//! JSON for scripts (`--output json`), and exits non-zero with a message that says what to do.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::Value;

mod apply;
mod client;
mod cluster;
mod manifest;
mod monitors;
mod reactions;
mod table;
mod tokens;

use client::Client;

/// Options shared by every console command.
#[derive(Debug, clap::Args)]
pub(crate) struct CtlArgs {
    /// Base URL of any node's API.
    #[arg(long, env = "CLOUDROUTES_URL", default_value = "http://127.0.0.1:8080", global = true)]
    url: String,
    /// API token (the admin token printed at first start, or one from the tokens API).
    #[arg(long, env = "CLOUDROUTES_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// `table` for people, `json` for scripts.
    #[arg(long, value_enum, default_value = "table", global = true)]
    output: Output,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Debug, clap::Subcommand)]
enum CtlCommand {
    /// The cluster: nodes, liveness, partitions and monitors.
    Cluster,
    /// A summary: the cluster, its nodes and how many monitors are in each status.
    Status,
    /// The nodes: liveness, zone, partitions, monitors, last heartbeat.
    Nodes,
    /// How many partitions (and monitors) each node owns.
    Partitions,
    /// Move a node's partitions to the other nodes (until it restarts).
    Drain {
        /// The node id.
        node: String,
    },
    /// Monitors: list, get, create, edit, delete, run, fail, heal.
    #[command(subcommand)]
    Monitors(monitors::MonitorsCommand),
    /// Reactions: list, get, create, edit, delete.
    #[command(subcommand)]
    Reactions(reactions::ReactionsCommand),
    /// A monitor's history, newest first.
    Events {
        /// The monitor id.
        monitor: String,
        /// At most this many events.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Make the node hold the monitors and reactions a file declares, matched by name.
    Apply {
        /// The manifest: TOML, YAML or JSON (by its extension), or `-` for standard input.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// The file's format, when its extension does not say (standard input).
        #[arg(long, value_enum)]
        format: Option<manifest::Format>,
        /// Print what would be created, changed or deleted, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Delete the monitors and reactions the file does not name.
        #[arg(long)]
        prune: bool,
        /// Send secret fields again even where nothing else changed (secrets read back as
        /// `***`, so they cannot be compared).
        #[arg(long)]
        update_secrets: bool,
    },
    /// Every monitor and reaction as a manifest `apply` takes (secret fields as `***`).
    Export {
        /// `toml` (the default), `yaml` or `json` (the default with `--output json`).
        #[arg(long, value_enum)]
        format: Option<manifest::Format>,
    },
    /// API tokens (admin only): create, list, revoke.
    #[command(subcommand)]
    Tokens(tokens::TokensCommand),
    /// Who changed what and when, newest first (admin only).
    Audit {
        /// At most this many entries.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

/// Runs one console command; the exit code is 0 on success, 1 when the node refused or
/// failed, 2 when it could not be reached.
pub(crate) async fn run(args: CtlArgs) -> ExitCode {
    match execute(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            let unreachable = error.chain().any(|e| e.downcast_ref::<reqwest::Error>().is_some());
            ExitCode::from(if unreachable { 2 } else { 1 })
        }
    }
}

async fn execute(args: &CtlArgs) -> anyhow::Result<()> {
    let Some(token) = &args.token else {
        bail!(
            "no API token: pass --token or set CLOUDROUTES_TOKEN (the admin token is printed at a node's first start and kept in DATA_DIR/admin.token)"
        );
    };
    let client = Client {
        http: reqwest::Client::new(),
        base: args.url.trim_end_matches('/').to_owned(),
        token: token.clone(),
    };
    let output = args.output;
    match &args.command {
        CtlCommand::Cluster => cluster::cluster(&client, output).await,
        CtlCommand::Status => cluster::status(&client, output).await,
        CtlCommand::Nodes => cluster::nodes(&client, output).await,
        CtlCommand::Partitions => cluster::partitions(&client, output).await,
        CtlCommand::Drain { node } => cluster::drain(&client, output, node).await,
        CtlCommand::Monitors(command) => monitors::run(&client, output, command).await,
        CtlCommand::Reactions(command) => reactions::run(&client, output, command).await,
        CtlCommand::Events { monitor, limit } => {
            monitors::events(&client, output, monitor, *limit).await
        }
        CtlCommand::Apply { file, format, dry_run, prune, update_secrets } => {
            let format = format.or_else(|| manifest::Format::of_path(file)).with_context(|| {
                format!(
                    "cannot tell the format of {}: name it .toml, .yaml or .json, or pass --format",
                    file.display()
                )
            })?;
            let (text, source) = read_text(file)?;
            let wanted = manifest::Manifest::parse(&text, format, &source)?;
            let reactions = client.get_all("/api/v1/reactions", &[], None).await?;
            let mut monitors = client.get_all("/api/v1/monitors", &[], None).await?;
            apply::with_reaction_names(&mut monitors, &reactions);
            let plan = apply::plan(&wanted, &reactions, &monitors, *prune, *update_secrets)?;
            if !dry_run {
                apply::execute(&client, &plan, &reactions).await?;
            }
            match output {
                Output::Json => table::print_json(&apply::to_json(&plan, *dry_run)),
                Output::Table => {
                    print!("{}", apply::render(&plan, *dry_run));
                    Ok(())
                }
            }
        }
        CtlCommand::Tokens(command) => tokens::run(&client, output, command).await,
        CtlCommand::Audit { limit } => tokens::audit(&client, output, *limit).await,
        CtlCommand::Export { format } => {
            let monitors = client.get_all("/api/v1/monitors", &[], None).await?;
            let reactions = client.get_all("/api/v1/reactions", &[], None).await?;
            let format = format.unwrap_or(match output {
                Output::Json => manifest::Format::Json,
                Output::Table => manifest::Format::Toml,
            });
            print!("{}", manifest::Manifest::from_api(&reactions, &monitors).render(format)?);
            Ok(())
        }
    }
}

/// Reads `file`, or standard input when it is `-`; returns the text and a name for errors.
fn read_text(file: &Path) -> anyhow::Result<(String, String)> {
    if file == Path::new("-") {
        let mut raw = String::new();
        std::io::stdin().read_to_string(&mut raw).context("cannot read standard input")?;
        return Ok((raw, "standard input".to_owned()));
    }
    let raw =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    Ok((raw, file.display().to_string()))
}

/// Reads a JSON document from `file`, or from standard input when it is `-`.
fn read_json(file: &Path) -> anyhow::Result<Value> {
    let (raw, name) = read_text(file)?;
    serde_json::from_str(&raw).with_context(|| format!("{name} is not valid JSON"))
}
