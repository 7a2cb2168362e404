//! Whether what the CLI writes may carry ANSI colour codes: one rule for the
//! logs, clap's help and errors, and anything else that could be coloured.

use std::ffi::OsStr;
use std::io::IsTerminal;

/// The environment variable that turns colour off when set to anything but
/// the empty string (<https://no-color.org>).
pub const NO_COLOR: &str = "NO_COLOR";

/// Colour only on a terminal, and only when `NO_COLOR` is unset or empty:
/// codes in a pipe or a log file are noise to whoever reads it.
pub fn use_color(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// [`use_color`] for this process: its stderr and its environment.
pub fn stderr_color() -> bool {
    use_color(
        std::io::stderr().is_terminal(),
        std::env::var_os(NO_COLOR).as_deref(),
    )
}

/// clap's setting for the decision: never colour when it is no, and let clap
/// look at the stream it writes to when it is yes.
pub fn clap_choice(color: bool) -> clap::ColorChoice {
    if color {
        clap::ColorChoice::Auto
    } else {
        clap::ColorChoice::Never
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_color(true, None));
        assert!(use_color(true, Some(OsStr::new(""))), "empty means unset");
        assert!(!use_color(true, Some(OsStr::new("1"))));
        assert!(!use_color(true, Some(OsStr::new("0"))), "any value");
        assert!(!use_color(false, None), "not a terminal");
        assert!(!use_color(false, Some(OsStr::new(""))));
        assert!(!use_color(false, Some(OsStr::new("1"))));
    }

    #[test]
    fn clap_never_colours_when_the_rule_says_no() {
        assert_eq!(clap_choice(false), clap::ColorChoice::Never);
        assert_eq!(clap_choice(true), clap::ColorChoice::Auto);
    }
}
