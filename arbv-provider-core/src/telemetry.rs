//! Logging: `tracing` with a filter from `RUST_LOG` (default `info`) and `LOG_FORMAT=json` for
//! one JSON object a line. Logs go to standard output, coloured only when it is a terminal and
//! `NO_COLOR` is unset, and with `LOG_FILE` to a file as well (never coloured); with the `otel`
//! feature and `OTEL_EXPORTER_OTLP_ENDPOINT`, spans are exported over OTLP/gRPC. Strings that come
//! from the hub are logged through [`Escaped`].

use std::fmt::{self, Write as _};
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{RecordFields, VisitOutput as _};
use tracing_subscriber::fmt::format::{DefaultFields, DefaultVisitor, Format, Full, Writer};
use tracing_subscriber::fmt::time::SystemTime;
use tracing_subscriber::fmt::{FormatFields, MakeWriter, SubscriberBuilder};
use tracing_subscriber::layer::{Layered, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::ConfigError;

mod file;
#[cfg(feature = "otel")]
mod otel;

/// Names of the environment variables [`init_logging`] reads.
pub mod env {
    /// `text` (the default) or `json`: one JSON object a line, on standard output and in the file.
    pub const LOG_FORMAT: &str = "LOG_FORMAT";
    /// The log filter, in `tracing-subscriber`'s `EnvFilter` form (`info`,
    /// `arbv_provider_core=debug`); `info` when unset.
    pub const RUST_LOG: &str = "RUST_LOG";
    /// A file the logs are written to as well as standard output.
    pub const LOG_FILE: &str = "LOG_FILE";
    /// `never` (the default: the file is exactly `LOG_FILE`), `daily` or `hourly` (dated files
    /// next to it: `LOG_FILE.2026-03-01`, `LOG_FILE.2026-03-01-14`).
    pub const LOG_ROTATION: &str = "LOG_ROTATION";
    /// How many rotated files to keep, the newest; all when unset.
    pub const LOG_MAX_FILES: &str = "LOG_MAX_FILES";
    /// Where spans are exported over OTLP/gRPC (`http://collector:4317`); setting it turns the
    /// export on (with the `otel` feature).
    pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
    /// The same for traces alone; it takes precedence over `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub const OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
    /// The exported spans' `service.name`; the provider's name when unset.
    pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
}

/// How a log line is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum LogFormat {
    /// `tracing-subscriber`'s full text format, one event a line.
    #[default]
    Text,
    /// One JSON object a line, the event's fields at the top level.
    Json,
}

/// What the logging variables ask for, read and checked before anything is installed.
#[derive(Debug, Default, PartialEq, Eq)]
struct LogSettings {
    format: LogFormat,
    file: Option<file::LogFile>,
    /// The OTLP endpoint, when one is set, and the variable that set it.
    otlp_endpoint: Option<(&'static str, String)>,
    service_name: Option<String>,
}

impl LogSettings {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let format = match lookup(env::LOG_FORMAT) {
            None => LogFormat::Text,
            Some(value) => match value.trim().to_ascii_lowercase().as_str() {
                "" | "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(ConfigError::Invalid {
                        variable: env::LOG_FORMAT,
                        value,
                        reason: "give text or json".into(),
                    });
                }
            },
        };
        let set = |name| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let otlp_endpoint = [
            env::OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
            env::OTEL_EXPORTER_OTLP_ENDPOINT,
        ]
        .into_iter()
        .find_map(|name| Some((name, set(name)?)));
        Ok(Self {
            format,
            file: file::LogFile::from_lookup(&lookup)?,
            otlp_endpoint,
            service_name: set(env::OTEL_SERVICE_NAME),
        })
    }
}

/// What [`init_logging`] started that must be stopped at exit: the log file's writer thread and
/// the span exporter. Dropping it flushes the file; [`shutdown`](Self::shutdown) also sends the
/// spans still buffered. `.serve()` does both when it returns.
#[derive(Default)]
#[must_use = "the log file is flushed and the last spans exported when this is shut down or dropped"]
pub struct TelemetryGuard {
    file: Option<tracing_appender::non_blocking::WorkerGuard>,
    #[cfg(feature = "otel")]
    spans: Option<otel::SpanExport>,
}

impl TelemetryGuard {
    /// Exports the spans still buffered (waiting at most 3 s for the collector), then flushes
    /// the log file.
    pub async fn shutdown(mut self) {
        #[cfg(feature = "otel")]
        if let Some(spans) = self.spans.take() {
            spans.shutdown().await;
        }
        drop(self.file.take());
    }
}

