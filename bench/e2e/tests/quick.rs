//! The benchmark driver end to end, small: the real dev server, activity-host and both SDK
//! peers each run a few `UserWorkflow`s and standalone activities, every result checked by
//! the driver, and the table names every worker with a throughput above zero.

use std::process::Command;

#[test]
fn every_worker_completes_the_checked_load() {
    let out = Command::new(env!("CARGO_BIN_EXE_bench-e2e"))
        .args(["--latency-runs", "3", "--invoke-runs", "3", "--warmup", "1"])
        .args(["--concurrency", "4", "--seconds", "2"])
        // The readers' limit through the option (the project's value, so the load is the same).
        .args(["--server-rps", "1000"])
        .output()
        .expect("run bench-e2e");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench-e2e failed:\n{stdout}\n{stderr}"
    );
    for worker in [
        "activity-host (wasm)",
        "activity-host (wasm, in-process)",
        "Rust SDK worker",
        "Python SDK worker",
    ] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {worker} |")))
            .unwrap_or_else(|| panic!("no row for {worker}:\n{stdout}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        // "", worker, p50, p95, p99, in worker, wf/s @4, ...
        let number = |cell: &str, what: &str| -> f64 {
            cell.split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {what} in {row}"))
        };
        assert!(number(cells[6], "throughput") > 0.0, "{row}");
        assert!(number(cells[2], "median") > 0.0, "{row}");
    }
}
