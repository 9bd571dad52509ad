//! `LOG_FILE`, `LOG_ROTATION` and `LOG_MAX_FILES`: where the file is, how it rotates, how many
//! rotated files are kept; and the writer that fills it.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_appender::rolling::RollingFileAppender;

use super::env;
use crate::config::ConfigError;

/// When the log file is closed and a new one started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Rotation {
    /// One file, exactly `LOG_FILE`, for logrotate or the service manager to rotate.
    #[default]
    Never,
    /// A file a day (UTC), named `LOG_FILE.YYYY-MM-DD`.
    Daily,
    /// A file an hour (UTC), named `LOG_FILE.YYYY-MM-DD-HH`.
    Hourly,
}

impl Rotation {
    fn parse(value: &str) -> Result<Self, ConfigError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "never" => Ok(Self::Never),
            "daily" => Ok(Self::Daily),
            "hourly" => Ok(Self::Hourly),
            _ => Err(ConfigError::Invalid {
                variable: env::LOG_ROTATION,
                value: value.to_owned(),
                reason: "give never, daily or hourly".into(),
            }),
        }
    }

    fn appender(self) -> tracing_appender::rolling::Rotation {
        match self {
            Self::Never => tracing_appender::rolling::Rotation::NEVER,
            Self::Daily => tracing_appender::rolling::Rotation::DAILY,
            Self::Hourly => tracing_appender::rolling::Rotation::HOURLY,
        }
    }
}

/// The log file asked for: checked, not yet opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct LogFile {
    /// `LOG_FILE` as given, for errors.
    path: String,
    directory: PathBuf,
    /// The file's name; with rotation, the start of each dated file's name.
    name: String,
    rotation: Rotation,
    max_files: Option<NonZeroUsize>,
}

impl LogFile {
    /// Reads the three variables; `None` when `LOG_FILE` is unset or empty. The rotation
    /// variables are checked even then, so a mistake in them is not hidden until the file is
    /// turned on.
    pub(super) fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ConfigError> {
        let rotation = match lookup(env::LOG_ROTATION) {
            Some(value) if !value.trim().is_empty() => Rotation::parse(&value)?,
            _ => Rotation::Never,
        };
        let max_files = match lookup(env::LOG_MAX_FILES) {
            Some(value) if !value.trim().is_empty() => Some(parse_max_files(&value)?),
            _ => None,
        };
        let Some(path) = lookup(env::LOG_FILE).filter(|v| !v.trim().is_empty()) else {
            return Ok(None);
        };
        if let (Some(max), Rotation::Never) = (max_files, rotation) {
            return Err(ConfigError::Invalid {
                variable: env::LOG_MAX_FILES,
                value: max.to_string(),
                reason:
                    "it keeps rotated files, and LOG_ROTATION is never: set LOG_ROTATION=daily \
                         or hourly, or unset LOG_MAX_FILES"
                        .into(),
            });
        }
        let invalid = |reason: &str| ConfigError::Invalid {
            variable: env::LOG_FILE,
            value: path.clone(),
            reason: reason.to_owned(),
        };
        let as_path = Path::new(&path);
        if path.ends_with(std::path::MAIN_SEPARATOR) || path.ends_with('/') {
            return Err(invalid(
                "it names a directory; give a file, e.g. /var/log/provider/provider.log",
            ));
        }
        let name = as_path
            .file_name()
            .ok_or_else(|| {
                invalid("it names no file; give a file, e.g. /var/log/provider/provider.log")
            })?
            .to_str()
            .expect("the path came from a String")
            .to_owned();
        let directory = match as_path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        };
        Ok(Some(Self {
            path,
            directory,
            name,
            rotation,
            max_files,
        }))
    }

    /// Creates the directory and opens (or creates) the file, to be appended to; the writer
    /// hands lines to a thread of its own, so a slow disk does not hold up tasks. The guard
    /// flushes what is queued when dropped.
    pub(super) fn open(&self) -> Result<(NonBlocking, WorkerGuard), ConfigError> {
        let failed = |what: &str, error: &dyn std::fmt::Display| ConfigError::Invalid {
            variable: env::LOG_FILE,
            value: self.path.clone(),
            reason: format!("{what}: {error}"),
        };
        std::fs::create_dir_all(&self.directory)
            .map_err(|e| failed("its directory cannot be created", &e))?;
        let mut builder = RollingFileAppender::builder()
            .rotation(self.rotation.appender())
            .filename_prefix(self.name.clone());
        if let Some(max) = self.max_files {
            builder = builder.max_log_files(max.get());
        }
        let appender = builder
            .build(&self.directory)
            .map_err(|e| failed("it cannot be opened", &e))?;
        // Not lossy: a burst fills the queue (128k lines) and then waits for the disk, rather
        // than losing lines without a trace.
        Ok(NonBlockingBuilder::default()
            .lossy(false)
            .thread_name("arbv-log-file")
            .finish(appender))
    }
}

