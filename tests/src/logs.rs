//! What the code under test logged: a buffer that `tracing` subscribers write into, installed
//! for the whole test binary or for one thread.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use tracing::Level;
use tracing::subscriber::DefaultGuard;

/// Log text collected in memory, without colour.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The lines that hold every one of `parts`.
    pub fn lines_with(&self, parts: &[&str]) -> Vec<String> {
        self.text()
            .lines()
            .filter(|line| parts.iter().all(|part| line.contains(part)))
            .map(str::to_owned)
            .collect()
    }

    /// Collects the events of this thread at `level` and above while the guard lives: on a
    /// current-thread runtime, the logs of one test alone.
    pub fn capture_thread(&self, level: Level) -> DefaultGuard {
        tracing::subscriber::set_default(self.subscriber(level))
    }

    fn subscriber(&self, level: Level) -> impl tracing::Subscriber + Send + Sync + 'static {
        let writer = self.clone();
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish()
    }
}

/// The global subscriber of this test binary, installed by the first caller at `level` (a
/// binary has one; later calls share it whatever level they name).
pub fn global(level: Level) -> &'static LogBuffer {
    static GLOBAL: OnceLock<LogBuffer> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let buffer = LogBuffer::default();
        tracing::subscriber::set_global_default(buffer.subscriber(level))
            .expect("no other global subscriber in this test binary");
        buffer
    })
}
