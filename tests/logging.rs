//! Logs as a user gets them: the test provider's process with `LOG_FILE` and `LOG_FORMAT`,
//! against a dev hub on loopback, its log file read back. Each line an action logs, and each
//! line the framework writes about a task, carries that task's id, action and provider: in text
//! and in JSON, from async actions and from blocking ones on their own threads.

#[path = "support/provider_process.rs"]
mod provider_process;

use std::path::Path;
use std::time::Duration;

use arbv_provider::dev_hub::DevHub;
use arbv_tests::start_hub;
use provider_process::{PROVIDER, ProviderProcess};
use serde_json::{Value, json};

/// The tasks each test enqueues: action, and the line about it that must carry its id.
const TASKS: &[(&str, &str)] = &[
    ("log_async", "inside the async action"),
    ("log_blocking", "inside the blocking action"),
    ("explode", "action panicked"),
    ("explode_blocking", "action panicked"),
];

/// Enqueues one task per row of [`TASKS`] and waits for every answer; returns the ids in order.
async fn run_tasks(hub: &DevHub) -> Vec<String> {
    let ids: Vec<String> = TASKS
        .iter()
        .map(|(action, _)| hub.enqueue(PROVIDER, action, json!({}), None))
        .collect();
    for (id, (action, _)) in ids.iter().zip(TASKS) {
        let envelope = hub
            .wait_result(id, Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("no answer to {action} within 30 s"));
        let expected = if action.starts_with("explode") {
            "error"
        } else {
            "success"
        };
        assert_eq!(envelope["status"], expected, "{action}: {envelope}");
    }
    ids
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("the log file {} cannot be read: {e}", path.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_log_file_carries_each_tasks_span_and_no_escape_codes() {
    let dir = tempfile::tempdir().unwrap();
    // A directory that does not exist yet: the provider creates it.
    let path = dir.path().join("logs").join("provider.log");
    let (hub, server) = start_hub(Duration::from_millis(200)).await;
    let provider = ProviderProcess::start(&server, &[("LOG_FILE", path.to_str().unwrap())]);
    let ids = run_tasks(&hub).await;
    let stdout = provider.stop().await;
    server.stop().await;

    let log = read(&path);
    assert!(!log.contains('\x1b'), "escape codes in the file: {log:?}");
    for (id, (action, line)) in ids.iter().zip(TASKS) {
        let span = format!("task{{task_id={id} action={action} provider={PROVIDER}}}");
        let found: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(line) && l.contains(&format!("task_id={id}")))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{action}: one line {line:?} for {id} in\n{log}"
        );
        assert!(found[0].contains(&span), "{action}: {span} in {}", found[0]);
        // Each destination reads the clock for itself: the lines match after the time.
        let after_time = |l: &str| l.split_once(' ').map(|(_, rest)| rest.to_owned());
        assert!(
            stdout.iter().any(|l| after_time(l) == after_time(found[0])),
            "{action}: the line is on standard output too: {}\n{}",
            found[0],
            stdout.join("\n")
        );
    }
    assert!(
        log.lines()
            .last()
            .is_some_and(|l| l.contains("provider stopped")),
        "the last line, written as the provider exits, reaches the file: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_log_file_carries_each_tasks_span_in_every_line_about_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("provider.log");
    let (hub, server) = start_hub(Duration::from_millis(200)).await;
    let provider = ProviderProcess::start(
        &server,
        &[("LOG_FILE", path.to_str().unwrap()), ("LOG_FORMAT", "json")],
    );
    let ids = run_tasks(&hub).await;
    provider.stop().await;
    server.stop().await;

    let log = read(&path);
    assert!(!log.contains('\x1b'), "escape codes in the file: {log:?}");
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for (id, (action, message)) in ids.iter().zip(TASKS) {
        let found: Vec<&Value> = lines
            .iter()
            .filter(|l| l["message"] == *message && l["span"]["task_id"] == id.as_str())
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{action}: one {message:?} line for {id} in\n{log}"
        );
        let line = found[0];
        assert_eq!(
            line["span"],
            json!({ "name": "task", "task_id": id, "action": action, "provider": PROVIDER }),
            "{line}"
        );
        assert_eq!(line["spans"], json!([line["span"]]), "{line}");
    }
    assert_eq!(
        lines.last().unwrap()["message"],
        "provider stopped",
        "the last line reaches the file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_rotation_writes_dated_files_and_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("provider.log");
    // Older rotated files, created oldest first (tracing-appender orders them by creation
    // time, which the file system keeps to a few milliseconds); and a file that is not one.
    for day in ["2020-01-01", "2020-01-02", "2020-01-03"] {
        std::fs::write(dir.path().join(format!("provider.log.{day}")), "old\n").unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::write(dir.path().join("other.log"), "not ours\n").unwrap();
    let (hub, server) = start_hub(Duration::from_millis(200)).await;
    let provider = ProviderProcess::start(
        &server,
        &[
            ("LOG_FILE", path.to_str().unwrap()),
            ("LOG_ROTATION", "daily"),
            ("LOG_MAX_FILES", "2"),
        ],
    );
    let id = hub.enqueue(PROVIDER, "log_async", json!({}), None);
    hub.wait_result(&id, Duration::from_secs(30))
        .await
        .expect("the task is answered");
    provider.stop().await;
    server.stop().await;

    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(names[0], "other.log", "{names:?}");
    assert_eq!(
        names[1], "provider.log.2020-01-03",
        "the newest old file stays"
    );
    let today = &names[2];
    let date = today
        .strip_prefix("provider.log.")
        .unwrap_or_else(|| panic!("a dated file: {names:?}"));
    assert!(
        date.len() == 10 && date.chars().filter(|c| *c == '-').count() == 2,
        "YYYY-MM-DD: {today}"
    );
    assert!(!path.exists(), "no undated file with rotation");
    let log = read(&dir.path().join(today));
    assert!(
        log.lines()
            .any(|l| l.contains("inside the async action") && l.contains(&format!("task_id={id}"))),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_logging_variable_stops_the_provider_at_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_directory = dir.path().join("a-file");
    std::fs::write(&not_a_directory, "").unwrap();
    let under_a_file = not_a_directory.join("provider.log");
    let log_file = dir.path().join("provider.log");
    let log_file = log_file.to_str().unwrap();
    let (_hub, server) = start_hub(Duration::from_millis(200)).await;
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[("LOG_FILE", log_file), ("LOG_ROTATION", "weekly")],
            "LOG_ROTATION=\"weekly\" is not valid: give never, daily or hourly",
        ),
        (
            &[
                ("LOG_FILE", log_file),
                ("LOG_ROTATION", "daily"),
                ("LOG_MAX_FILES", "0"),
            ],
            "LOG_MAX_FILES=\"0\" is not valid",
        ),
        (
            &[("LOG_FILE", under_a_file.to_str().unwrap())],
            "its directory cannot be created",
        ),
        (
            &[("LOG_FORMAT", "yaml")],
            "LOG_FORMAT=\"yaml\" is not valid",
        ),
    ];
    for (env, expected) in cases {
        let provider = ProviderProcess::start(&server, env);
        let (status, output) = provider.exit(Duration::from_secs(30)).await;
        let output = output.join("\n");
        assert!(
            status.code().is_some_and(|code| code != 0),
            "{env:?}: a failed start, not a panic or a clean exit: {status:?}\n{output}"
        );
        assert!(
            output.contains(expected),
            "{env:?}: {expected:?} in\n{output}"
        );
        assert!(!output.contains("panicked"), "{env:?}: {output}");
    }
    assert!(
        !Path::new(log_file).exists(),
        "nothing is written when the settings are refused"
    );
    server.stop().await;
}
