//! `promtool` (from Prometheus) on what our servers serve. Where it is not installed, a check
//! says so and is skipped, except in CI (`CI=true`), where it fails: `.ci/run` installs it.

use std::io::Write;
use std::process::{Command, Stdio};

/// `promtool` on the PATH, or `None` (and a note on stderr) when it is missing outside CI.
fn promtool() -> Option<Command> {
    let found = Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some(Command::new("promtool"));
    }
    let message = "promtool is not installed (Debian: apt-get install prometheus)";
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{message}; CI needs it"
    );
    eprintln!("skipping the promtool check: {message}");
    None
}

/// `promtool check metrics` on `text` (a scrape): it must parse and pass the lint.
pub fn promtool_check_metrics(text: &str) {
    let Some(mut promtool) = promtool() else {
        return;
    };
    let mut child = promtool
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}\non:\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
