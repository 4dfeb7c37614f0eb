//! How errors read on the command line: the library's settings by their flags.

use hourglass::Error;

/// The flag that sets library setting `name` (`valid_fraction` → `--valid-fraction`).
pub fn flag(name: &str) -> String {
    match name {
        "scaling" => "--scale".into(),
        "warmup_epochs" => "--warmup".into(),
        _ => format!("--{}", name.replace('_', "-")),
    }
}

/// One library error, its settings named by their flags.
fn describe(e: &Error) -> String {
    match e {
        Error::Setting { name, value, reason } => format!("invalid {} {value}: {reason}", flag(name)),
        Error::NoColumn {
            path,
            name,
            setting,
            columns,
        } => format!(
            "{}: {}: no column `{name}`; the columns are {columns}",
            path.display(),
            flag(setting)
        ),
        Error::Hinted { error, hint } => format!(
            "{} (hint: {})",
            describe(error),
            hint.with_setting(&flag(hint.setting()))
        ),
        other => other.to_string(),
    }
}

/// The error and its context, outermost first, as `{:#}` shows them, with flags for settings.
pub fn render(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| match c.downcast_ref::<Error>() {
            Some(h) => describe(h),
            None => c.to_string(),
        })
        .collect::<Vec<_>>()
        .join(": ")
}

/// Whether the error is a write to a closed pipe.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || matches!(c.downcast_ref::<Error>(), Some(Error::Io { cause, .. }) if cause.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
