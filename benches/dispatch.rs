//! `cargo bench --bench dispatch`: the in-process cost of one task, without network: parse,
//! validate, admit, run, and build the envelope, as the worker does (`Runtime::run_task`).
//! Targets: < 20 µs for `echo`, < 200 µs for `process_order` with 100 items (~10 KB).

use std::hint::black_box;

use arbv_benches::{ECHO_PAYLOAD, order_payload};
use arbv_provider::{Config, IncomingTask, Runtime};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn task(action: &str, payload: Bytes) -> IncomingTask {
    IncomingTask {
        id: "6f1c1d2e-9a4b-4c61-8f3e-0d2a9b7c5e10".into(),
        action: action.into(),
        payload,
        account: Bytes::new(),
    }
}

fn dispatch(c: &mut Criterion) {
    let config = Config::builder()
        .auth_token("bench")
        .hub_url("127.0.0.1:1")
        .timezone("Europe/Moscow")
        .build()
        .expect("a valid configuration");
    let timezone = config.timezone().clone();
    let basic = Runtime::new(basic::Basic, config).expect("the basic provider compiles");
    // The worker runs dispatch on a multi-threaded runtime; a current-thread one adds the least
    // overhead of its own to a measurement of dispatch itself.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");

    let order = Bytes::from(order_payload(100).to_string());
    println!(
        "payloads: echo {} bytes, process_order {} bytes (100 items)",
        ECHO_PAYLOAD.len(),
        order.len()
    );
    let cases = [
        ("echo", task("echo", Bytes::from_static(ECHO_PAYLOAD))),
        ("process_order_100_items", task("process_order", order)),
        (
            "invalid_echo_payload",
            task("echo", Bytes::from_static(br#"{"text":"wrong field"}"#)),
        ),
    ];
    let mut group = c.benchmark_group("dispatch");
    for (name, task) in cases {
        let answered = runtime.block_on(basic.run_task(task.clone()));
        let expected = if name.starts_with("invalid") {
            "error"
        } else {
            "success"
        };
        assert_eq!(
            answered.status.as_str(),
            expected,
            "{name}: {}",
            answered.result
        );
        group.throughput(Throughput::Bytes(task.payload.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| runtime.block_on(basic.run_task(black_box(task.clone()))));
        });
    }
    group.finish();

    // The parts, to see where a task's time goes (each also runs inside dispatch).
    let mut parts = c.benchmark_group("parts");
    let order_text = order_payload(100).to_string();
    parts.bench_function("parse_order_100_items", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(&order_text)).expect("JSON"));
    });
    let envelope = arbv_provider::Envelope::new(
        arbv_provider::Status::Success,
        "",
        "basic-provider",
        "echo",
        &timezone,
        serde_json::json!({"echo": "hello from the benchmark"}),
    );
    let order_value = order_payload(100);
    let order_schema = arbv_provider::validation::schema_of::<basic::Order>();
    let validator = arbv_provider::validation::SchemaValidator::compile(order_schema)
        .expect("the order schema compiles");
    parts.bench_function("validate_order_100_items", |b| {
        b.iter(|| validator.check(black_box(&order_value)).expect("valid"));
    });
    parts.bench_function("from_value_order_100_items", |b| {
        b.iter_batched(
            || order_value.clone(),
            |value| serde_json::from_value::<basic::Order>(value).expect("an order"),
            criterion::BatchSize::SmallInput,
        );
    });
    parts.bench_function("from_slice_order_100_items", |b| {
        b.iter(|| serde_json::from_str::<basic::Order>(black_box(&order_text)).expect("an order"));
    });
    parts.bench_function("envelope_new_echo", |b| {
        b.iter(|| {
            arbv_provider::Envelope::new(
                arbv_provider::Status::Success,
                "",
                "basic-provider",
                "echo",
                &timezone,
                serde_json::json!({"echo": "hello from the benchmark"}),
            )
        });
    });
    parts.bench_function("envelope_to_json_echo", |b| {
        b.iter(|| black_box(&envelope).to_json())
    });
    // The envelope's one lookup in the tz database when the zone is not UTC, beside chrono-tz
    // (which the provider used before) for the same zone and instant.
    let now = chrono::Utc::now();
    parts.bench_function("zone_offset_moscow", |b| {
        b.iter(|| black_box(&timezone).offset_at(black_box(&now)))
    });
    let moscow = chrono_tz::Europe::Moscow;
    parts.bench_function("zone_offset_moscow_chrono_tz", |b| {
        b.iter(|| {
            use chrono::Offset as _;
            black_box(now)
                .with_timezone(black_box(&moscow))
                .offset()
                .fix()
        })
    });
    parts.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
