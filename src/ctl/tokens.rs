//! `tokens …`: create, list and revoke API tokens; `audit`: who changed what, newest first.

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::Output;
use super::client::{Client, percent_encode};
use super::table::{clip, details, print_json, table, text};

/// The `tokens` subcommands (admin only).
#[derive(Debug, clap::Subcommand)]
pub(super) enum TokensCommand {
    /// Create a token; its secret is printed once and cannot be shown again.
    Create {
        /// A unique name (1 to 100 characters), shown in the audit trail.
        name: String,
        /// `admin`, `editor` or `viewer`.
        #[arg(long)]
        role: String,
        /// Lifetime, like `3600`, `90s`, `45m`, `12h` or `30d`; default: never expires.
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// All tokens (names, roles and times; never their secrets).
    List,
    /// Revoke a token: it stops working at once.
    Revoke {
        /// The token id.
        id: String,
    },
}

/// Runs one `tokens` subcommand.
pub(super) async fn run(
    client: &Client,
    output: Output,
    command: &TokensCommand,
) -> anyhow::Result<()> {
    use reqwest::Method;
    match command {
        TokensCommand::Create { name, role, expires_in } => {
            let mut body = json!({"name": name, "role": role});
            if let Some(lifetime) = expires_in {
                body["expires_in_secs"] = json!(parse_lifetime(lifetime)?);
            }
            let token = client.send(Method::POST, "/api/v1/tokens", Some(&body)).await?;
            match output {
                Output::Json => print_json(&token)?,
                Output::Table => {
                    print!("{}", token_details(&token));
                    println!(
                        "\nThe secret is shown only now; keep it safe:\n{}",
                        text(&token["token"])
                    );
                }
            }
        }
        TokensCommand::List => {
            let items = client.get_all("/api/v1/tokens", &[], None).await?;
            match output {
                Output::Json => print_json(&json!({"items": items, "next_cursor": null}))?,
                Output::Table => print!("{}", tokens_table(&items)),
            }
        }
        TokensCommand::Revoke { id } => {
            let path = format!("/api/v1/tokens/{}", percent_encode(id));
            let answer = client.send(Method::DELETE, &path, None).await?;
            match output {
                Output::Json => print_json(&answer)?,
                Output::Table => println!("revoked token {id}"),
            }
        }
    }
    Ok(())
}

/// `audit`: the newest `limit` audit entries.
pub(super) async fn audit(client: &Client, output: Output, limit: usize) -> anyhow::Result<()> {
    let items = client.get_all("/api/v1/audit", &[], Some(limit)).await?;
    match output {
        Output::Json => print_json(&json!({"items": items})),
        Output::Table => {
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|e| {
                    vec![
                        text(&e["at"]),
                        format!("{} ({})", text(&e["actor"]), text(&e["role"])),
                        text(&e["action"]),
                        text(&e["resource_kind"]),
                        text(&e["resource_id"]),
                        clip(&text(&e["resource_name"]), 40),
                        match e["count"].as_u64() {
                            Some(count) if count > 1 => {
                                format!("{} (x{count})", text(&e["outcome"]))
                            }
                            _ => text(&e["outcome"]),
                        },
                    ]
                })
                .collect();
            let headers = ["AT", "WHO", "ACTION", "KIND", "ID", "NAME", "OUTCOME"];
            print!("{}", table(&headers, &rows));
            Ok(())
        }
    }
}

/// Parses a lifetime: seconds, or a number with `s`, `m`, `h` or `d`.
fn parse_lifetime(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last() {
        Some((at, unit)) if unit.is_ascii_alphabetic() => (&text[..at], unit),
        _ => (text, 's'),
    };
    let number: u64 = number.parse().with_context(|| {
        format!("--expires-in `{text}`: expected a number like 3600, 45m, 12h or 30d")
    })?;
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => bail!("--expires-in `{text}`: the unit must be s, m, h or d"),
    };
    match number.checked_mul(scale) {
        Some(0) | None => bail!("--expires-in `{text}`: must be at least 1 second"),
        Some(secs) => Ok(secs),
    }
}

fn token_details(token: &Value) -> String {
    details(&[
        ("id", text(&token["id"])),
        ("name", text(&token["name"])),
        ("role", text(&token["role"])),
        ("created", text(&token["created_at"])),
        ("expires", text(&token["expires_at"])),
    ])
}

fn tokens_table(items: &[Value]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|t| {
            vec![
                text(&t["id"]),
                clip(&text(&t["name"]), 40),
                text(&t["role"]),
                text(&t["created_at"]),
                text(&t["expires_at"]),
            ]
        })
        .collect();
    table(&["ID", "NAME", "ROLE", "CREATED", "EXPIRES"], &rows)
}

#[cfg(test)]
mod tests {
    use super::parse_lifetime;

    #[test]
    fn lifetimes_take_units_and_refuse_nonsense() {
        assert_eq!(parse_lifetime("3600").unwrap(), 3600);
        assert_eq!(parse_lifetime("90s").unwrap(), 90);
        assert_eq!(parse_lifetime("45m").unwrap(), 2700);
        assert_eq!(parse_lifetime("12h").unwrap(), 43_200);
        assert_eq!(parse_lifetime("30d").unwrap(), 2_592_000);
        for bad in ["", "0", "10y", "d", "-5m", "99999999999999999999d"] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
    }
}
