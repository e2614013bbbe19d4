//! `cluster`, `status`, `nodes`, `partitions`, `drain`: the cluster as the API reports it.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::Output;
use super::client::{Client, percent_encode};
use super::table::{print_json, table, text};

/// `ctl cluster`: the mode, partition count and one row per node.
pub(super) async fn cluster(client: &Client, output: Output) -> anyhow::Result<()> {
    let view = client.get("/api/v1/cluster").await?;
    match output {
        Output::Json => print_json(&view)?,
        Output::Table => print!("{}{}", cluster_heading(&view), nodes_table(&view)),
    }
    Ok(())
}

/// `ctl nodes`: one row per node.
pub(super) async fn nodes(client: &Client, output: Output) -> anyhow::Result<()> {
    let view = client.get("/api/v1/cluster").await?;
    match output {
        Output::Json => print_json(&view["nodes"])?,
        Output::Table => print!("{}", nodes_table(&view)),
    }
    Ok(())
}

/// `ctl partitions`: how many partitions and monitors each node owns.
pub(super) async fn partitions(client: &Client, output: Output) -> anyhow::Result<()> {
    let view = client.get("/api/v1/cluster").await?;
    let nodes = view["nodes"].as_array().cloned().unwrap_or_default();
    match output {
        Output::Json => {
            let per_node: Vec<Value> = nodes
                .iter()
                .map(|n| json!({"node": n["id"], "partitions": n["partitions"], "monitors": n["monitors"]}))
                .collect();
            print_json(&json!({"partitions": view["partitions"], "nodes": per_node}))?;
        }
        Output::Table => {
            let rows: Vec<Vec<String>> = nodes
                .iter()
                .map(|n| vec![text(&n["id"]), text(&n["partitions"]), text(&n["monitors"])])
                .collect();
            println!("{} partitions in all", text(&view["partitions"]));
            print!("{}", table(&["NODE", "PARTITIONS", "MONITORS"], &rows));
        }
    }
    Ok(())
}

/// `ctl status`: the cluster summary and how many monitors are in each status.
pub(super) async fn status(client: &Client, output: Output) -> anyhow::Result<()> {
    let view = client.get("/api/v1/cluster").await?;
    let monitors = client.get_all("/api/v1/monitors", &[], None).await?;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for monitor in &monitors {
        *counts.entry(text(&monitor["state"]["status"])).or_default() += 1;
    }
    let nodes = view["nodes"].as_array().cloned().unwrap_or_default();
    let alive = nodes.iter().filter(|n| n["alive"] == Value::Bool(true)).count();
    match output {
        Output::Json => print_json(&json!({
            "mode": view["mode"],
            "node_id": view["node_id"],
            "partitions": view["partitions"],
            "nodes": nodes.len(),
            "nodes_alive": alive,
            "monitors": monitors.len(),
            "monitors_by_status": counts,
        }))?,
        Output::Table => {
            print!("{}", cluster_heading(&view));
            println!("nodes: {} ({alive} alive)", nodes.len());
            let by_status: Vec<String> =
                counts.iter().map(|(status, n)| format!("{n} {status}")).collect();
            let by_status = if by_status.is_empty() {
                String::new()
            } else {
                format!(" ({})", by_status.join(", "))
            };
            println!("monitors: {}{by_status}", monitors.len());
        }
    }
    Ok(())
}

/// `ctl drain NODE`: move the node's partitions to the other nodes.
pub(super) async fn drain(client: &Client, output: Output, node: &str) -> anyhow::Result<()> {
    let path = format!("/api/v1/cluster/nodes/{}/drain", percent_encode(node));
    let answer = client.send(reqwest::Method::POST, &path, None).await?;
    match output {
        Output::Json => print_json(&answer)?,
        Output::Table => println!("draining {node}: its partitions move to the other nodes"),
    }
    Ok(())
}

fn cluster_heading(view: &Value) -> String {
    format!(
        "{} mode, {} partitions, answered by {}\n",
        text(&view["mode"]),
        text(&view["partitions"]),
        text(&view["node_id"])
    )
}

fn nodes_table(view: &Value) -> String {
    let rows: Vec<Vec<String>> = view["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|node| {
            vec![
                text(&node["id"]),
                if node["alive"] == Value::Bool(true) { "yes".into() } else { "NO".into() },
                if node["draining"] == Value::Bool(true) { "yes".into() } else { "no".into() },
                text(&node["zone"]),
                text(&node["partitions"]),
                text(&node["monitors"]),
                text(&node["http_addr"]),
                text(&node["last_heartbeat"]),
            ]
        })
        .collect();
    let headers =
        ["NODE", "ALIVE", "DRAINING", "ZONE", "PARTITIONS", "MONITORS", "HTTP", "LAST HEARTBEAT"];
    table(&headers, &rows)
}
