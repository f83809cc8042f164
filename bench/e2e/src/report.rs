//! The results: a table on stdout, a section of `docs/BENCHMARKS.md` and an SVG plot.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use crate::load::{Percentiles, Throughput};
use crate::workers::Kind;

/// Everything measured for one worker.
#[derive(Debug, Clone)]
pub struct WorkerResult {
    pub kind: Kind,
    /// `UserWorkflow` create at concurrency 1.
    pub latency: Percentiles,
    /// Time of each of those workflows spent in the worker, from its history.
    pub worker_time: Percentiles,
    /// Per concurrency level, in the order of [`Settings::concurrency`](crate::Settings).
    pub throughput: Vec<(usize, Throughput)>,
    /// Standalone ValidateUser round trips.
    pub invoke: Percentiles,
    /// Peak RSS of the worker process over the whole run, bytes.
    pub peak_rss: u64,
}

impl WorkerResult {
    fn at(&self, concurrency: usize) -> Option<f64> {
        self.throughput
            .iter()
            .find(|(c, _)| *c == concurrency)
            .map(|(_, t)| t.per_second)
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The results table in Markdown, with each figure's ratio to activity-host's.
pub fn table(results: &[WorkerResult]) -> String {
    let ours = results.iter().find(|r| r.kind == Kind::Host);
    let levels: Vec<usize> = results
        .first()
        .map(|r| r.throughput.iter().map(|(c, _)| *c).collect())
        .unwrap_or_default();
    let mut out = String::new();
    let mut header = "| worker | create p50 | p95 | p99 | in worker p50 |".to_string();
    for c in &levels {
        let _ = write!(header, " wf/s @{c} |");
    }
    header.push_str(" peak RSS | invoke p50 | invoke p99 |");
    let _ = writeln!(out, "{header}");
    let _ = writeln!(out, "|{}", " --- |".repeat(header.matches('|').count() - 1));
    for r in results {
        // Ratio of this worker's figure to ours: >1 means ours is smaller (latency, memory)
        // or, for throughput, that this worker completes more.
        let ratio = |theirs: f64, mine: Option<f64>| match mine {
            Some(m) if r.kind != Kind::Host && m > 0.0 => format!(" ({:.2}x)", theirs / m),
            _ => String::new(),
        };
        let o = |f: fn(&WorkerResult) -> f64| ours.map(f);
        let mut row = format!(
            "| {} | {:.1} ms{} | {:.1} ms{} | {:.1} ms{} | {:.2} ms{} |",
            r.kind.name(),
            r.latency.p50,
            ratio(r.latency.p50, o(|w| w.latency.p50)),
            r.latency.p95,
            ratio(r.latency.p95, o(|w| w.latency.p95)),
            r.latency.p99,
            ratio(r.latency.p99, o(|w| w.latency.p99)),
            r.worker_time.p50,
            ratio(r.worker_time.p50, o(|w| w.worker_time.p50)),
        );
        for c in &levels {
            let v = r.at(*c).unwrap_or(0.0);
            let _ = write!(row, " {v:.1}{} |", ratio(v, ours.and_then(|w| w.at(*c))));
        }
        let _ = write!(
            row,
            " {:.0} MiB{} | {:.1} ms{} | {:.1} ms{} |",
            mib(r.peak_rss),
            ratio(r.peak_rss as f64, o(|w| w.peak_rss as f64)),
            r.invoke.p50,
            ratio(r.invoke.p50, o(|w| w.invoke.p50)),
            r.invoke.p99,
            ratio(r.invoke.p99, o(|w| w.invoke.p99)),
        );
        let _ = writeln!(out, "{row}");
    }
    out
}

/// The goals of the performance issue, checked against this run.
pub fn goals(results: &[WorkerResult]) -> String {
    let find = |k: Kind| results.iter().find(|r| r.kind == k);
    let Some(ours) = find(Kind::Host) else {
        return String::new();
    };
    let mut out = String::from("| goal | this run | met |\n| --- | --- | --- |\n");
    let mut line = |goal: &str, r: f64, met: bool| {
        let _ = writeln!(
            out,
            "| {goal} | {r:.2}x | {} |",
            if met { "yes" } else { "**no**" }
        );
    };
    let (py, rs, local) = (find(Kind::Python), find(Kind::Rust), find(Kind::HostLocal));
    if let Some(py) = py {
        let r = ours.latency.p50 / py.latency.p50;
        line(
            "create p50, remote activities, <= 0.7x Python's",
            r,
            r <= 0.7,
        );
    }
    if let Some(rs) = rs {
        let r = ours.latency.p50 / rs.latency.p50;
        line(
            "create p50, remote activities, <= 1.0x native Rust's",
            r,
            r <= 1.0,
        );
    }
    if let (Some(local), Some(py)) = (local, py) {
        let r = local.latency.p50 / py.latency.p50;
        line("create p50, in-process, <= 0.35x Python's", r, r <= 0.35);
    }
    let r = ours.latency.p99 / ours.latency.p50;
    line("create p99 <= 2x our median", r, r <= 2.0);
    for (who, best) in [("Python's", 2.0), ("native Rust's", 1.0)] {
        let theirs = match who {
            "Python's" => py,
            _ => rs,
        };
        if let (Some(t), Some(mine)) = (theirs.and_then(|p| p.at(32)), ours.at(32)) {
            let r = mine / t;
            line(
                &format!("throughput @32, remote, >= {best}x {who}"),
                r,
                r >= best,
            );
        }
        if let (Some(t), Some(mine)) = (theirs.and_then(|p| p.at(32)), local.and_then(|l| l.at(32)))
        {
            let r = mine / t;
            line(
                &format!("throughput @32, in-process, >= {best}x {who}"),
                r,
                r >= best,
            );
        }
    }
    if let Some(py) = py {
        let r = ours.peak_rss as f64 / py.peak_rss as f64;
        line("peak RSS under load <= Python's", r, r <= 1.0);
    }
    out
}

/// Replaces the text between `<!-- NAME:begin -->` and `<!-- NAME:end -->` in `path` with
/// `section` (appends the markers when missing).
pub fn write_section(path: &Path, name: &str, section: &str) -> anyhow::Result<()> {
    let begin = format!("<!-- {name}:begin -->");
    let end = format!("<!-- {name}:end -->");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let block = format!("{begin}\n{section}{end}");
    let updated = match (text.find(&begin), text.find(&end)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{block}{}", &text[..b], &text[e + end.len()..])
        }
        _ => format!("{}\n{block}\n", text.trim_end()),
    };
    std::fs::write(path, updated).with_context(|| path.display().to_string())
}

const COLORS: [RGBColor; 3] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
];

