//! The quickstart as a person runs it: it exits 0 and prints every line the README shows.

use std::process::Command;

/// The answer lines (`✓` / `✗`) of the README's quickstart block, spaces collapsed.
fn readme_lines() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("the README is readable");
    let lines: Vec<String> = readme
        .lines()
        .filter(|l| l.trim_start().starts_with(['✓', '✗']))
        .map(collapse)
        .collect();
    assert!(
        lines.len() >= 5,
        "the README shows the quickstart's answers: {lines:?}"
    );
    lines
}

fn collapse(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_quickstart_prints_what_the_readme_shows() {
    let output = Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .env_remove("RUST_LOG")
        .output()
        .expect("the quickstart starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Vec<String> = stdout.lines().map(collapse).collect();
    for expected in readme_lines() {
        assert!(
            printed.contains(&expected),
            "the README's line {expected:?} is not in the output:\n{stdout}"
        );
    }
    let answers: Vec<&String> = printed
        .iter()
        .filter(|l| l.starts_with(['✓', '✗', '?']))
        .collect();
    assert_eq!(
        answers.len(),
        9,
        "one line per task of the batch:\n{stdout}"
    );
    assert_eq!(
        answers.iter().filter(|l| l.starts_with('✓')).count(),
        5,
        "five successes, four errors:\n{stdout}"
    );
    assert!(
        stdout.contains("The first envelope in full:"),
        "the first envelope is printed:\n{stdout}"
    );
}
