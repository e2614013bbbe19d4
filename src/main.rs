//! The `cloudroutes` binary: `cloudroutes` (or `cloudroutes node`) runs a node.
//!
//! Startup order: config (file < environment < flags), logging, the store, the node's actors
//! (which load every monitor), then the HTTP API. Shutdown on SIGTERM/SIGINT runs the other
//! way: stop taking requests, stop monitors, flush state, wait for running reactions, exit 0.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use cloudroutes_actors::Node;
use cloudroutes_engine::config::{FlagOverrides, NodeConfig};
use cloudroutes_engine::store::embedded::EmbeddedStore;
use cloudroutes_http::{ApiState, Auth};

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
}

#[derive(Debug, clap::Args)]
struct NodeArgs {
    /// Config file (TOML); see cluster.toml for every key.
    #[arg(long, env = "CLOUDROUTES_CONFIG")]
    config: Option<PathBuf>,
    /// Address the HTTP API listens on (overrides http.addr).
    #[arg(long)]
    http: Option<SocketAddr>,
    /// Directory for the embedded store, admin token and node id (overrides node.data_dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// This node's id (overrides node.id).
    #[arg(long)]
    node_id: Option<String>,
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
        Command::Node(args) => runtime.block_on(run_node(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run_node(args: NodeArgs) -> anyhow::Result<()> {
    // Before anything can report ready: a SIGTERM from then on always means a clean shutdown.
    let signals = Signals::install()?;
    let env: Vec<(String, String)> = std::env::vars().collect();
    let flags =
        FlagOverrides { http_addr: args.http, data_dir: args.data_dir, node_id: args.node_id };
    let config =
        NodeConfig::load(args.config.as_deref(), &env, &flags).context("loading config")?;
    init_logging();
    if !config.is_embedded() {
        bail!(
            "store.url `{}`: the Redis store comes with cluster mode; this build runs the embedded store only (store.url = \"embedded\")",
            config.store.url
        );
    }
    let data_dir = config.node.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let node_id = node_id(&config, &data_dir)?;
    let (token, token_is_new) = admin_token(&data_dir)?;
    let store = EmbeddedStore::open_with_cache(
        &config.embedded_store_path(),
        config.engine.history_max_events,
        config.store.cache_mb.saturating_mul(1024 * 1024),
    )
    .context("opening the embedded store")?;
    let listener = tokio::net::TcpListener::bind(config.http.addr)
        .await
        .with_context(|| format!("binding the HTTP API to {}", config.http.addr))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let node = Node::start(config.clone(), node_id.clone(), Arc::new(store))
        .await
        .context("starting the node")?;
    let public_url = config
        .http
        .public_url
        .clone()
        .unwrap_or_else(|| cloudroutes_http::default_public_url(addr));
    let api = ApiState {
        node: node.clone(),
        auth: Auth::new(token.clone()),
        body_limit: config.http.body_limit_bytes,
        public_url: public_url.clone(),
    };

    let mut out = std::io::stdout().lock();
    writeln!(out, "CloudRoutes node {node_id} is up (data in {})", data_dir.display())?;
    writeln!(out, "  dashboard: {public_url}/")?;
    writeln!(out, "  API:       {public_url}/api/v1  (send `Authorization: Bearer TOKEN`)")?;
    if token_is_new {
        writeln!(
            out,
            "  admin token (shown once, kept in {}): {token}",
            data_dir.join("admin.token").display()
        )?;
    } else if std::env::var_os("CLOUDROUTES_ADMIN_TOKEN").is_some() {
        writeln!(out, "  admin token: from CLOUDROUTES_ADMIN_TOKEN")?;
    } else {
        writeln!(out, "  admin token: in {}", data_dir.join("admin.token").display())?;
    }
    drop(out);

    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(cloudroutes_http::serve(api, listener, async {
        let _ = http_stopped.await;
    }));
    signals.wait().await;
    tracing::info!("shutting down: no new requests, stopping monitors, flushing state");
    let _ = stop_http.send(());
    let _ = server.await;
    node.shutdown().await;
    Ok(())
}

fn init_logging() {
    let filter = std::env::var("CLOUDROUTES_LOG").unwrap_or_else(|_| "info,warp=warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
}

/// SIGTERM and SIGINT, caught from the start so neither ever kills the node uncleanly.
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            interrupt: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}

fn random_hex(bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", rand::random::<u8>())).collect()
}

/// Returns the node id: from config, else from `DATA_DIR/node.id`, else a new one kept there.
fn node_id(config: &NodeConfig, data_dir: &Path) -> anyhow::Result<String> {
    if let Some(id) = &config.node.id {
        return Ok(id.clone());
    }
    let path = data_dir.join("node.id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        if !id.is_empty() {
            return Ok(id.to_owned());
        }
    }
    let id = format!("node-{}", random_hex(4));
    std::fs::write(&path, &id).with_context(|| format!("writing {}", path.display()))?;
    Ok(id)
}

/// Returns the admin token and whether it was just generated (API.md, "Auth").
fn admin_token(data_dir: &Path) -> anyhow::Result<(String, bool)> {
    if let Ok(token) = std::env::var("CLOUDROUTES_ADMIN_TOKEN") {
        if token.trim().len() < 16 {
            bail!("CLOUDROUTES_ADMIN_TOKEN must be at least 16 characters");
        }
        return Ok((token.trim().to_owned(), false));
    }
    let path = data_dir.join("admin.token");
    match std::fs::read_to_string(&path) {
        Ok(token) if !token.trim().is_empty() => return Ok((token.trim().to_owned(), false)),
        Ok(_) => bail!("{} is empty; delete it to generate a new token", path.display()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    }
    let token = random_hex(32);
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(token.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    file.sync_all().with_context(|| format!("syncing {}", path.display()))?;
    Ok((token, true))
}
