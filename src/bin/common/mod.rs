//! What `wsclient` and `wsecho` share (each includes this as a module): how
//! they read duration flags and how they take SIGINT and SIGTERM.

use std::ops::RangeInclusive;
use std::time::Duration;

/// The longest duration most flags accept: a day is already far longer than
/// any timeout or interval anyone means, and the bound keeps every value
/// convertible to a `Duration` and to the socket timeouts made from it.
pub const DAY: f64 = 86_400.0;

/// Parses the value of a duration flag: decimal seconds, finite, within
/// `range`. Anything else (`nan`, `inf`, `-1`, `1e30`, `soon`) is an error
/// that names the flag, for a usage error (exit 2) rather than a panic in
/// `Duration::from_secs_f64` or a value silently clamped.
pub fn seconds(flag: &str, value: &str, range: RangeInclusive<f64>) -> Result<Duration, String> {
    let within = || format!("seconds from {} to {}", range.start(), range.end());
    let secs: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("{flag} wants {}, got {value:?}", within()))?;
    // `contains` is false for NaN, and infinities are outside any finite range.
    if !range.contains(&secs) {
        return Err(format!("{flag} wants {}, got {value:?}", within()));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Calls `first` with the signal number on the first SIGINT or SIGTERM, on
/// a thread of its own; a second one exits at once with 128 + its number
/// (130 for Ctrl-C), for a user who will not wait for a graceful close.
#[cfg(feature = "signals")]
pub fn on_signal(tool: &str, first: impl FnOnce(i32) + Send + 'static) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::iterator::Signals;
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{tool}: cannot install signal handlers: {e}");
            return;
        }
    };
    std::thread::spawn(move || {
        let mut forever = signals.forever();
        if let Some(signal) = forever.next() {
            first(signal);
        }
        if let Some(signal) = forever.next() {
            std::process::exit(128 + signal);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_decimal_seconds_in_range() {
        assert_eq!(
            seconds("--x", "0.5", 0.0..=DAY),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(seconds("--x", "0", 0.0..=DAY), Ok(Duration::ZERO));
        assert_eq!(
            seconds("--x", "86400", 0.0..=DAY),
            Ok(Duration::from_secs(86_400))
        );
    }

    #[test]
    fn rejects_what_is_not_a_duration_naming_the_flag() {
        for value in [
            "nan", "NaN", "inf", "-inf", "-1", "-0.001", "1e30", "86401", "", "soon",
        ] {
            let err = seconds("--ping-interval", value, 0.0..=DAY).unwrap_err();
            assert!(err.starts_with("--ping-interval "), "{value}: {err}");
        }
        assert!(seconds("--connect-timeout", "0", 0.001..=DAY).is_err());
    }
}
