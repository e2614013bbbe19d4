//! `reactions …`: list, show, create, edit, delete.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::Output;
use super::client::{Client, percent_encode};
use super::table::{clip, details, print_json, table, text};

/// The `reactions` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(super) enum ReactionsCommand {
    /// All reactions (every page).
    List,
    /// One reaction (secret fields show as `***`).
    Get {
        /// The reaction id.
        id: String,
    },
    /// Create a reaction from a JSON definition.
    Create {
        /// The JSON file, or `-` for standard input.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
    /// Replace a reaction's definition.
    Edit {
        /// The reaction id.
        id: String,
        /// The JSON file, or `-` for standard input.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
    /// Delete a reaction.
    Delete {
        /// The reaction id.
        id: String,
    },
}

/// Runs one `reactions` subcommand.
pub(super) async fn run(
    client: &Client,
    output: Output,
    command: &ReactionsCommand,
) -> anyhow::Result<()> {
    use reqwest::Method;
    match command {
        ReactionsCommand::List => {
            let items = client.get_all("/api/v1/reactions", &[], None).await?;
            match output {
                Output::Json => print_json(&json!({"items": items, "next_cursor": null}))?,
                Output::Table => print!("{}", reactions_table(&items)),
            }
        }
        ReactionsCommand::Get { id } => show(output, &client.get(&path(id)).await?)?,
        ReactionsCommand::Create { file } => {
            let body = super::read_json(file)?;
            show(output, &client.send(Method::POST, "/api/v1/reactions", Some(&body)).await?)?;
        }
        ReactionsCommand::Edit { id, file } => {
            let body = super::read_json(file)?;
            show(output, &client.send(Method::PUT, &path(id), Some(&body)).await?)?;
        }
        ReactionsCommand::Delete { id } => {
            let answer = client.send(Method::DELETE, &path(id), None).await?;
            match output {
                Output::Json => print_json(&answer)?,
                Output::Table => println!("deleted reaction {id}"),
            }
        }
    }
    Ok(())
}

fn path(id: &str) -> String {
    format!("/api/v1/reactions/{}", percent_encode(id))
}

fn show(output: Output, reaction: &Value) -> anyhow::Result<()> {
    match output {
        Output::Json => print_json(reaction),
        Output::Table => {
            let r = reaction;
            print!(
                "{}",
                details(&[
                    ("id", text(&r["id"])),
                    ("name", text(&r["name"])),
                    ("type", text(&r["action"]["type"])),
                    ("trigger", text(&r["trigger"])),
                    ("frequency", text(&r["frequency_secs"])),
                    ("call on", text(&r["call_on"])),
                    ("last run", text(&r["last_run_at"])),
                    ("action", text(&r["action"])),
                ])
            );
            Ok(())
        }
    }
}

fn reactions_table(items: &[Value]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|r| {
            vec![
                text(&r["id"]),
                clip(&text(&r["name"]), 40),
                text(&r["action"]["type"]),
                text(&r["trigger"]),
                text(&r["frequency_secs"]),
                text(&r["call_on"]),
                text(&r["last_run_at"]),
            ]
        })
        .collect();
    let headers = ["ID", "NAME", "TYPE", "TRIGGER", "FREQUENCY", "CALL ON", "LAST RUN"];
    table(&headers, &rows)
}
