//! `cloudroutes ctl`: the node-admin console. It talks to any node's HTTP API with a token
//! (`--url`/`--token` or `CLOUDROUTES_URL`/`CLOUDROUTES_TOKEN`), prints tables for people and
//! JSON for scripts (`--output json`), and exits non-zero with a message that says what to do.

use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::Value;

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
    /// Move a node's partitions to the other nodes (until it restarts).
    Drain {
        /// The node id.
        node: String,
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
        token,
    };
    match &args.command {
        CtlCommand::Cluster => {
            let view = client.send(reqwest::Method::GET, "/api/v1/cluster").await?;
            match args.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&view)?),
                Output::Table => print!("{}", cluster_table(&view)),
            }
        }
        CtlCommand::Drain { node } => {
            let path = format!("/api/v1/cluster/nodes/{node}/drain");
            let answer = client.send(reqwest::Method::POST, &path).await?;
            match args.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&answer)?),
                Output::Table => {
                    println!("draining {node}: its partitions move to the other nodes")
                }
            }
        }
    }
    Ok(())
}

struct Client<'a> {
    http: reqwest::Client,
    base: String,
    token: &'a str,
}

impl Client<'_> {
    async fn send(&self, method: reqwest::Method, path: &str) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let response =
            self.http.request(method, &url).bearer_auth(self.token).send().await.with_context(
                || {
                    format!(
                        "cannot reach {url}; is a node running there? (--url or CLOUDROUTES_URL)"
                    )
                },
            )?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let message = body["error"]["message"].as_str().unwrap_or("no error message");
        if status == reqwest::StatusCode::UNAUTHORIZED {
            bail!("{url}: {message} (check --token or CLOUDROUTES_TOKEN)");
        }
        bail!("{url}: HTTP {status}: {message}")
    }
}

/// Renders the cluster view as a table.
fn cluster_table(view: &Value) -> String {
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    let mut rows = vec![[
        "NODE".to_owned(),
        "ALIVE".into(),
        "DRAINING".into(),
        "ZONE".into(),
        "PARTITIONS".into(),
        "MONITORS".into(),
        "HTTP".into(),
        "LAST HEARTBEAT".into(),
    ]];
    for node in view["nodes"].as_array().into_iter().flatten() {
        rows.push([
            text(&node["id"]),
            if node["alive"] == Value::Bool(true) { "yes".into() } else { "NO".into() },
            if node["draining"] == Value::Bool(true) { "yes".into() } else { "no".into() },
            text(&node["zone"]),
            text(&node["partitions"]),
            text(&node["monitors"]),
            text(&node["http_addr"]),
            text(&node["last_heartbeat"]),
        ]);
    }
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0)).collect();
    let mut out = format!(
        "{} mode, {} partitions, answered by {}\n",
        text(&view["mode"]),
        text(&view["partitions"]),
        text(&view["node_id"])
    );
    for row in rows {
        let cells: Vec<String> =
            row.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
