//! `monitors …` and `events MONITOR`: list, show, create, edit, delete, run, fail, heal.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::Output;
use super::client::{Client, percent_encode};
use super::table::{clip, details, print_json, table, text};

/// The `monitors` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(super) enum MonitorsCommand {
    /// All monitors (every page), optionally filtered.
    List {
        /// Only monitors in this status (`healthy`, `failed` or `unknown`).
        #[arg(long)]
        status: Option<String>,
        /// Only monitors with this tag.
        #[arg(long)]
        tag: Option<String>,
    },
    /// One monitor with its state.
    Get {
        /// The monitor id.
        id: String,
    },
    /// Create a monitor from a JSON definition.
    Create {
        /// The JSON file, or `-` for standard input.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
    /// Replace a monitor's definition (its state is kept).
    Edit {
        /// The monitor id.
        id: String,
        /// The JSON file, or `-` for standard input.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
    /// Delete a monitor and its history.
    Delete {
        /// The monitor id.
        id: String,
    },
    /// Run the monitor's check now.
    Run {
        /// The monitor id.
        id: String,
    },
    /// Mark the monitor failed (reactions run as for any result).
    Fail {
        /// The monitor id.
        id: String,
        /// Why, for the history.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Mark the monitor healthy (reactions run as for any result).
    Heal {
        /// The monitor id.
        id: String,
        /// Why, for the history.
        #[arg(long)]
        reason: Option<String>,
    },
}

/// Runs one `monitors` subcommand.
pub(super) async fn run(
    client: &Client,
    output: Output,
    command: &MonitorsCommand,
) -> anyhow::Result<()> {
    use reqwest::Method;
    match command {
        MonitorsCommand::List { status, tag } => {
            let mut query = Vec::new();
            if let Some(status) = status {
                query.push(("status", status.as_str()));
            }
            if let Some(tag) = tag {
                query.push(("tag", tag.as_str()));
            }
            let items = client.get_all("/api/v1/monitors", &query, None).await?;
            match output {
                Output::Json => print_json(&json!({"items": items, "next_cursor": null}))?,
                Output::Table => print!("{}", monitors_table(&items)),
            }
        }
        MonitorsCommand::Get { id } => {
            let monitor = client.get(&path(id, "")).await?;
            show(output, &monitor)?;
        }
        MonitorsCommand::Create { file } => {
            let body = super::read_json(file)?;
            let monitor = client.send(Method::POST, "/api/v1/monitors", Some(&body)).await?;
            show(output, &monitor)?;
        }
        MonitorsCommand::Edit { id, file } => {
            let body = super::read_json(file)?;
            let monitor = client.send(Method::PUT, &path(id, ""), Some(&body)).await?;
            show(output, &monitor)?;
        }
        MonitorsCommand::Delete { id } => {
            let answer = client.send(Method::DELETE, &path(id, ""), None).await?;
            match output {
                Output::Json => print_json(&answer)?,
                Output::Table => println!("deleted monitor {id}"),
            }
        }
        MonitorsCommand::Run { id } => {
            let answer = client.send(Method::POST, &path(id, "/run"), None).await?;
            match output {
                Output::Json => print_json(&answer)?,
                Output::Table => {
                    println!("outcome: {} ({})", text(&answer["outcome"]), text(&answer["reason"]));
                    print!("{}", monitor_details(&answer["monitor"]));
                }
            }
        }
        MonitorsCommand::Fail { id, reason } | MonitorsCommand::Heal { id, reason } => {
            let action =
                if matches!(command, MonitorsCommand::Fail { .. }) { "/fail" } else { "/heal" };
            let body = reason.as_ref().map(|reason| json!({"reason": reason}));
            let monitor = client.send(Method::POST, &path(id, action), body.as_ref()).await?;
            show(output, &monitor)?;
        }
    }
    Ok(())
}

/// `ctl events MONITOR`: the monitor's history, newest first.
pub(super) async fn events(
    client: &Client,
    output: Output,
    monitor: &str,
    limit: usize,
) -> anyhow::Result<()> {
    let items = client.get_all(&path(monitor, "/events"), &[], Some(limit)).await?;
    match output {
        Output::Json => print_json(&json!({"items": items}))?,
        Output::Table => {
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|event| {
                    let (what, how, detail) = if event["kind"] == "reaction" {
                        (
                            text(&event["outcome"]),
                            format!("reaction {}", text(&event["reaction_id"])),
                            &event["detail"],
                        )
                    } else {
                        (
                            format!(
                                "{} -> {}",
                                text(&event["prev_status"]),
                                text(&event["status"])
                            ),
                            text(&event["method"]),
                            &event["reason"],
                        )
                    };
                    vec![
                        text(&event["at"]),
                        text(&event["kind"]),
                        what,
                        how,
                        text(&event["episode"]),
                        text(&event["node"]),
                        clip(&text(detail), 60),
                    ]
                })
                .collect();
            let headers = ["AT", "KIND", "CHANGE", "BY", "EPISODE", "NODE", "REASON"];
            print!("{}", table(&headers, &rows));
        }
    }
    Ok(())
}

fn path(id: &str, suffix: &str) -> String {
    format!("/api/v1/monitors/{}{suffix}", percent_encode(id))
}

fn show(output: Output, monitor: &Value) -> anyhow::Result<()> {
    match output {
        Output::Json => print_json(monitor),
        Output::Table => {
            print!("{}", monitor_details(monitor));
            Ok(())
        }
    }
}

/// One row per monitor.
pub(super) fn monitors_table(items: &[Value]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|m| {
            let state = &m["state"];
            vec![
                text(&m["id"]),
                clip(&text(&m["name"]), 40),
                text(&m["check"]["type"]),
                text(&state["status"]),
                text(&state["streak"]),
                text(&state["last_check_at"]),
                clip(&text(&state["last_reason"]), 50),
            ]
        })
        .collect();
    let headers = ["ID", "NAME", "TYPE", "STATUS", "STREAK", "LAST CHECK", "LAST REASON"];
    table(&headers, &rows)
}

fn monitor_details(m: &Value) -> String {
    let state = &m["state"];
    let list = |v: &Value| {
        let items: Vec<String> = v.as_array().into_iter().flatten().map(text).collect();
        if items.is_empty() { "-".to_owned() } else { items.join(", ") }
    };
    let mut pairs = vec![
        ("id", text(&m["id"])),
        ("name", text(&m["name"])),
        ("type", text(&m["check"]["type"])),
        ("interval", text(&m["interval_secs"])),
        ("enabled", text(&m["enabled"])),
        ("tags", list(&m["tags"])),
        ("reactions", list(&m["reactions"])),
        ("status", text(&state["status"])),
        ("streak", text(&state["streak"])),
        ("episode", text(&state["episode"])),
        ("last check", text(&state["last_check_at"])),
        ("last change", text(&state["last_change_at"])),
        ("last reason", text(&state["last_reason"])),
        ("owner", text(&state["owner"])),
        ("check", text(&m["check"])),
    ];
    if let Some(url) = m["webhook_url"].as_str() {
        pairs.push(("webhook url", url.to_owned()));
    }
    details(&pairs)
}
