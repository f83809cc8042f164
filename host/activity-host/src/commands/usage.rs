//! `usage`: what calls cost, by activity type or caller, over the fleet (`GET /api/v1/usage`),
//! as a table, JSON or CSV.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use activity_api::UsageReport;
use anyhow::Context;

use crate::cli::{api_client, ApiArgs};
use crate::commands::Output;
use crate::config::Config;

/// What `usage` asks for.
#[derive(clap::Args)]
pub struct UsageArgs {
    /// From when: a duration back from now (`15m`, `1h`, `7d`) or milliseconds since the
    /// Unix epoch; default: 24 hours back.
    #[arg(long, value_parser = parse_since)]
    pub since: Option<u64>,
    /// activity or caller.
    #[arg(long, default_value = "activity", value_parser = ["activity", "caller"])]
    pub group_by: String,
    /// Only this caller's calls.
    #[arg(long)]
    pub caller: Option<String>,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// `--since`: milliseconds since the epoch, or a duration back from now.
fn parse_since(text: &str) -> Result<u64, String> {
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(ms);
    }
    let back = humantime::parse_duration(text).map_err(|e| {
        format!("{text:?}: expected a duration such as 15m, 1h or 7d, or milliseconds since the Unix epoch ({e})")
    })?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    Ok(now.saturating_sub(back).as_millis() as u64)
}

/// The columns, in order.
const COLUMNS: [&str; 9] = [
    "key",
    "calls",
    "failures",
    "wall_ms",
    "cpu_ms",
    "peak_memory_bytes",
    "fuel",
    "egress_requests",
    "egress_bytes",
];

fn cells(report: &UsageReport) -> Vec<[String; 9]> {
    report
        .rows
        .iter()
        .map(|r| {
            [
                r.key.clone(),
                r.calls.to_string(),
                r.failures.to_string(),
                format!("{:.3}", r.wall_ms),
                format!("{:.3}", r.cpu_ms),
                r.peak_memory_bytes.to_string(),
                r.fuel.to_string(),
                r.egress_requests.to_string(),
                r.egress_bytes.to_string(),
            ]
        })
        .collect()
}

/// The report as an aligned table.
fn table(report: &UsageReport) -> String {
    let rows = cells(report);
    if rows.is_empty() {
        return "no calls in that window".into();
    }
    let mut widths = COLUMNS.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 9]| {
        cells
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i == 0 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(COLUMNS)];
    for row in &rows {
        out.push(line(row.each_ref().map(String::as_str)));
    }
    out.join("\n")
}

/// The report as CSV with a header row.
fn csv(report: &UsageReport) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(COLUMNS)?;
    for row in cells(report) {
        w.write_record(&row)?;
    }
    Ok(String::from_utf8(w.into_inner().context("CSV")?)?)
}

/// `usage`.
pub async fn usage(config: &Config, args: UsageArgs) -> anyhow::Result<()> {
    let client = api_client(config, &args.api);
    let report = client
        .usage(args.since, &args.group_by, args.caller.as_deref())
        .await?;
    match args.api.output {
        Output::Csv => print!("{}", csv(&report)?),
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Text => println!("{}", table(&report)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use activity_registry::{UsageGroup, UsageTotal};

    fn report() -> UsageReport {
        UsageReport {
            since_ms: 0,
            group_by: UsageGroup::Caller,
            rows: vec![UsageTotal {
                key: "key_1 (ci, \"nightly\")".into(),
                calls: 3,
                wall_ms: 1.5,
                ..Default::default()
            }],
        }
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        let text = csv(&report()).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap(), COLUMNS.join(","));
        assert_eq!(
            lines.next().unwrap(),
            "\"key_1 (ci, \"\"nightly\"\")\",3,0,1.500,0.000,0,0,0,0"
        );
    }

    #[test]
    fn since_takes_epoch_milliseconds_or_a_duration_back() {
        assert_eq!(parse_since("1700000000000").unwrap(), 1_700_000_000_000);
        let hour_ago = parse_since("1h").unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!((now - hour_ago).abs_diff(3_600_000) < 5_000);
        assert!(parse_since("soon").unwrap_err().contains("15m"));
    }

    #[test]
    fn the_table_aligns_numbers_right() {
        let t = table(&report());
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("key"), "{t}");
        assert!(lines[1].contains(" 3 "), "{t}");
    }
}
