//! What the application sends and receives: whole messages and control
//! frames, owned ([`Message`]) or borrowed from a buffer ([`MessageRef`]).

use crate::frame::{CloseFrame, OpCode};

/// A message, or a control frame, received or to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (always valid UTF-8).
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping (payload of at most 125 bytes). Received pings are answered
    /// automatically.
    Ping(Vec<u8>),
    /// A pong (payload of at most 125 bytes).
    Pong(Vec<u8>),
    /// A close frame, with its code and reason if it had any.
    Close(Option<CloseFrame>),
}

impl Message {
    /// A text message.
    ///
    /// ```
    /// use rfc6455::Message;
    /// let m = Message::text("hi");
    /// assert!(m.is_text());
    /// assert_eq!(m.to_text(), Some("hi"));
    /// assert_eq!(m.into_data(), b"hi");
    /// ```
    pub fn text(text: impl Into<String>) -> Message {
        Message::Text(text.into())
    }

    /// A binary message.
    ///
    /// ```
    /// use rfc6455::Message;
    /// let m = Message::binary([1, 2, 3]);
    /// assert!(m.is_binary());
    /// assert_eq!(m.clone().into_text(), None);
    /// assert_eq!(m.into_data(), [1, 2, 3]);
    /// ```
    pub fn binary(data: impl Into<Vec<u8>>) -> Message {
        Message::Binary(data.into())
    }

    /// Whether this is a text message.
    pub fn is_text(&self) -> bool {
        matches!(self, Message::Text(_))
    }

    /// Whether this is a binary message.
    pub fn is_binary(&self) -> bool {
        matches!(self, Message::Binary(_))
    }

    /// Whether this is a ping.
    pub fn is_ping(&self) -> bool {
        matches!(self, Message::Ping(_))
    }

    /// Whether this is a pong.
    pub fn is_pong(&self) -> bool {
        matches!(self, Message::Pong(_))
    }

    /// Whether this is a close frame.
    pub fn is_close(&self) -> bool {
        matches!(self, Message::Close(_))
    }

    /// The text of a text message; `None` for anything else (a binary
    /// message is not assumed to be UTF-8).
    pub fn into_text(self) -> Option<String> {
        match self {
            Message::Text(text) => Some(text),
            _ => None,
        }
    }

    /// The text of a text message, borrowed; `None` for anything else.
    pub fn to_text(&self) -> Option<&str> {
        match self {
            Message::Text(text) => Some(text),
            _ => None,
        }
    }

    /// The payload bytes: a text message's UTF-8, a binary message's or a
    /// ping's or pong's bytes, a close frame's reason.
    pub fn into_data(self) -> Vec<u8> {
        match self {
            Message::Text(text) => text.into_bytes(),
            Message::Binary(d) | Message::Ping(d) | Message::Pong(d) => d,
            Message::Close(c) => c.map_or_else(Vec::new, |c| c.reason.into_bytes()),
        }
    }

    /// The opcode of the frame (or, for a data message, of its first frame)
    /// that carries this message: the one place that maps messages to opcodes.
    ///
    /// ```
    /// use rfc6455::{frame::OpCode, Message};
    /// assert_eq!(Message::Text("hi".into()).opcode(), OpCode::Text);
    /// assert_eq!(Message::Close(None).opcode(), OpCode::Close);
    /// ```
    pub fn opcode(&self) -> OpCode {
        MessageRef::from(self).opcode()
    }

    /// Whether this is a text or binary message (not a control frame).
    pub fn is_data(&self) -> bool {
        matches!(self, Message::Text(_) | Message::Binary(_))
    }

    /// The payload length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Message::Text(t) => t.len(),
            Message::Binary(d) | Message::Ping(d) | Message::Pong(d) => d.len(),
            Message::Close(c) => c.as_ref().map_or(0, |c| 2 + c.reason.len()),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload as bytes (for a close frame, its reason).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(d) | Message::Ping(d) | Message::Pong(d) => d,
            Message::Close(c) => c.as_ref().map_or(&[], |c| c.reason.as_bytes()),
        }
    }
}

/// A message or control frame borrowed from the buffer it was decoded in,
/// returned by [`Connection::receive_in_place`](super::Connection::receive_in_place)
/// and [`WebSocket::read_ref`](crate::WebSocket::read_ref): no allocation, no copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageRef<'a> {
    /// A text message (always valid UTF-8).
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
    /// A ping (answered automatically).
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// A close frame, with its code and reason if it had any.
    Close(Option<CloseFrame>),
}

impl MessageRef<'_> {
    /// An owned copy.
    pub fn to_message(&self) -> Message {
        match self {
            MessageRef::Text(t) => Message::Text((*t).to_owned()),
            MessageRef::Binary(d) => Message::Binary(d.to_vec()),
            MessageRef::Ping(d) => Message::Ping(d.to_vec()),
            MessageRef::Pong(d) => Message::Pong(d.to_vec()),
            MessageRef::Close(c) => Message::Close(c.clone()),
        }
    }

    /// The opcode that carries this message (see [`Message::opcode`]).
    pub fn opcode(&self) -> OpCode {
        match self {
            MessageRef::Text(_) => OpCode::Text,
            MessageRef::Binary(_) => OpCode::Binary,
            MessageRef::Ping(_) => OpCode::Ping,
            MessageRef::Pong(_) => OpCode::Pong,
            MessageRef::Close(_) => OpCode::Close,
        }
    }

    /// Whether this is a text or binary message (not a control frame).
    pub fn is_data(&self) -> bool {
        matches!(self, MessageRef::Text(_) | MessageRef::Binary(_))
    }

    /// The payload bytes of a data message, ping or pong; `None` for a close
    /// frame (its payload is a code and a reason: see [`MessageRef::Close`]).
    pub fn payload(&self) -> Option<&[u8]> {
        match self {
            MessageRef::Text(t) => Some(t.as_bytes()),
            MessageRef::Binary(d) | MessageRef::Ping(d) | MessageRef::Pong(d) => Some(d),
            MessageRef::Close(_) => None,
        }
    }
}

impl<'a> From<&'a Message> for MessageRef<'a> {
    fn from(message: &'a Message) -> MessageRef<'a> {
        match message {
            Message::Text(t) => MessageRef::Text(t),
            Message::Binary(d) => MessageRef::Binary(d),
            Message::Ping(d) => MessageRef::Ping(d),
            Message::Pong(d) => MessageRef::Pong(d),
            Message::Close(c) => MessageRef::Close(c.clone()),
        }
    }
}

impl From<String> for Message {
    fn from(text: String) -> Message {
        Message::Text(text)
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Message {
        Message::Text(text.to_owned())
    }
}

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Message {
        Message::Binary(data)
    }
}

impl From<&[u8]> for Message {
    fn from(data: &[u8]) -> Message {
        Message::Binary(data.to_vec())
    }
}
