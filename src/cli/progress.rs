//! Progress bars of the bulk commands: drawn on standard error when it is a terminal, and
//! nothing at all otherwise, so that logs, pipes and cron mails get only the result lines.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of `len` steps labelled `what`. indicatif redraws at most 20 times a second, so
/// counting every step costs next to nothing.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    // The template is a constant; the fallback only keeps a typo from becoming a panic.
    let style = ProgressStyle::with_template(
        "{msg:<10} [{bar:40}] {human_pos}/{human_len} {per_sec:>12} {eta:>4} left",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what.to_owned());
    bar
}

/// Starts the bar again for the next stage of the same work.
pub fn stage(bar: &ProgressBar, len: u64, what: &str) {
    bar.set_length(len);
    bar.set_position(0);
    bar.set_message(what.to_owned());
    bar.reset_eta();
}