impl fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("TelemetryGuard");
        debug.field("file", &self.file.is_some());
        #[cfg(feature = "otel")]
        debug.field("spans", &self.spans.is_some());
        debug.finish()
    }
}

/// Installs the global subscriber from the environment (see [`env`](mod@env)) unless one is
/// already installed (then it reads nothing and does nothing).
///
/// `service_name` is the exported spans' `service.name` when `OTEL_SERVICE_NAME` is unset
/// (`.serve()` passes the provider's name). A bad value (an unknown `LOG_FORMAT` or
/// `LOG_ROTATION`, `LOG_MAX_FILES=0`, a `LOG_FILE` that cannot be created, an OTLP endpoint
/// that is not a URL) is an error that names the variable. Keep the guard until the end of
/// `main` and call [`TelemetryGuard::shutdown`] there: it holds the file's writer and the
/// exporter. With an OTLP endpoint (and the `otel` feature), call it from within a tokio
/// runtime: the exporter runs on it.
pub fn init_logging(service_name: &str) -> Result<TelemetryGuard, ConfigError> {
    if tracing::dispatcher::has_been_set() {
        return Ok(TelemetryGuard::default());
    }
    let settings = LogSettings::from_lookup(|name| std::env::var(name).ok())?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = colour_wanted(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let mut guard = TelemetryGuard::default();
    let mut layers = vec![output_layer(settings.format, std::io::stdout, colour)];
    if let Some(log_file) = &settings.file {
        let (writer, file_guard) = log_file.open()?;
        layers.push(file_layer(settings.format, writer));
        guard.file = Some(file_guard);
    }
    #[cfg(feature = "otel")]
    if let Some((variable, endpoint)) = &settings.otlp_endpoint {
        let service = settings.service_name.as_deref().unwrap_or(service_name);
        let (export, layer) = otel::SpanExport::start(variable, endpoint, service)?;
        layers.push(layer);
        guard.spans = Some(export);
    }
    #[cfg(not(feature = "otel"))]
    let _ = service_name;
    if Registry::default()
        .with(filter)
        .with(layers)
        .try_init()
        .is_err()
    {
        // Another thread installed a subscriber since the check above; it stays.
        return Ok(guard);
    }
    #[cfg(not(feature = "otel"))]
    if let Some((variable, _)) = settings.otlp_endpoint {
        tracing::warn!("{}", otel_feature_off(variable));
    }
    Ok(guard)
}

/// The warning when an OTLP endpoint is set and this build cannot export.
#[cfg(not(feature = "otel"))]
fn otel_feature_off(variable: &str) -> String {
    format!(
        "{variable} is set, but this build leaves out the `otel` feature of arbv-provider: spans \
         are not exported (turn it on in Cargo.toml: arbv-provider = {{ version = \"...\", features = [\"otel\"] }})"
    )
}

/// The subscriber the layers are stacked on: the registry behind the `RUST_LOG` filter.
type Base = Layered<EnvFilter, Registry>;
/// One destination of the logs (standard output, the file) or the span exporter.
type BoxedLayer = Box<dyn Layer<Base> + Send + Sync + 'static>;

/// The layer that writes to standard output (or, in tests, to another writer).
fn output_layer<W>(format: LogFormat, writer: W, colour: bool) -> BoxedLayer
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_writer(writer);
    match format {
        LogFormat::Text => layer.with_ansi(colour).fmt_fields(TextFields).boxed(),
        LogFormat::Json => layer.with_ansi(false).json().flatten_event(true).boxed(),
    }
}

/// The layer that writes to the log file: the same format, never coloured.
fn file_layer<W>(format: LogFormat, writer: W) -> BoxedLayer
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(false)
        .with_writer(writer);
    match format {
        LogFormat::Text => layer.fmt_fields(PlainFields).boxed(),
        LogFormat::Json => layer.json().flatten_event(true).boxed(),
    }
}

/// Fields formatted as [`DefaultFields`] formats them, for standard output: with colour it is
/// `DefaultFields`; without, [`plain_fields`] writes the same text for less. Every task's span
/// has its fields formatted when it is made, and `DefaultFields` paints each name with an
/// empty style when colour is off (over half of what a span costs).
struct TextFields;

impl<'w> FormatFields<'w> for TextFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        if writer.has_ansi_escapes() {
            return DefaultFields::new().format_fields(writer, fields);
        }
        plain_fields(writer, fields)
    }
}

/// Fields formatted as [`DefaultFields`] formats them without colour, for the file.
/// tracing-subscriber keeps one formatted copy of a span's fields per formatter type and reuses
/// it in every layer; a type of the file's own keeps the copy that coloured standard output
/// made (with its escape codes) out of the file.
struct PlainFields;

