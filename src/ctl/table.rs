//! Output for people (aligned tables, `key: value` lines) and for scripts (the API's JSON).

use serde_json::Value;

/// A JSON value as a table cell: strings bare, `null` as `-`, the rest as JSON.
pub(super) fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Prints `value` as pretty JSON.
pub(super) fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Renders rows under headers with columns padded to their widest cell.
pub(super) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            let cells = rows.iter().map(|row| row[i].chars().count());
            cells.chain([headers[i].len()]).max().unwrap_or(0)
        })
        .collect();
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> =
            row.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Renders `key: value` lines with the values aligned.
pub(super) fn details(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(key, _)| key.len() + 1).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value) in pairs {
        out.push_str(&format!("{:<width$} {value}\n", format!("{key}:")));
    }
    out
}

/// Shortens text for a table cell to `max` characters.
pub(super) fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut clipped: String = text.chars().take(max.saturating_sub(1)).collect();
    clipped.push('…');
    clipped
}
