//! Logging setup: human-readable or JSON lines, filtered by `log_level` or `RUST_LOG`.

use std::{fmt::Write as _, io::IsTerminal};

use tracing_subscriber::{
    field::MakeExt,
    fmt::{self, format::FormatFields, MakeWriter},
    util::SubscriberInitExt,
    EnvFilter,
};

use crate::config::{Config, LogFormat};

/// Installs the global subscriber once; later calls (tests) keep the first.
pub fn init(config: &Config) {
    let ansi = std::io::stdout().is_terminal();
    let _ = dispatch(config, std::io::stdout, ansi).try_init();
}

/// The subscriber that [`init`] installs, writing to `writer` (tests capture what a journey
/// logs); colours only for a terminal.
pub fn dispatch<W>(config: &Config, writer: W, ansi: bool) -> tracing::Dispatch
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log_level));
    let builder = fmt::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(writer);
    match config.log_format {
        // JSON strings escape what they hold.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .finish()
            .into(),
        LogFormat::Text => builder
            .with_ansi(ansi)
            .fmt_fields(escaped_fields())
            .finish()
            .into(),
    }
}

/// Text lines with every value's control characters escaped: a value that came with a
/// request (an `error` parameter, a header) can neither start a forged log line nor drive
/// the terminal of whoever reads the log.
fn escaped_fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    fmt::format::debug_fn(|writer, field, value| {
        let text = escape_controls(&format!("{value:?}"));
        match field.name() {
            "message" => write!(writer, "{text}"),
            name => write!(writer, "{name}={text}"),
        }
    })
    .delimited(" ")
}

/// `text` with each control character written as its Rust escape (`\n`, `\u{1b}`).
fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(
            escape_controls("x\nINFO forged\r\u{1b}[31m é"),
            "x\\nINFO forged\\r\\u{1b}[31m é"
        );
    }
}