impl<'w> FormatFields<'w> for PlainFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        plain_fields(writer, fields)
    }
}

/// The text `DefaultFields` writes without colour: `name=value` pairs (the value's `Debug`),
/// separated by spaces. What it writes in a way of its own (the message, strings, errors,
/// `r#` names) is left to its visitor.
fn plain_fields<R: RecordFields>(writer: Writer<'_>, fields: R) -> fmt::Result {
    let mut visitor = PlainVisitor {
        writer,
        pending: Pending::default(),
        is_empty: true,
        result: Ok(()),
    };
    fields.record(&mut visitor);
    visitor.flush();
    visitor.result
}

struct PlainVisitor<'w> {
    writer: Writer<'w>,
    /// Fields written but not yet handed to `writer`: a span's fields reach its string in one
    /// piece, where writing each piece would grow it several times.
    pending: Pending,
    is_empty: bool,
    result: fmt::Result,
}

impl PlainVisitor<'_> {
    fn flush(&mut self) {
        if self.pending.len > 0 {
            let written = self.writer.write_str(self.pending.text());
            self.result = self.result.and(written);
            self.pending.len = 0;
        }
    }

    /// Lets `DefaultFields`' own visitor write one field, as it would have.
    fn as_default(&mut self, field: &Field, record: impl FnOnce(&mut DefaultVisitor<'_>)) {
        if self.result.is_err() || is_log_metadata(field) {
            return;
        }
        self.flush();
        let mut visitor = DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
        record(&mut visitor);
        self.is_empty = false;
        self.result = visitor.finish();
    }
}

/// A few hundred bytes of text on the stack; what does not fit goes to the writer.
struct Pending {
    bytes: [u8; 256],
    len: usize,
}

impl Default for Pending {
    fn default() -> Self {
        Self {
            bytes: [0; 256],
            len: 0,
        }
    }
}

impl Pending {
    fn text(&self) -> &str {
        // Only whole `str`s are ever appended.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }

    /// Appends `text` if it fits; false (nothing appended) if not.
    fn push(&mut self, text: &str) -> bool {
        let end = self.len + text.len();
        if end > self.bytes.len() {
            return false;
        }
        self.bytes[self.len..end].copy_from_slice(text.as_bytes());
        self.len = end;
        true
    }
}

impl fmt::Write for PlainVisitor<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if self.pending.push(text) {
            return Ok(());
        }
        self.flush();
        if self.pending.push(text) {
            return Ok(());
        }
        self.writer.write_str(text)
    }
}

impl Visit for PlainVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if name == "message" || name.starts_with("r#") {
            return self.as_default(field, |visitor| visitor.record_debug(field, value));
        }
        if self.result.is_err() || is_log_metadata(field) {
            return;
        }
        let pad = if self.is_empty { "" } else { " " };
        self.is_empty = false;
        // Written piece by piece: one formatting pass for the value alone.
        let written = self
            .write_str(pad)
            .and_then(|()| self.write_str(name))
            .and_then(|()| self.write_char('='))
            .and_then(|()| write!(self, "{value:?}"));
        self.result = self.result.and(written);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.as_default(field, |visitor| visitor.record_str(field, value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.as_default(field, |visitor| visitor.record_error(field, value));
    }
}

/// A field of a `log` record, already written as the line's metadata: skipped, as
/// `DefaultFields` skips it.
fn is_log_metadata(field: &Field) -> bool {
    field.name().starts_with("log.")
}

/// The text subscriber [`init_logging`] installs, writing to `writer` instead of standard
/// output: for tests and tools that read the log as a person would.
/// `filter` is an `EnvFilter`, or directives in `RUST_LOG` form such as `"debug"`.
pub fn text_subscriber<W>(
    filter: impl Into<EnvFilter>,
    writer: W,
    colour: bool,
) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    text_builder(filter.into(), writer, colour).finish()
}

fn text_builder<W>(
    filter: EnvFilter,
    writer: W,
    colour: bool,
) -> SubscriberBuilder<TextFields, Format<Full, SystemTime>, EnvFilter, W>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(colour)
        .fmt_fields(TextFields)
        .with_writer(writer)
}