/// Grouped bars: one group per label, one bar per worker.
fn bars(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    title: &str,
    y_label: &str,
    labels: &[String],
    series: &[(String, Vec<f64>)],
) -> anyhow::Result<()> {
    let top = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0f64, f64::max)
        * 1.15;
    let groups = labels.len() as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..groups, 0.0..top.max(1.0))?;
    let names = labels.to_vec();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(labels.len() * 2 + 1)
        .x_label_formatter(&move |x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 && i < names.len() {
                names[i].clone()
            } else {
                String::new()
            }
        })
        .y_desc(y_label)
        .draw()?;
    let width = 0.8 / series.len().max(1) as f64;
    for (s, (name, values)) in series.iter().enumerate() {
        let color = COLORS[s % COLORS.len()];
        chart
            .draw_series(values.iter().enumerate().map(|(g, v)| {
                let x0 = g as f64 + 0.1 + s as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width * 0.9, *v)], color.filled())
            }))?
            .label(name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    Ok(())
}

/// Two panels: create latency percentiles, and throughput per concurrency, per worker.
pub fn plot(path: &Path, results: &[WorkerResult]) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1200, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(650);
    let latency: Vec<(String, Vec<f64>)> = results
        .iter()
        .map(|r| {
            (
                r.kind.name().to_string(),
                vec![
                    r.latency.p50,
                    r.latency.p95,
                    r.latency.p99,
                    r.worker_time.p50,
                    r.invoke.p50,
                    r.invoke.p99,
                ],
            )
        })
        .collect();
    let labels: Vec<String> = [
        "create p50",
        "create p95",
        "create p99",
        "in worker p50",
        "invoke p50",
        "invoke p99",
    ]
    .map(String::from)
    .to_vec();
    bars(
        &left,
        "Latency at concurrency 1 (lower is better)",
        "ms",
        &labels,
        &latency,
    )?;
    let levels: Vec<usize> = results
        .first()
        .map(|r| r.throughput.iter().map(|(c, _)| *c).collect())
        .unwrap_or_default();
    let throughput: Vec<(String, Vec<f64>)> = results
        .iter()
        .map(|r| {
            (
                r.kind.name().to_string(),
                levels.iter().map(|c| r.at(*c).unwrap_or(0.0)).collect(),
            )
        })
        .collect();
    let labels: Vec<String> = levels.iter().map(|c| format!("{c} concurrent")).collect();
    bars(
        &right,
        "UserWorkflow throughput (higher is better)",
        "workflows / s",
        &labels,
        &throughput,
    )?;
    root.present()?;
    Ok(())
}
