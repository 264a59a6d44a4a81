//! The pub/sub frame: one binary-safe message on a channel, for rooms
//! without history and broadcasts to everyone.
//!
//! A magic byte, a version, the kind (text or binary), the sending
//! process's random instance id and a per-channel sequence number, then the
//! payload byte for byte.

use crate::Message;

/// First byte of every frame, so that stray publishes are told apart.
const MAGIC: u8 = 0xb5;
/// Frame layout version.
const VERSION: u8 = 1;
const KIND_TEXT: u8 = 1;
const KIND_BINARY: u8 = 2;
/// magic, version, kind, instance id (8), sequence number (8).
const HEADER_LEN: usize = 19;

pub(super) fn encode(instance: u64, seq: u64, message: &Message) -> Option<Vec<u8>> {
    let (kind, payload) = match message {
        Message::Text(text) => (KIND_TEXT, text.as_bytes()),
        Message::Binary(data) => (KIND_BINARY, &data[..]),
        _ => return None,
    };
    let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
    frame.extend_from_slice(&[MAGIC, VERSION, kind]);
    frame.extend_from_slice(&instance.to_be_bytes());
    frame.extend_from_slice(&seq.to_be_bytes());
    frame.extend_from_slice(payload);
    Some(frame)
}

/// A decoded frame: sender, sequence number, message.
#[derive(Debug, PartialEq)]
pub(super) struct Frame {
    pub(super) instance: u64,
    pub(super) seq: u64,
    pub(super) message: Message,
}

pub(super) fn decode(frame: &[u8]) -> Option<Frame> {
    let header = frame.get(..HEADER_LEN)?;
    if header[0] != MAGIC || header[1] != VERSION {
        return None;
    }
    let instance = u64::from_be_bytes(header[3..11].try_into().ok()?);
    let seq = u64::from_be_bytes(header[11..19].try_into().ok()?);
    let payload = &frame[HEADER_LEN..];
    let message = match header[2] {
        KIND_TEXT => Message::Text(String::from_utf8(payload.to_vec()).ok()?),
        KIND_BINARY => Message::Binary(payload.to_vec()),
        _ => return None,
    };
    Some(Frame {
        instance,
        seq,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_text_and_binary_byte_for_byte() {
        let binary: Vec<u8> = (0..=255u8).chain([0, 0xff, b'\r', b'\n']).collect();
        for message in [
            Message::Text(String::new()),
            Message::Text("héllo \u{1f600}\0".into()),
            Message::Binary(Vec::new()),
            Message::Binary(binary),
        ] {
            let frame = encode(0x0123_4567_89ab_cdef, 42, &message).unwrap();
            let expected = Frame {
                instance: 0x0123_4567_89ab_cdef,
                seq: 42,
                message,
            };
            assert_eq!(decode(&frame), Some(expected));
        }
    }

    #[test]
    fn control_messages_are_not_framed() {
        assert_eq!(encode(1, 1, &Message::Ping(vec![1])), None);
    }

    #[test]
    fn malformed_frames_are_refused() {
        let good = encode(7, 1, &Message::Text("ok".into())).unwrap();
        assert!(decode(&good).is_some());
        assert_eq!(decode(&good[..HEADER_LEN - 1]), None, "short header");
        let mut bad = good.clone();
        bad[0] = b'x';
        assert_eq!(decode(&bad), None, "wrong magic");
        let mut bad = good.clone();
        bad[1] = 9;
        assert_eq!(decode(&bad), None, "unknown version");
        let mut bad = good.clone();
        bad[2] = 3;
        assert_eq!(decode(&bad), None, "unknown kind");
        let mut bad = good;
        bad.push(0xff);
        assert_eq!(decode(&bad), None, "text that is not UTF-8");
    }
}
