//! The chat's wire protocol with history (`--history`): JSON text
//! messages, documented in the README ("Recovery") and `docs/deploy.md`, so
//! that any client can speak it. Offsets and epochs are JSON strings,
//! opaque to clients: they only hand them back.
//!
//! Server to client:
//!
//! ```text
//! {"type":"joined","room":R,"epoch":E,"offset":O}              first, on a fresh join
//! {"type":"recovery","room":R,"recovered":B,"missed":K,"epoch":E,"offset":O}
//!                                                               first, on a join with since
//! {"type":"message","room":R,"offset":O,"epoch":E,"text":T}    a message of the room
//! {"type":"ack","id":ID,"room":R,"status":S[,"offset":O,"epoch":E][,"error":W]}
//!                                S is "accepted", "refused" or "unknown"
//! {"type":"broadcast","text":T}                                 to everyone, at most once
//! ```
//!
//! Client to server (anything else is plain text for the connection's room):
//!
//! ```text
//! {"type":"send","room":R,"text":T[,"id":ID]}     publish; with an id, an ack comes back
//! {"type":"join","room":R[,"since":O,"epoch":E]}  join another room (recovering from O)
//! {"type":"leave","room":R}
//! ```

use rfc6455::hub::{Entry, Envelope, Joined, Outcome, Since};
use rfc6455::Message;
use serde_json::{json, Value};

/// Members' messages of rooms with history, as JSON.
pub struct Json;

impl Envelope for Json {
    fn entry(&self, entry: &Entry) -> Message {
        let text = match &**entry.message() {
            Message::Text(text) => text.as_str(),
            // The chat only publishes text; say what else came.
            _ => "<binary message>",
        };
        let message = json!({
            "type": "message",
            "room": entry.room(),
            "offset": entry.offset().to_string(),
            "epoch": entry.epoch().as_str(),
            "text": text,
        });
        Message::Text(message.to_string())
    }

    fn joined(&self, room: &str, joined: &Joined) -> Option<Message> {
        let (epoch, offset) = (joined.epoch.as_str(), joined.offset.to_string());
        let report = match joined.recovery {
            None => json!({"type": "joined", "room": room, "epoch": epoch, "offset": offset}),
            Some(recovery) => json!({
                "type": "recovery",
                "room": room,
                "recovered": recovery.recovered,
                "missed": recovery.missed,
                "epoch": epoch,
                "offset": offset,
            }),
        };
        Some(Message::Text(report.to_string()))
    }
}

/// A broadcast to everyone (`/receive` without a room, `--tick`): at most
/// once, in no history.
pub fn broadcast(text: &str) -> String {
    json!({"type": "broadcast", "text": text}).to_string()
}

/// What a client asked for.
#[derive(Debug, PartialEq)]
pub enum Command {
    Send {
        room: String,
        text: String,
        id: Option<String>,
    },
    Join {
        room: String,
        since: Option<Since>,
    },
    Leave {
        room: String,
    },
    /// Plain text, for the connection's own room.
    Text(String),
}

/// Reads a client's text message: a command object, or plain text.
pub fn command(text: &str) -> Command {
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(text) else {
        return Command::Text(text.to_owned());
    };
    let field = |name: &str| object.get(name).and_then(Value::as_str).map(str::to_owned);
    let (Some(kind), Some(room)) = (field("type"), field("room")) else {
        return Command::Text(text.to_owned());
    };
    match kind.as_str() {
        "send" => match field("text") {
            Some(body) => Command::Send {
                room,
                text: body,
                id: field("id"),
            },
            None => Command::Text(text.to_owned()),
        },
        "join" => Command::Join {
            since: field("since").map(|o| Since::new(&field("epoch").unwrap_or_default(), &o)),
            room,
        },
        "leave" => Command::Leave { room },
        _ => Command::Text(text.to_owned()),
    }
}

/// The answer to a publish with an id.
pub fn ack(id: &str, room: &str, outcome: &Outcome) -> String {
    let mut ack = json!({"type": "ack", "id": id, "room": room, "status": status(outcome)});
    match outcome {
        Outcome::Accepted { offset, epoch, .. } => {
            ack["offset"] = offset.to_string().into();
            ack["epoch"] = epoch.as_str().into();
        }
        Outcome::Refused(why) => ack["error"] = why.to_string().into(),
        _ => {}
    }
    ack.to_string()
}

/// `accepted`, `refused` or `unknown` (a room without history: `sent`).
pub fn status(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Accepted { .. } => "accepted",
        Outcome::Refused(_) => "refused",
        Outcome::Unknown => "unknown",
        _ => "sent",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_read_and_anything_else_is_text() {
        assert_eq!(
            command(r#"{"type":"send","room":"r","text":"hi","id":"7"}"#),
            Command::Send {
                room: "r".into(),
                text: "hi".into(),
                id: Some("7".into())
            }
        );
        let join = command(r#"{"type":"join","room":"r","since":"5-2","epoch":"e"}"#);
        assert_eq!(
            join,
            Command::Join {
                room: "r".into(),
                since: Some(Since::new("e", "5-2"))
            }
        );
        for text in [
            "hello",
            "{",
            r#"{"type":"send"}"#,
            r#"["send"]"#,
            r#"{"type":"x","room":"r"}"#,
        ] {
            assert_eq!(command(text), Command::Text(text.into()), "{text}");
        }
    }
}
