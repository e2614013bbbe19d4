//! `cloudroutes node`: run one node.
//!
//! Startup order: config (file < environment < flags), logging, the store (embedded, or Redis
//! for a cluster), the node's actors (a single node loads every monitor; a cluster member takes
//! its share of the partitions), the cluster transport, then the HTTP API. Shutdown on
//! SIGTERM/SIGINT runs the other way: stop taking requests, stop monitors, flush state, wait for
//! running reactions, hand partitions over, exit 0.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use cloudroutes_actors::cluster::transport::{TlsFiles, Transport, TransportConfig};
use cloudroutes_actors::{ClusterSetup, Lifeline, Node};
use cloudroutes_engine::Store;
use cloudroutes_engine::cluster::{Coordinator, Fences};
use cloudroutes_engine::config::{FlagOverrides, NodeConfig};
use cloudroutes_engine::store::embedded::EmbeddedStore;
use cloudroutes_engine::store::redis::{RedisOptions, RedisStore};
use cloudroutes_http::{ApiState, Auth};

use crate::NodeArgs;

mod secrets;

/// Runs a node until SIGTERM or SIGINT.
pub(crate) async fn run(args: NodeArgs) -> anyhow::Result<()> {
    // Before anything can report ready: a SIGTERM from then on always means a clean shutdown.
    let signals = Signals::install()?;
    let env: Vec<(String, String)> = std::env::vars().collect();
    let flags =
        FlagOverrides { http_addr: args.http, data_dir: args.data_dir, node_id: args.node_id };
    let mut config =
        NodeConfig::load(args.config.as_deref(), &env, &flags).context("loading config")?;
    init_logging();
    let data_dir = config.node.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let node_id = node_id(&config, &data_dir)?;
    let (token, token_is_new) = admin_token(&data_dir)?;
    let listener = tokio::net::TcpListener::bind(config.http.addr)
        .await
        .with_context(|| format!("binding the HTTP API to {}", config.http.addr))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    // Peers learn the address actually bound (port 0 picks one).
    config.http.addr = addr;
    let node = start_node(&config, &node_id).await?;
    let public_url = config
        .http
        .public_url
        .clone()
        .unwrap_or_else(|| cloudroutes_http::default_public_url(addr));
    let limits = &config.limits;
    let api = ApiState {
        node: node.clone(),
        auth: Auth::with_store(
            token.clone(),
            node.store(),
            Duration::from_millis(limits.token_cache_ms),
        ),
        body_limit: config.http.body_limit_bytes,
        public_url: public_url.clone(),
        limits: Arc::new(cloudroutes_http::limits::Limiters::new(limits)),
        audit_keep: usize::try_from(limits.audit_max_entries).unwrap_or(usize::MAX),
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
    let timeouts = cloudroutes_http::server::Timeouts::new(&config.limits);
    let server = tokio::spawn(cloudroutes_http::serve(api, listener, timeouts, async {
        let _ = http_stopped.await;
    }));
    signals.wait().await;
    tracing::info!("shutting down: no new requests, stopping monitors, flushing state");
    let _ = stop_http.send(());
    let _ = server.await;
    node.shutdown().await;
    Ok(())
}

/// Opens the store and starts the node: alone on the embedded store, or as a cluster member on
/// Redis with its transport when `cluster.addr` is set.
async fn start_node(config: &NodeConfig, node_id: &str) -> anyhow::Result<Node> {
    if config.is_embedded() {
        let store = EmbeddedStore::open_with_cache(
            &config.embedded_store_path(),
            config.engine.history_max_events,
            config.store.cache_mb.saturating_mul(1024 * 1024),
        )
        .context("opening the embedded store")?;
        let store = secrets::seal(store, config, true).await?;
        return Node::start(config.clone(), node_id.to_owned(), Arc::new(store))
            .await
            .context("starting the node");
    }
    let cluster = &config.cluster;
    if !cluster.seeds.is_empty() {
        tracing::warn!(
            seeds = cluster.seeds.len(),
            "cluster.seeds is ignored: peers are found through their heartbeat records in Redis"
        );
    }
    let fences = Arc::new(Fences::new(Duration::from_millis(cluster.fence_ms)));
    let redis =
        RedisStore::connect(&config.store.url, options_for(config, node_id), Arc::clone(&fences))
            .await
            .with_context(|| {
                format!("connecting to the Redis store at {}", redact_url(&config.store.url))
            })?;
    let redis = Arc::new(secrets::seal(redis, config, false).await?);
    let store: Arc<dyn Store> = redis.clone();
    let url = config.store.url.clone();
    let lifeline_options = options_for(config, node_id);
    let lifeline_fences = Arc::clone(&fences);
    let lifeline = Lifeline::start(move || async move {
        let redis = RedisStore::connect(&url, lifeline_options, lifeline_fences).await?;
        Ok::<_, cloudroutes_engine::StoreError>(Arc::new(redis) as Arc<dyn Coordinator>)
    })
    .await
    .context("starting the lifeline (heartbeat and lease renewals)")?;
    let setup = ClusterSetup { coordinator: redis, fences, lifeline };
    let node = Node::start_cluster(config.clone(), node_id.to_owned(), store, setup)
        .await
        .context("starting the node")?;
    if let Some(listen) = &cluster.addr {
        let cookie = secrets::cookie(cluster)?;
        let tls = match (&cluster.tls_cert, &cluster.tls_key) {
            (Some(cert), Some(key)) => {
                Some(TlsFiles { cert: cert.clone(), key: key.clone(), ca: cluster.tls_ca.clone() })
            }
            _ => None,
        };
        let transport_config = TransportConfig {
            node_id: node_id.to_owned(),
            listen: listen.clone(),
            cookie,
            tls,
            max_frame_bytes: cluster.max_frame_bytes,
        };
        let transport = Transport::start(transport_config, node.inbox())
            .await
            .with_context(|| format!("starting the cluster transport on {listen}"))?;
        node.attach_transport(transport);
    }
    node.join_cluster().await;
    Ok(node)
}

/// The Redis store's options for this node.
fn options_for(config: &NodeConfig, node_id: &str) -> RedisOptions {
    RedisOptions {
        node_id: node_id.to_owned(),
        partitions: config.cluster.partitions,
        history_max_events: config.engine.history_max_events,
        response_timeout: Duration::from_millis(config.cluster.redis_timeout_ms),
    }
}

/// Returns a Redis URL without its password, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// The log filter when `CLOUDROUTES_LOG` is not set.
const DEFAULT_LOG_FILTER: &str = "info,warp=warn";

/// ractor wraps each actor's life in an INFO span ("Actor", with its id): at a million
/// monitors, a million live spans, each entered on every message the actor handles. They add
/// nothing a log reader needs, so they stay off unless the filter names ractor itself.
const QUIET_ACTOR_SPANS: &str = "ractor::actor=warn";

/// Returns the log filter for `CLOUDROUTES_LOG`'s value (the default when unset), with
/// ractor's per-actor spans off unless one of its directives targets ractor (`ractor` or
/// `ractor::…`; `ractor_cluster` is another crate).
fn log_filter(from_env: Option<&str>) -> String {
    let filter = from_env.unwrap_or(DEFAULT_LOG_FILTER);
    let names_ractor = filter.split(',').any(|directive| {
        let target = directive.split(['=', '[']).next().unwrap_or_default().trim();
        target == "ractor" || target.starts_with("ractor::")
    });
    if names_ractor { filter.to_owned() } else { format!("{filter},{QUIET_ACTOR_SPANS}") }
}

fn init_logging() {
    let filter = log_filter(std::env::var("CLOUDROUTES_LOG").ok().as_deref());
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

#[cfg(test)]
mod tests {
    use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
    use tracing_subscriber::EnvFilter;

    use super::log_filter;

    #[test]
    fn the_log_filter_keeps_ractors_actor_spans_off_unless_asked_for() {
        assert_eq!(log_filter(None), "info,warp=warn,ractor::actor=warn");
        assert_eq!(log_filter(Some("debug")), "debug,ractor::actor=warn");
        assert_eq!(log_filter(Some("info,ractor=trace")), "info,ractor=trace");
        assert_eq!(log_filter(Some("ractor::actor=info")), "ractor::actor=info");
        assert_eq!(
            log_filter(Some("info,ractor_cluster=debug")),
            "info,ractor_cluster=debug,ractor::actor=warn"
        );
    }

    /// Replies whether the span its handler runs in is disabled.
    struct SpanProbe;

    /// Asks a [`SpanProbe`] (local only).
    struct Ask(RpcReplyPort<bool>);

    impl ractor::Message for Ask {}

    impl Actor for SpanProbe {
        type Msg = Ask;
        type State = ();
        type Arguments = ();

        async fn pre_start(&self, _: ActorRef<Self::Msg>, _: ()) -> Result<(), ActorProcessingErr> {
            Ok(())
        }

        async fn handle(
            &self,
            _: ActorRef<Self::Msg>,
            Ask(reply): Ask,
            _: &mut (),
        ) -> Result<(), ActorProcessingErr> {
            let _ = reply.send(tracing::Span::current().is_disabled());
            Ok(())
        }
    }

    /// Whether an actor's handler runs outside any span under `filter`.
    fn actor_runs_without_a_span(filter: &str) -> bool {
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new(filter))
            .with_writer(std::io::sink)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let (actor, handle) = Actor::spawn(None, SpanProbe, ()).await.unwrap();
            let disabled = ractor::call!(actor, Ask).unwrap();
            actor.stop(None);
            handle.await.unwrap();
            disabled
        })
    }

    #[test]
    fn monitor_actors_run_outside_ractors_span_under_the_default_filter() {
        assert!(actor_runs_without_a_span(&log_filter(None)));
        assert!(!actor_runs_without_a_span("info,ractor=info"), "the probe sees the span when on");
    }
}
