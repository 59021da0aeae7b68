//! Progress display on standard error; indicatif draws nothing when it is not a terminal.

use std::time::Duration;

/// A spinner with a message, ticking on its own.
pub fn spinner(msg: &str) -> indicatif::ProgressBar {
    let s = indicatif::ProgressBar::new_spinner();
    s.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    s.set_message(msg.to_string());
    s.enable_steady_tick(Duration::from_millis(120));
    s
}