fn parse_max_files(value: &str) -> Result<NonZeroUsize, ConfigError> {
    value
        .trim()
        .parse::<NonZeroUsize>()
        .map_err(|_| ConfigError::Invalid {
            variable: env::LOG_MAX_FILES,
            value: value.to_owned(),
            reason: "give a whole number of files, 1 or more (unset, every rotated file is kept)"
                .into(),
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn log_file(vars: &[(&str, &str)]) -> Result<Option<LogFile>, ConfigError> {
        let vars: HashMap<&str, &str> = vars.iter().copied().collect();
        LogFile::from_lookup(|name| vars.get(name).map(|v| (*v).to_owned()))
    }

    fn refused(vars: &[(&str, &str)]) -> (&'static str, String, String) {
        match log_file(vars) {
            Err(ConfigError::Invalid {
                variable,
                value,
                reason,
            }) => (variable, value, reason),
            other => panic!("{vars:?}: expected an invalid value, got {other:?}"),
        }
    }

    #[test]
    fn no_file_unless_log_file_names_one() {
        assert_eq!(log_file(&[]).unwrap(), None);
        assert_eq!(log_file(&[("LOG_FILE", "  ")]).unwrap(), None);
    }

    #[test]
    fn a_file_without_rotation_is_exactly_log_file() {
        let file = log_file(&[("LOG_FILE", "/var/log/p/provider.log")])
            .unwrap()
            .unwrap();
        assert_eq!(
            file,
            LogFile {
                path: "/var/log/p/provider.log".into(),
                directory: "/var/log/p".into(),
                name: "provider.log".into(),
                rotation: Rotation::Never,
                max_files: None,
            }
        );
        let here = log_file(&[("LOG_FILE", "provider.log")]).unwrap().unwrap();
        assert_eq!(here.directory, PathBuf::from("."));
        assert_eq!(here.name, "provider.log");
    }

    #[test]
    fn rotation_and_the_files_kept() {
        let file = log_file(&[
            ("LOG_FILE", "logs/provider.log"),
            ("LOG_ROTATION", " Hourly "),
            ("LOG_MAX_FILES", "24"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(file.rotation, Rotation::Hourly);
        assert_eq!(file.max_files, NonZeroUsize::new(24));
        let daily = log_file(&[("LOG_FILE", "p.log"), ("LOG_ROTATION", "daily")])
            .unwrap()
            .unwrap();
        assert_eq!((daily.rotation, daily.max_files), (Rotation::Daily, None));
        let never = log_file(&[("LOG_FILE", "p.log"), ("LOG_ROTATION", "NEVER")])
            .unwrap()
            .unwrap();
        assert_eq!(never.rotation, Rotation::Never);
    }

    #[test]
    fn an_unknown_rotation_is_refused_naming_the_variable() {
        for vars in [
            &[("LOG_FILE", "p.log"), ("LOG_ROTATION", "weekly")][..],
            // Checked even while no file is asked for.
            &[("LOG_ROTATION", "daly")][..],
        ] {
            let (variable, _, reason) = refused(vars);
            assert_eq!(variable, "LOG_ROTATION");
            assert_eq!(reason, "give never, daily or hourly");
        }
    }

    #[test]
    fn max_files_is_a_whole_number_from_one() {
        for bad in ["0", "-1", "3.5", "many"] {
            let (variable, value, reason) = refused(&[
                ("LOG_FILE", "p.log"),
                ("LOG_ROTATION", "daily"),
                ("LOG_MAX_FILES", bad),
            ]);
            assert_eq!((variable, value.as_str()), ("LOG_MAX_FILES", bad));
            assert!(reason.contains("1 or more"), "{reason}");
        }
    }

    #[test]
    fn max_files_without_rotation_is_refused_rather_than_ignored() {
        let (variable, _, reason) = refused(&[("LOG_FILE", "p.log"), ("LOG_MAX_FILES", "7")]);
        assert_eq!(variable, "LOG_MAX_FILES");
        assert!(reason.contains("LOG_ROTATION is never"), "{reason}");
    }

    #[test]
    fn a_directory_is_not_a_log_file() {
        for path in ["/var/log/", "logs/", "/", ".."] {
            let (variable, value, reason) = refused(&[("LOG_FILE", path)]);
            assert_eq!((variable, value.as_str()), ("LOG_FILE", path));
            assert!(reason.contains("give a file"), "{path}: {reason}");
        }
    }

    #[test]
    fn a_directory_that_cannot_be_created_is_an_error_naming_log_file() {
        let base = std::env::temp_dir().join(format!("arbv-log-file-test-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        let blocker = base.join("a-file");
        std::fs::write(&blocker, b"").unwrap();
        let path = blocker.join("logs").join("provider.log");
        let file = log_file(&[("LOG_FILE", path.to_str().unwrap())])
            .unwrap()
            .unwrap();
        let error = file.open().unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with("LOG_FILE="), "{text}");
        assert!(text.contains("its directory cannot be created"), "{text}");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
