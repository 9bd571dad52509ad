//! `promtool`, Prometheus's own checker, for the tests of what we hand to Prometheus: the
//! metrics text, the scrape configuration and the alerting rules.
//!
//! Without `promtool` on the `PATH` a test that needs it is skipped, saying so on the terminal
//! past libtest's capture; with `CI=true` it fails instead, since CI installs it (`.ci/run`).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const INSTALL: &str = "Debian/Ubuntu: apt-get install prometheus (it brings promtool)";

/// A `promtool` that can be run.
pub struct Promtool(());

impl Promtool {
    /// `promtool` if it runs; `None` after reporting the skip when it does not and `CI` is not
    /// `true` (the test's other checks still run).
    #[track_caller]
    pub fn find() -> Option<Self> {
        let missing = match Command::new("promtool").arg("--version").output() {
            Ok(out) if out.status.success() => return Some(Self(())),
            Ok(out) => format!(
                "`promtool --version` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => format!("`promtool` cannot be run: {e}"),
        };
        if std::env::var("CI").is_ok_and(|ci| ci == "true") {
            panic!("{missing}. CI=true, so this test does not skip. {INSTALL}.");
        }
        let current = std::thread::current();
        let test = current.name().unwrap_or("a test");
        let _ = writeln!(
            std::io::stderr().lock(),
            "SKIPPED the promtool checks of {test}: {missing}. {INSTALL}; with CI=true this \
             test fails instead."
        );
        None
    }

    /// `promtool check metrics`, reading `text` from its standard input.
    pub fn check_metrics(&self, text: &str) -> Output {
        let mut child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("promtool starts");
        child
            .stdin
            .take()
            .expect("a piped stdin")
            .write_all(text.as_bytes())
            .expect("promtool reads the metrics");
        child.wait_with_output().expect("promtool ends")
    }

    /// `promtool check config FILE`.
    pub fn check_config(&self, file: &Path) -> Output {
        self.run(&["check", "config"], file)
    }

    /// `promtool check rules FILE`.
    pub fn check_rules(&self, file: &Path) -> Output {
        self.run(&["check", "rules"], file)
    }

    fn run(&self, args: &[&str], file: &Path) -> Output {
        Command::new("promtool")
            .args(args)
            .arg(file)
            .output()
            .expect("promtool runs")
    }
}

/// Panics with promtool's own words unless it succeeded.
#[track_caller]
pub fn assert_passed(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "promtool finds fault with {what} ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
