//! Logging: `tracing` with a filter from `RUST_LOG` (default `info`) and `LOG_FORMAT=json` for
//! one JSON object a line. Text logs go to standard output, coloured only when it is a terminal
//! and `NO_COLOR` is unset; strings that come from the hub are logged through [`Escaped`].

use std::fmt::{self, Write as _};
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{DefaultFields, Format, Full};
use tracing_subscriber::fmt::time::SystemTime;
use tracing_subscriber::fmt::{MakeWriter, SubscriberBuilder};

/// Installs the global subscriber unless one is already installed (then does nothing).
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let _already_installed = if json {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(false)
            .with_ansi(false)
            .json()
            .flatten_event(true)
            .try_init()
    } else {
        let colour = colour_wanted(
            std::io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        );
        text_builder(filter, std::io::stdout, colour).try_init()
    };
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
) -> SubscriberBuilder<DefaultFields, Format<Full, SystemTime>, EnvFilter, W>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(colour)
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

struct EscapingWriter<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl fmt::Write for EscapingWriter<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
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

    #[test]
    fn a_text_log_without_colour_has_no_escape_codes_and_one_line_per_event() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = text_subscriber("debug", move || writer.clone(), false);
        tracing::subscriber::with_default(subscriber, || {
            let hostile = "evil\nERROR forged line\x1b[31m";
            tracing::warn!(task_id = %Escaped(hostile), "result not taken: {}", Escaped(hostile));
        });
        let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert!(!log.contains('\x1b'), "{log:?}");
        assert_eq!(log.lines().count(), 1, "{log:?}");
        assert!(
            log.contains(r"task_id=evil\nERROR forged line\u{1b}[31m"),
            "{log:?}"
        );
    }
}
