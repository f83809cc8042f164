//! The documentation's command blocks, read and run as a reader would.

use std::path::Path;

/// A fenced code block: its info string and its text.
pub struct Block {
    pub info: String,
    pub text: String,
}

/// Every fenced block of `markdown`, in order.
pub fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut current: Option<Block> = None;
    for line in markdown.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(info)) => {
                current = Some(Block {
                    info: info.trim().to_string(),
                    text: String::new(),
                })
            }
            (Some(_), Some(_)) => out.extend(current.take()),
            (Some(b), None) => {
                b.text.push_str(line);
                b.text.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

/// The `sh` blocks of docs/`doc`'s section `heading` (a `## ` heading), in order.
pub fn section_sh_blocks(doc: &str, heading: &str) -> Vec<String> {
    let text = std::fs::read_to_string(test_support::repo().join("docs").join(doc)).unwrap();
    let section = text
        .split(&format!("## {heading}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("docs/{doc} has no section {heading:?}"))
        .split("\n## ")
        .next()
        .unwrap();
    blocks(section)
        .into_iter()
        .filter(|b| b.info == "sh")
        .map(|b| b.text)
        .collect()
}

/// Runs `block` with `sh -e` in `dir`, the host binary first on the PATH and `env` set;
/// asserts that it succeeds and answers its output (stdout, then stderr).
pub fn run_sh_block(block: &str, dir: &Path, env: &[(&str, &str)]) -> String {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_activity-host"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("sh")
        .args(["-e", "-c", block])
        .current_dir(dir)
        .env("PATH", &path)
        .env("RUST_LOG", "error")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = super::output_text(&out);
    assert!(out.status.success(), "{block}\n{text}");
    text
}
