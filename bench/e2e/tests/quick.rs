//! The benchmark driver end to end, small: the real dev server, activity-host and both SDK
//! peers each run a few `UserWorkflow`s and standalone activities, every result checked by
//! the driver, and the table names every worker with a throughput above zero. Then the modes
//! `make bench-rest`, `make bench-noisy`, `make bench-cluster` and `make bench-roll` run, as
//! small.

use std::process::Command;

/// Runs bench-e2e with `args` as `make bench-*` runs it (from the checkout, with none of
/// cargo's variables), which must succeed; answers its stdout.
fn bench(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_bench-e2e"))
        .args(args)
        .current_dir(test_support::repo())
        .env_remove("CARGO_MANIFEST_DIR")
        .output()
        .expect("run bench-e2e");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench-e2e {args:?} failed:\n{stdout}\n{stderr}"
    );
    stdout
}

/// The cells of the table row that starts with `| {name} |`.
fn row<'a>(stdout: &'a str, name: &str) -> Vec<&'a str> {
    stdout
        .lines()
        .find(|l| l.starts_with(&format!("| {name} |")))
        .unwrap_or_else(|| panic!("no row for {name}:\n{stdout}"))
        .split('|')
        .map(str::trim)
        .collect()
}

/// The number a cell starts with (`12.3 ms (1.00x)` -> 12.3).
fn number(cell: &str) -> f64 {
    cell.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number in {cell:?}"))
}

#[test]
fn every_worker_completes_the_checked_load() {
    let stdout = bench(&[
        "--latency-runs",
        "3",
        "--invoke-runs",
        "3",
        "--warmup",
        "1",
        "--concurrency",
        "4",
        "--seconds",
        "2",
        // The readers' limit through the option (the project's value, so the load is the same).
        "--server-rps",
        "1000",
    ]);
    for worker in [
        "activity-host (wasm)",
        "activity-host (wasm, in-process)",
        "Rust SDK worker",
        "Python SDK worker",
    ] {
        // "", worker, p50, p95, p99, in worker, wf/s @4, ...
        let cells = row(&stdout, worker);
        assert!(number(cells[6]) > 0.0, "{cells:?}");
        assert!(number(cells[2]) > 0.0, "{cells:?}");
    }
}

#[test]
fn the_rest_mode_measures_both_dev_hosts() {
    let stdout = bench(&["--rest", "--invoke-runs", "3", "--warmup", "1"]);
    for setting in [
        "eager_workflow_start: false",
        "eager_workflow_start: true (default)",
    ] {
        // "", setting, invoke p50, p99, create p50, p95, p99
        let cells = row(&stdout, setting);
        for cell in &cells[2..7] {
            assert!(number(cell) > 0.0, "{cells:?}");
        }
    }
}

#[test]
fn the_noisy_mode_measures_with_and_without_the_cap() {
    let stdout = bench(&["--noisy", "--invoke-runs", "3"]);
    for setting in [
        "no per-type cap (max_concurrent: 100000)",
        "default per-type cap (max_concurrent: 0, twice the cores)",
    ] {
        // "", setting, alone p50 / p99, beside p50 / p99, ratio, spinner calls
        let cells = row(&stdout, setting);
        assert!(number(cells[2]) > 0.0, "{cells:?}");
        assert!(number(cells[3]) > 0.0, "{cells:?}");
    }
}

#[test]
fn the_cluster_mode_measures_the_dev_server_and_the_cluster() {
    let stdout = bench(&[
        "--cluster",
        "--invoke-runs",
        "3",
        "--warmup",
        "1",
        "--concurrency",
        "2",
        "--seconds",
        "2",
    ]);
    for temporal in ["dev server", "cluster"] {
        // "", Temporal, create p50, p99, invoke p50, creates/s, their p50, p99
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {temporal}")))
            .unwrap_or_else(|| panic!("no row for {temporal}:\n{stdout}"));
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        assert!(number(cells[2]) > 0.0, "{cells:?}");
        assert!(number(cells[4]) > 0.0, "{cells:?}");
        assert!(number(cells[5]) > 0.0, "{cells:?}");
    }
}

#[test]
fn the_roll_mode_restarts_every_host_and_loses_no_workflow() {
    // Two hosts at 5 creates per second: the same roll, smaller. bench-e2e fails the run
    // itself when a workflow does not complete, a start is refused or an activity times out.
    let stdout = bench(&["--roll", "--roll-hosts", "2", "--rate", "5"]);
    // started, refused, completed, failed, activity timeouts, failed attempts
    let counts: Vec<f64> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("| started | refused"))
        .nth(2)
        .unwrap_or_else(|| panic!("no counts:\n{stdout}"))
        .split('|')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(number)
        .collect();
    assert!(counts[0] >= 50.0, "{stdout}");
    assert_eq!(counts[2], counts[0], "{stdout}");
    assert_eq!(&counts[3..5], &[0.0, 0.0], "{stdout}");
    for phase in ["before the roll", "during the roll", "after the roll"] {
        assert!(number(row(&stdout, phase)[2]) > 0.0, "{stdout}");
    }
    // The killed host's activity is retried after its heartbeat timeout, not after its
    // start-to-close timeout (120 s).
    let retry = stdout
        .split("on another host ")
        .nth(1)
        .map(number)
        .unwrap_or_else(|| panic!("no kill-to-retry:\n{stdout}"));
    assert!(retry > 0.0 && retry < 60.0, "{stdout}");
}
