//! The `cloudroutes` binary: `cloudroutes` (or `cloudroutes node`) runs a node;
//! `cloudroutes ctl …` is the node-admin console against any node's API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod ctl;
mod node;

/// jemalloc returns freed pages to the system and fragments less than the system allocator
/// under the churn of a million small actors and timers (see `cargo bench --bench scale`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// CloudRoutes: monitors that fix what they find.
#[derive(Debug, Parser)]
#[command(name = "cloudroutes", version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no command, `cloudroutes [OPTIONS]` is `cloudroutes node [OPTIONS]`.
    #[command(flatten)]
    node: NodeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node (the default when no command is given).
    Node(NodeArgs),
    /// The node-admin console: talk to any node's API.
    Ctl(ctl::CtlArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct NodeArgs {
    /// Config file (TOML); see cluster.toml for every key.
    #[arg(long, env = "CLOUDROUTES_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Address the HTTP API listens on (overrides http.addr).
    #[arg(long)]
    pub(crate) http: Option<SocketAddr>,
    /// Directory for the embedded store, admin token and node id (overrides node.data_dir).
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// This node's id (overrides node.id).
    #[arg(long)]
    pub(crate) node_id: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command.unwrap_or(Command::Node(cli.node)) {
        Command::Node(args) => runtime.block_on(node::run(args)),
        Command::Ctl(args) => return runtime.block_on(ctl::run(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
