//! Standard input, a line at a time, into what to send.

use crate::session::Event;
use rfc6455::Message;
use std::io::{self, BufRead};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// Lines read but not yet handled, at most: past it, reading waits. With
/// the client's own bounded queue behind it, memory stays bounded however
/// fast input comes and however long the server is away, and no line is
/// dropped (`cat big.txt | wsclient` waits for the connection instead).
const IN_FLIGHT: usize = 64;

/// Credits between the reading thread and the session: one per line.
#[derive(Default)]
pub struct Gate {
    lines: Mutex<usize>,
    handled: Condvar,
}

impl Gate {
    /// Called by the reader before it hands over a line.
    fn acquire(&self) {
        let lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        let mut lines = self
            .handled
            .wait_while(lines, |n| *n >= IN_FLIGHT)
            .unwrap_or_else(PoisonError::into_inner);
        *lines += 1;
    }

    /// Called by the session once it has handled a line.
    pub fn release(&self) {
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        *lines = lines.saturating_sub(1);
        self.handled.notify_one();
    }
}

/// What a line of input asks for.
pub enum Input {
    /// Send this message (text, binary, or with `--slash` a ping or pong).
    Send(Message),
    /// `/close [CODE [REASON]]`: close the connection and end.
    Close(u16, String),
}

/// How lines become messages.
#[derive(Clone, Copy)]
pub struct Mode {
    /// Every line as a binary message (`--binary`).
    pub binary: bool,
    /// Lines starting with `/` are commands (`--slash`).
    pub slash: bool,
}

/// Reads standard input on a thread of its own, sending an event per line
/// and one at its end.
pub fn spawn_reader(events: Sender<Event>, mode: Mode, gate: Arc<Gate>) {
    std::thread::spawn(move || {
        let stdin = io::stdin();
        let mut stdin = stdin.lock();
        let mut buf = Vec::new();
        let mut number = 0u64;
        let failed = loop {
            buf.clear();
            match stdin.read_until(b'\n', &mut buf) {
                Ok(0) => break false,
                Ok(_) => {
                    number += 1;
                    if let Some(input) = line(number, std::mem::take(&mut buf), mode) {
                        gate.acquire();
                        if events.send(Event::Input(input)).is_err() {
                            return;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    eprintln!("wsclient: cannot read standard input after line {number}: {e}");
                    break true;
                }
            }
        };
        let _ = events.send(Event::InputEnd { failed });
    });
}

/// Line `number` (its bytes, with the line break) as input. `None` for a
/// command that is not one, said on stderr.
fn line(number: u64, mut bytes: Vec<u8>, mode: Mode) -> Option<Input> {
    // As `BufRead::lines`: the line ends before "\n" or "\r\n".
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    if mode.binary {
        return Some(Input::Send(Message::Binary(bytes)));
    }
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            // Nothing typed may vanish: it goes out, as what it is.
            let bytes = e.into_bytes();
            eprintln!(
                "wsclient: line {number} is not UTF-8: sent as a binary message ({} bytes)",
                bytes.len()
            );
            return Some(Input::Send(Message::Binary(bytes)));
        }
    };
    if mode.slash {
        if let Some(command) = text.strip_prefix('/') {
            return match parse_command(command) {
                Ok(input) => Some(input),
                Err(why) => {
                    eprintln!("wsclient: line {number}: {why}; not sent");
                    None
                }
            };
        }
    }
    Some(Input::Send(Message::Text(text)))
}

/// A `--slash` command, after its `/`.
fn parse_command(command: &str) -> Result<Input, String> {
    if command.starts_with('/') {
        // `//text` sends `/text`.
        return Ok(Input::Send(Message::Text(command.to_owned())));
    }
    let (name, rest) = command.split_once(' ').unwrap_or((command, ""));
    let payload = || rest.as_bytes().to_vec();
    match name {
        "ping" => Ok(Input::Send(Message::Ping(payload()))),
        "pong" => Ok(Input::Send(Message::Pong(payload()))),
        "close" => {
            let rest = rest.trim_start();
            let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
            let code = match code {
                "" => 1000,
                code => code
                    .parse()
                    .map_err(|_| format!("/close wants a close code, got {code:?}"))?,
            };
            Ok(Input::Close(code, reason.to_owned()))
        }
        other => Err(format!(
            "unknown command /{other} (commands: /ping [TEXT], /pong [TEXT], \
             /close [CODE [REASON]]; `//` starts a line with `/`)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: Mode = Mode {
        binary: false,
        slash: false,
    };
    const SLASH: Mode = Mode {
        binary: false,
        slash: true,
    };

    fn sent(input: Option<Input>) -> Message {
        match input {
            Some(Input::Send(message)) => message,
            _ => panic!("not a message"),
        }
    }

    #[test]
    fn line_breaks_are_not_part_of_the_message() {
        assert_eq!(sent(line(1, b"a\r\n".to_vec(), TEXT)), Message::text("a"));
        assert_eq!(sent(line(1, b"a\n".to_vec(), TEXT)), Message::text("a"));
        assert_eq!(sent(line(1, b"last".to_vec(), TEXT)), Message::text("last"));
    }

    #[test]
    fn a_line_that_is_not_utf8_goes_out_as_binary() {
        let got = sent(line(2, b"\xff\xfe\n".to_vec(), TEXT));
        assert_eq!(got, Message::Binary(vec![0xff, 0xfe]));
    }

    #[test]
    fn slash_commands() {
        assert_eq!(
            sent(line(1, b"/ping hi".to_vec(), SLASH)),
            Message::Ping(b"hi".to_vec())
        );
        assert_eq!(
            sent(line(1, b"/pong".to_vec(), SLASH)),
            Message::Pong(Vec::new())
        );
        assert_eq!(sent(line(1, b"//x".to_vec(), SLASH)), Message::text("/x"));
        assert_eq!(
            sent(line(1, b"/ping".to_vec(), TEXT)),
            Message::text("/ping")
        );
        match line(1, b"/close 4000 done here".to_vec(), SLASH) {
            Some(Input::Close(4000, reason)) => assert_eq!(reason, "done here"),
            _ => panic!("not a close"),
        }
        assert!(matches!(
            line(1, b"/close".to_vec(), SLASH),
            Some(Input::Close(1000, _))
        ));
        assert!(line(1, b"/close soon".to_vec(), SLASH).is_none());
        assert!(line(1, b"/nope".to_vec(), SLASH).is_none());
    }
}