/// Colour only on a terminal, and never when `NO_COLOR` is set to something
/// (<https://no-color.org>).
pub(crate) fn colour_wanted(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// A string from outside (a task id, an action name, a hub's error message) made safe for a
/// text log: control characters (newlines, ANSI escapes, C1 codes) and Unicode line separators
/// are written escaped, so the string cannot start a forged log line or restyle a terminal.
///
/// ```
/// use arbv_provider_core::telemetry::Escaped;
/// assert_eq!(Escaped("a\nb\x1b[31m").to_string(), r"a\nb\u{1b}[31m");
/// ```
pub struct Escaped<T>(pub T);

impl<T: fmt::Display> fmt::Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(EscapingWriter(f), "{}", self.0)
    }
}

impl<T: fmt::Display> fmt::Debug for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// [`Escaped`] for a string, written in one call when it needs no escaping (task ids and
/// action names nearly always): this runs for every task's span.
pub(crate) struct EscapedText<'a>(pub(crate) &'a str);

impl fmt::Display for EscapedText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        EscapingWriter(f).write_str(self.0)
    }
}

impl fmt::Debug for EscapedText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

struct EscapingWriter<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl fmt::Write for EscapingWriter<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Task ids and action names are printable ASCII nearly always: one pass over the bytes
        // then, not a char-by-char search (this runs for every task's span).
        if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return self.0.write_str(s);
        }
        let mut rest = s;
        while let Some(at) = rest.find(needs_escape) {
            self.0.write_str(&rest[..at])?;
            let c = rest[at..]
                .chars()
                .next()
                .expect("find returned a char boundary");
            write!(self.0, "{}", c.escape_default())?;
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::ffi::OsStr;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn escaped_leaves_plain_text_and_escapes_every_control_character() {
        assert_eq!(Escaped("task-42 é ✓").to_string(), "task-42 é ✓");
        assert_eq!(
            Escaped("a\nb\r\tc\x1b[31md\u{7f}\u{9b}e\u{2028}").to_string(),
            r"a\nb\r\tc\u{1b}[31md\u{7f}\u{9b}e\u{2028}"
        );
        assert_eq!(format!("{:?}", Escaped("x\ny")), r"x\ny");
        for text in [
            "task-42",
            "task-42 é ✓",
            "a\nb\r\tc\x1b[31md\u{7f}\u{9b}e\u{2028}",
        ] {
            assert_eq!(EscapedText(text).to_string(), Escaped(text).to_string());
        }
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_wanted(true, None));
        assert!(colour_wanted(true, Some(OsStr::new(""))));
        assert!(!colour_wanted(true, Some(OsStr::new("1"))));
        assert!(!colour_wanted(false, None));
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// Every kind of field, in spans and events, written by `fields` without colour.
    fn every_kind_of_field<N>(fields: N) -> String
    where
        N: for<'w> FormatFields<'w> + Send + Sync + 'static,
    {
        #[derive(Debug)]
        struct Inner;
        impl fmt::Display for Inner {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the cause")
            }
        }
        impl std::error::Error for Inner {}
        #[derive(Debug)]
        struct Outer(Inner);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("it failed")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("trace")
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .fmt_fields(fields)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::error_span!(
                "task",
                task_id = %EscapedText("7f3a-9"),
                action = %EscapedText("a\nb"),
                provider = "p",
                n = 3,
                r#type = "kind",
                later = tracing::field::Empty,
                long = %"long ".repeat(120),
                after_long = 1,
            );
            let _entered = span.enter();
            span.record("later", 42);
            let inner = tracing::info_span!("inner", ok = true, ratio = 0.5);
            let _inner = inner.enter();
            tracing::warn!(
                lane = 2,
                name = "quoted \"str\"",
                debug = ?vec![1, 2],
                display = %"shown",
                error = &Outer(Inner) as &(dyn std::error::Error + 'static),
                plain_error = &Inner as &(dyn std::error::Error + 'static),
                "message with {} and a\nnewline",
                "arguments"
            );
            tracing::info!("only a message");
            tracing::debug!(r#type = 1, flag = false);
            tracing::event!(tracing::Level::TRACE, message = "as a field", after = ?'c');
        });
        buffer.text()
    }

    #[test]
    fn plain_fields_write_what_default_fields_write_without_colour() {
        let default = every_kind_of_field(DefaultFields::new());
        assert_eq!(every_kind_of_field(TextFields), default);
        assert_eq!(every_kind_of_field(PlainFields), default);
        assert!(
            default.contains(
                "task{task_id=7f3a-9 action=a\\nb provider=\"p\" n=3 type=\"kind\" long=long long "
            ),
            "{default}"
        );
        assert!(
            default.contains("long  after_long=1 later=42}"),
            "{default}"
        );
        assert_eq!(default.lines().count(), 5, "{default}");
    }

    #[test]
    fn a_text_log_without_colour_has_no_escape_codes_and_one_line_per_event() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = text_subscriber("debug", move || writer.clone(), false);
        tracing::subscriber::with_default(subscriber, || {
            let hostile = "evil\nERROR forged line\x1b[31m";
            tracing::warn!(task_id = %Escaped(hostile), "result not taken: {}", Escaped(hostile));
        });
        let log = buffer.text();
        assert!(!log.contains('\x1b'), "{log:?}");
        assert_eq!(log.lines().count(), 1, "{log:?}");
        assert!(
            log.contains(r"task_id=evil\nERROR forged line\u{1b}[31m"),
            "{log:?}"
        );
    }

    fn settings(vars: &[(&str, &str)]) -> Result<LogSettings, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        LogSettings::from_lookup(|name| vars.get(name).cloned())
    }

    fn invalid_variable(result: Result<LogSettings, ConfigError>) -> (&'static str, String) {
        match result {
            Err(ConfigError::Invalid {
                variable, reason, ..
            }) => (variable, reason),
            other => panic!("expected an invalid value, got {other:?}"),
        }
    }

    #[test]
    fn log_format_is_text_or_json_and_nothing_else() {
        assert_eq!(settings(&[]).unwrap().format, LogFormat::Text);
        assert_eq!(
            settings(&[("LOG_FORMAT", "text")]).unwrap().format,
            LogFormat::Text
        );
        assert_eq!(
            settings(&[("LOG_FORMAT", " JSON ")]).unwrap().format,
            LogFormat::Json
        );
        assert_eq!(
            settings(&[("LOG_FORMAT", "")]).unwrap().format,
            LogFormat::Text
        );
        let (variable, reason) = invalid_variable(settings(&[("LOG_FORMAT", "jsno")]));
        assert_eq!(variable, "LOG_FORMAT");
        assert_eq!(reason, "give text or json");
    }

    #[test]
    fn the_traces_endpoint_wins_and_an_empty_one_is_unset() {
        assert_eq!(settings(&[]).unwrap().otlp_endpoint, None);
        assert_eq!(
            settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])
                .unwrap()
                .otlp_endpoint,
            None
        );
        assert_eq!(
            settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317")])
                .unwrap()
                .otlp_endpoint,
            Some(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317".to_owned()))
        );
        let both = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:4317"),
            ("OTEL_SERVICE_NAME", " billing "),
        ])
        .unwrap();
        assert_eq!(
            both.otlp_endpoint,
            Some((
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://t:4317".to_owned()
            ))
        );
        assert_eq!(both.service_name.as_deref(), Some("billing"));
    }

    #[cfg(not(feature = "otel"))]
    #[test]
    fn without_the_feature_an_endpoint_draws_a_warning_naming_it() {
        let warning = otel_feature_off("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        assert!(
            warning.starts_with("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set"),
            "{warning}"
        );
        assert!(warning.contains("`otel` feature"), "{warning}");
    }

    /// Text events in a span, through the layers `init_logging` stacks, standard output
    /// coloured: what reaches each writer.
    fn through_the_layers(format: LogFormat) -> (String, String) {
        let stdout = Buffer::default();
        let file = Buffer::default();
        let (out, to_file) = (stdout.clone(), file.clone());
        let subscriber = Registry::default().with(EnvFilter::new("info")).with(vec![
            output_layer(format, move || out.clone(), true),
            file_layer(format, move || to_file.clone()),
        ]);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::error_span!("task", task_id = "t-1", action = "echo");
            let _entered = span.enter();
            tracing::info!(rows = 3, "inside the action");
        });
        (stdout.text(), file.text())
    }

    #[test]
    fn the_file_gets_no_colour_even_when_standard_output_has_it() {
        let (stdout, file) = through_the_layers(LogFormat::Text);
        assert!(
            stdout.contains('\x1b'),
            "standard output is coloured: {stdout:?}"
        );
        assert!(!file.contains('\x1b'), "{file:?}");
        assert!(
            file.contains("task{task_id=\"t-1\" action=\"echo\"}: inside the action rows=3"),
            "{file:?}"
        );
    }

    #[test]
    fn the_file_follows_the_json_format() {
        let (stdout, file) = through_the_layers(LogFormat::Json);
        for log in [&stdout, &file] {
            assert_eq!(log.lines().count(), 1, "{log}");
            let line: serde_json::Value = serde_json::from_str(log.trim()).unwrap();
            assert_eq!(line["message"], "inside the action");
            assert_eq!(line["span"]["task_id"], "t-1");
            assert_eq!(line["span"]["name"], "task");
        }
    }
}
