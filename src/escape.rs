//! Text from a peer, made safe to print in a log line or on a terminal.
//!
//! A close reason, a header value, an HTTP body or a text message is chosen
//! by the peer. Printed raw, it can end a log line and forge the next one
//! (`\n`), clear the screen or retitle the window (an escape sequence:
//! `ESC [2J`, `ESC ]0;…BEL`), or reorder what a reader sees with a bidi
//! override (U+202E makes `evil\u{202E}txt.exe` read as `evilexe.txt`, the
//! "Trojan Source" trick). [`for_display`] writes such characters as visible
//! escapes instead; everything else, including any other non-ASCII text,
//! goes through unchanged.
//!
//! ```
//! use rfc6455::escape;
//!
//! let reason = "bye\n2026-12-07 wsecho: forged line \u{1b}[2J\u{202e}";
//! assert_eq!(
//!     escape::for_display(reason).to_string(),
//!     r"bye\n2026-12-07 wsecho: forged line \u{1b}[2J\u{202e}"
//! );
//! assert_eq!(escape::for_display("ünïcödé ✓").to_string(), "ünïcödé ✓");
//! ```
//!
//! The output is for people, not for parsing back: a backslash in the input
//! is left as it is (doubling it would garble every JSON message on a
//! screen), so the six characters `\u{1b}` in the output may also have been
//! typed. What matters is that nothing in it acts on the terminal or the log.

use std::fmt;

/// Whether `c` is escaped by [`for_display`]:
///
/// - C0 controls (U+0000–U+001F: newline, carriage return, tab, escape,
///   backspace, bell…), DEL (U+007F) and C1 controls (U+0080–U+009F, among
///   them CSI U+009B, which some terminals take as `ESC [`);
/// - the bidi controls (Unicode's `Bidi_Control` property): U+061C, U+200E,
///   U+200F, U+202A–U+202E (embeddings and overrides), U+2066–U+2069
///   (isolates);
/// - U+2028 and U+2029, line and paragraph separators, which log viewers and
///   editors take as line breaks.
///
/// ```
/// use rfc6455::escape::is_escaped;
/// assert!(is_escaped('\n') && is_escaped('\u{1b}') && is_escaped('\u{202e}'));
/// assert!(!is_escaped('a') && !is_escaped('é') && !is_escaped('\u{200d}')); // ZWJ joins emoji
/// ```
pub fn is_escaped(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

/// `text`, displayed with every character [`is_escaped`] names written as
/// an escape: `\n`, `\r` and `\t` for those three, `\u{…}` (the hexadecimal
/// code point, as in Rust) for the others. Allocates nothing: it is a
/// [`Display`](fmt::Display) wrapper, for `format!`, `eprintln!` and log
/// macros alike.
///
/// ```
/// use rfc6455::escape::for_display;
/// let peer = "10.0.0.1\r\n\u{9b}31m";
/// assert_eq!(format!("client {}", for_display(peer)), r"client 10.0.0.1\r\n\u{9b}31m");
/// ```
pub fn for_display(text: &str) -> Escaped<'_> {
    Escaped(text)
}

/// The [`Display`](fmt::Display) wrapper [`for_display`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        // Runs of safe characters are written in one piece.
        while let Some(at) = rest.find(is_escaped) {
            f.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c => write!(f, "\\u{{{:x}}}", u32::from(c))?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &str) -> String {
        for_display(text).to_string()
    }

    #[test]
    fn every_c0_c1_and_del_is_escaped() {
        for c in (0u32..0x20).chain(0x7f..0xa0).filter_map(char::from_u32) {
            let out = shown(&format!("a{c}b"));
            assert!(out.starts_with("a\\") && out.ends_with('b'), "{c:?}: {out}");
            assert!(!out.chars().any(is_escaped), "{c:?}: {out:?}");
        }
        assert_eq!(
            shown("\u{0}\u{1b}\u{7f}\u{85}\u{9b}"),
            r"\u{0}\u{1b}\u{7f}\u{85}\u{9b}"
        );
    }

    #[test]
    fn bidi_controls_and_line_separators_are_escaped() {
        let bidi = [
            0x61c, 0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068,
            0x2069, 0x2028, 0x2029,
        ];
        for c in bidi.into_iter().filter_map(char::from_u32) {
            assert_eq!(shown(&c.to_string()), format!("\\u{{{:x}}}", u32::from(c)));
        }
    }

    #[test]
    fn a_forged_log_line_stays_on_one_line() {
        let out = shown("ok\r\nwsecho: 10.0.0.9: 0.001s, 0 messages, close 1000");
        assert_eq!(out.lines().count(), 1);
        assert_eq!(
            out,
            r"ok\r\nwsecho: 10.0.0.9: 0.001s, 0 messages, close 1000"
        );
    }

    #[test]
    fn printable_text_is_unchanged() {
        for text in [
            "",
            "plain ASCII ~!@#$%^&*()",
            r#"{"json": "with \"escapes\" \\ and \n as text"}"#,
            "ünïcödé κόσμε 日本語 👩‍👩‍👧 \u{a0}\u{ad}",
            "\u{202f}\u{2060}\u{fffd}",
        ] {
            assert_eq!(shown(text), text);
        }
    }

    #[test]
    fn named_escapes_for_newline_return_and_tab() {
        assert_eq!(shown("a\nb\rc\td"), r"a\nb\rc\td");
    }
}
