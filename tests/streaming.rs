//! Messages larger than memory: streamed reads (`read_stream`,
//! `read_piece`, `Connection::receive_piece`) and streamed sends
//! (`send_stream`), over loopback and without sockets.
//!
//! The big test sends a generated message (never held in memory) and
//! compares a checksum at both ends: 96 MiB in a debug build (past the
//! default 64 MiB message limit), 4 GiB in a
//! release build (`cargo test --release --test streaming`, as CI runs it),
//! or `RFC6455_STREAM_BYTES`.

mod common;

use common::*;
use rfc6455::frame::{OpCode, Role};
use rfc6455::protocol::{Connection, MessageRef, Piece, SizeLimits, Streaming};
use rfc6455::{CloseCode, Error, Message, Server, ServerConfig};
use std::io::{self, Read};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// A message of `len` bytes made up as it is read: each 8-byte word is a
/// function of its offset, so no two fragments look alike.
struct Generated {
    len: u64,
    pos: u64,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.len - self.pos).min(buf.len() as u64) as usize;
        for (i, b) in buf[..n].iter_mut().enumerate() {
            let at = self.pos + i as u64;
            *b = (at.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8;
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// A running checksum (Fletcher-style over bytes, in u64s): position
/// dependent, so a reordered or dropped piece changes it.
#[derive(Default, Debug, PartialEq, Eq, Clone, Copy)]
struct Sum {
    a: u64,
    b: u64,
    len: u64,
}

impl Sum {
    fn add(&mut self, bytes: &[u8]) {
        for &x in bytes {
            self.a = self.a.wrapping_add(u64::from(x));
            self.b = self.b.wrapping_add(self.a);
        }
        self.len += bytes.len() as u64;
    }

    fn of(mut source: impl Read) -> io::Result<Sum> {
        let mut sum = Sum::default();
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = source.read(&mut buf)?;
            if n == 0 {
                return Ok(sum);
            }
            sum.add(&buf[..n]);
        }
    }
}

fn stream_bytes() -> u64 {
    std::env::var("RFC6455_STREAM_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) {
            96 << 20
        } else {
            4 << 30
        })
}

#[test]
fn a_message_larger_than_memory_streams_through_both_ways() {
    // The server reads the message as a stream and checksums it; the client
    // sends it from a generator. Neither holds it: the default 64 MiB
    // message limit would refuse it whole.
    let len = stream_bytes();
    let (tx, rx) = mpsc::channel();
    let server = Server::bind("127.0.0.1:0", test_config())
        .unwrap()
        .spawn(move |mut ws, _| {
            let mut message = ws.read_stream()?;
            let binary = message.opcode() == OpCode::Binary;
            let sum = Sum::of(&mut message).map_err(Error::Io)?;
            drop(message);
            tx.send((binary, sum)).unwrap();
            // Echo back as a stream too, generated the same way.
            ws.send_stream(OpCode::Binary, Generated { len, pos: 0 }, 1 << 20)?;
            loop {
                ws.read()?;
            }
        })
        .unwrap();
    let mut ws = client(server.local_addr());
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let sent = ws
        .send_stream(OpCode::Binary, Generated { len, pos: 0 }, 1 << 20)
        .unwrap();
    assert_eq!(sent, len);
    let expected = Sum::of(Generated { len, pos: 0 }).unwrap();
    let (binary, got) = rx.recv_timeout(Duration::from_secs(300)).unwrap();
    assert!(binary);
    assert_eq!(got, expected);
    let back = Sum::of(ws.read_stream().unwrap()).unwrap();
    assert_eq!(back, expected);
    close_normally(&mut ws);
}

#[test]
fn invalid_utf8_in_the_middle_of_a_streamed_text_message_fails_with_1007() {
    let server = Server::bind("127.0.0.1:0", test_config())
        .unwrap()
        .spawn(|mut ws, _| {
            let mut message = ws.read_stream()?;
            let mut sink = Vec::new();
            let err = message.read_to_end(&mut sink).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            // The valid start arrived before the bad byte.
            assert!(sink.len() >= 3 && sink.starts_with(b"abc"));
            Ok(())
        })
        .unwrap();
    let mut ws = client(server.local_addr());
    ws.send_frame(OpCode::Text, b"abc", false).unwrap();
    ws.send_frame(OpCode::Continuation, b"de\xFFf", false)
        .unwrap();
    match read_skipping_pings(&mut ws) {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::INVALID_PAYLOAD),
        other => panic!("expected close 1007, got {other:?}"),
    }
}

#[test]
fn a_ping_between_fragments_is_answered_while_a_stream_is_read() {
    let (tx, rx) = mpsc::channel::<()>();
    let server = Server::bind("127.0.0.1:0", test_config())
        .unwrap()
        .spawn(move |mut ws, _| {
            let message = ws.read_stream()?;
            let sum = Sum::of(message).map_err(Error::Io)?;
            assert_eq!(sum.len, 6);
            tx.send(()).unwrap();
            loop {
                ws.read()?;
            }
        })
        .unwrap();
    let mut ws = client(server.local_addr());
    ws.send_frame(OpCode::Binary, b"abc", false).unwrap();
    ws.send_frame(OpCode::Ping, b"are you there", true).unwrap();
    // The pong comes while the message is still open.
    assert_eq!(ws.read().unwrap(), Message::Pong(b"are you there".to_vec()));
    ws.send_frame(OpCode::Continuation, b"def", true).unwrap();
    rx.recv_timeout(Duration::from_secs(5)).unwrap();
    close_normally(&mut ws);
}

#[test]
fn a_reader_dropped_half_way_leaves_the_connection_usable() {
    let server = Server::bind("127.0.0.1:0", test_config())
        .unwrap()
        .spawn(|mut ws, _| {
            {
                let mut message = ws.read_stream()?;
                let mut first = [0u8; 10];
                message.read_exact(&mut first).map_err(Error::Io)?;
                // Dropped here, 10 bytes into a 1 MiB message.
            }
            let next = ws.read()?;
            ws.send(next)?;
            loop {
                ws.read()?;
            }
        })
        .unwrap();
    let mut ws = client(server.local_addr());
    ws.send(Message::Binary(vec![1; 1 << 20])).unwrap();
    ws.send(Message::Text("the next one".into())).unwrap();
    assert_eq!(
        read_skipping_pings(&mut ws),
        Message::Text("the next one".into())
    );
    close_normally(&mut ws);
}

#[test]
fn split_writer_streams_while_other_threads_ping_and_message_waits() {
    // A writer streaming a message shares the connection with another
    // thread's pings (which may go between fragments) and a data message
    // (which must wait for the stream to end).
    let server = echo_server_with(test_config().protocol(SizeLimits::default()));
    let (ws, _) = rfc6455::connect(&url(server.local_addr())).unwrap();
    let (mut reader, writer) = ws.split().unwrap();
    let other = writer.clone();
    let streamer = thread::spawn(move || {
        writer
            .send_stream(
                OpCode::Binary,
                Generated {
                    len: 8 << 20,
                    pos: 0,
                },
                4096,
            )
            .unwrap()
    });
    let pinger = thread::spawn(move || {
        for _ in 0..20 {
            other.send(Message::Ping(b"p".to_vec())).unwrap();
        }
        other.send(Message::Text("after".into())).unwrap();
    });
    let mut got = Vec::new();
    while got.len() < 2 {
        match reader.read().unwrap() {
            Message::Pong(_) => {}
            Message::Binary(data) => {
                let mut sum = Sum::default();
                sum.add(&data);
                got.push(format!(
                    "binary {}",
                    sum == Sum::of(Generated {
                        len: 8 << 20,
                        pos: 0
                    })
                    .unwrap()
                ));
            }
            Message::Text(t) => got.push(t),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(streamer.join().unwrap(), 8 << 20);
    pinger.join().unwrap();
    // Either order is fine, but both arrive whole.
    got.sort();
    assert_eq!(got, ["after", "binary true"]);
}

#[test]
fn send_stream_refuses_control_opcodes() {
    let server = echo_server_with(ServerConfig::default());
    let mut ws = client(server.local_addr());
    assert!(matches!(
        ws.send_stream(OpCode::Ping, &b"x"[..], 10),
        Err(Error::InvalidSend(_))
    ));
    close_normally(&mut ws);
}

#[test]
fn receive_piece_in_any_chunking_gives_the_same_bytes_as_whole_messages() {
    // Sans-I/O: a fragmented message with a ping inside, fed in chunks of
    // every size from 1 to the whole, streamed; the pieces concatenate to
    // the message and the ping is answered each time.
    let mut sender = Connection::new(Role::Client, SizeLimits::default());
    let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    sender
        .send_frame(OpCode::Binary, &payload[..1000], false)
        .unwrap();
    sender.send_frame(OpCode::Ping, b"hi", true).unwrap();
    sender
        .send_frame(OpCode::Continuation, &payload[1000..], true)
        .unwrap();
    let wire = sender.take_data_to_send();
    for chunk in [1, 2, 3, 7, 100, 1000, wire.len()] {
        let mut server = Connection::new(Role::Server, SizeLimits::default().max_message_size(100));
        let mut data = Vec::new();
        let mut events = Vec::new();
        let mut owned = wire.clone();
        for part in owned.chunks_mut(chunk) {
            let mut input = part;
            loop {
                let (used, piece) = server.receive_piece(input, Streaming::Always).unwrap();
                match piece {
                    Some(Piece::Start(op)) => events.push(format!("start {op:?}")),
                    Some(Piece::Data(bytes)) => data.extend_from_slice(bytes),
                    Some(Piece::Message(MessageRef::Ping(p))) => {
                        events.push(format!("ping {}", String::from_utf8_lossy(p)))
                    }
                    Some(Piece::End) => events.push("end".into()),
                    Some(other) => panic!("unexpected {other:?}"),
                    None => {}
                }
                input = &mut input[used..];
                if input.is_empty() && used == 0 {
                    break;
                }
                if input.is_empty() {
                    // One more call with nothing: a pending end is reported.
                    continue;
                }
            }
        }
        assert_eq!(data, payload, "chunk {chunk}");
        assert_eq!(events, ["start Binary", "ping hi", "end"], "chunk {chunk}");
        assert!(!server.data_to_send().is_empty(), "the pong");
    }
}

#[test]
fn a_fragmented_message_streams_once_it_grows_past_the_threshold() {
    // Above(n): small messages whole; a message of small fragments turns
    // streamed when it grows past n, what it held so far being its first
    // piece.
    let mut sender = Connection::new(Role::Client, SizeLimits::default());
    let small = vec![5u8; 50];
    sender.send(&Message::Binary(small.clone())).unwrap();
    let big: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    sender
        .send_frame(OpCode::Binary, &big[..300], false)
        .unwrap();
    sender
        .send_frame(OpCode::Continuation, &big[300..600], false)
        .unwrap();
    sender
        .send_frame(OpCode::Continuation, &big[600..], true)
        .unwrap();
    let mut wire = sender.take_data_to_send();
    let mut server = Connection::new(Role::Server, SizeLimits::default().max_message_size(400));
    let mut input = &mut wire[..];
    let mut events = Vec::new();
    let mut data = Vec::new();
    loop {
        let (used, piece) = server.receive_piece(input, Streaming::Above(500)).unwrap();
        match piece {
            Some(Piece::Message(MessageRef::Binary(b))) => {
                events.push(format!("whole {}", b.len()))
            }
            Some(Piece::Start(_)) => events.push("start".into()),
            Some(Piece::Data(b)) => data.extend_from_slice(b),
            Some(Piece::End) => events.push("end".into()),
            Some(other) => panic!("unexpected {other:?}"),
            None if used == 0 => break,
            None => {}
        }
        input = &mut input[used..];
    }
    assert_eq!(events, ["whole 50", "start", "end"]);
    // Past the threshold the message limit (400) no longer applies.
    assert_eq!(data, big);
}

#[test]
fn the_relay_example_passes_a_large_message_through_frame_by_frame() {
    // Client → examples/relay → upstream. The upstream checksums the message
    // as a stream and answers with the sum; the relay never holds it whole
    // (it is past the 64 MiB message limit). 1 GiB in a release build.
    let len = stream_bytes().min(1 << 30);
    let upstream = Server::bind("127.0.0.1:0", test_config())
        .unwrap()
        .spawn(|mut ws, _| {
            let sum = Sum::of(ws.read_stream()?).map_err(Error::Io)?;
            ws.send(Message::Text(format!("{sum:?}")))?;
            loop {
                ws.read()?;
            }
        })
        .unwrap();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut relay = std::process::Command::new(example_binary("relay"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--upstream", &url(upstream.local_addr())])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let connected = (0..200).find_map(|_| {
        thread::sleep(Duration::from_millis(25));
        rfc6455::connect_with(&format!("ws://127.0.0.1:{port}/"), &client_config()).ok()
    });
    let Some((mut ws, _)) = connected else {
        let _ = relay.kill();
        panic!("the relay did not come up");
    };
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    ws.send_stream(OpCode::Binary, Generated { len, pos: 0 }, 1 << 20)
        .unwrap();
    let expected = format!("{:?}", Sum::of(Generated { len, pos: 0 }).unwrap());
    let answer = read_skipping_pings(&mut ws);
    let _ = relay.kill();
    let _ = relay.wait();
    assert_eq!(answer, Message::Text(expected));
}

// ---------------------------------------------------------------------------
// Edges found in review

/// A stream for the blocking driver: serves `wire` (returning the caller's
/// `WouldBlock` once at `stall_at`) and records what is written.
struct Scripted {
    wire: Vec<u8>,
    pos: usize,
    stall_at: Option<usize>,
    written: Vec<u8>,
}

impl Read for Scripted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut end = self.wire.len();
        if let Some(stall) = self.stall_at {
            if self.pos == stall {
                self.stall_at = None;
                return Err(io::ErrorKind::WouldBlock.into());
            }
            end = end.min(stall);
        }
        let n = (end - self.pos).min(buf.len());
        buf[..n].copy_from_slice(&self.wire[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl io::Write for Scripted {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn scripted(
    frames: &[(OpCode, bool, &[u8])],
    stall_at: Option<usize>,
) -> rfc6455::WebSocket<Scripted> {
    let mut client = Connection::new(Role::Client, SizeLimits::default());
    for &(opcode, fin, payload) in frames {
        client.send_frame(opcode, payload, fin).unwrap();
    }
    let stream = Scripted {
        wire: client.take_data_to_send(),
        pos: 0,
        stall_at,
        written: Vec::new(),
    };
    rfc6455::WebSocket::from_raw_socket(stream, Role::Server, Default::default())
}

/// Gives one buffer-full, then fails (a file on a bad disk, a dead pipe).
struct FailingSource(bool);

impl Read for FailingSource {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if std::mem::replace(&mut self.0, true) {
            return Err(io::Error::other("source failed"));
        }
        buf.fill(b'x');
        Ok(buf.len())
    }
}

#[test]
fn a_source_failing_mid_stream_closes_with_1011_instead_of_wedging_the_connection() {
    let mut ws = scripted(&[], None);
    let sent = ws.send_stream(OpCode::Binary, FailingSource(false), 16);
    assert!(matches!(sent, Err(Error::Io(_))), "{sent:?}");
    // Not left open with a message that can never end: closed with 1011.
    assert_ne!(ws.state(), rfc6455::protocol::State::Open);
    let written = &ws.get_ref().written;
    let close = written
        .windows(2)
        .rposition(|w| w[0] == 0x88)
        .expect("a close frame");
    assert_eq!(&written[close + 2..close + 4], &1011u16.to_be_bytes());
    assert!(matches!(
        ws.send(Message::Text("later".into())),
        Err(Error::AlreadyClosed)
    ));
}

#[test]
fn split_writer_source_failing_mid_stream_closes_with_1011() {
    let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    let ws = rfc6455::WebSocket::from_raw_socket(a, Role::Server, Default::default());
    let (_reader, writer) = ws.split().unwrap();
    assert!(writer
        .send_stream(OpCode::Binary, FailingSource(false), 16)
        .is_err());
    assert!(writer.send_closed());
    drop(writer);
    drop(_reader);
    let mut wire = Vec::new();
    b.read_to_end(&mut wire).unwrap();
    let close = wire
        .windows(2)
        .rposition(|w| w[0] == 0x88)
        .expect("a close frame");
    assert_eq!(&wire[close + 2..close + 4], &1011u16.to_be_bytes());
}

#[test]
fn read_stream_after_the_callers_would_block_delivers_the_message_begun_whole() {
    // The caller's own non-blocking read stops half way through a whole
    // message; asking for a stream then must deliver that message, not
    // skip it.
    let hundred = [7u8; 100];
    let mut ws = scripted(
        &[
            (OpCode::Binary, true, &hundred),
            (OpCode::Binary, true, b"second"),
        ],
        Some(50),
    );
    match ws.read() {
        Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
        other => panic!("expected the caller's WouldBlock, got {other:?}"),
    }
    let mut message = ws.read_stream().unwrap();
    let mut got = Vec::new();
    message.read_to_end(&mut got).unwrap();
    assert!(message.is_done());
    drop(message);
    assert_eq!(got, hundred);
    assert_eq!(ws.read().unwrap(), Message::Binary(b"second".to_vec()));
}

#[test]
fn a_close_met_while_skipping_a_dropped_stream_ends_the_connection_once() {
    let close = 1000u16.to_be_bytes();
    let mut ws = scripted(
        &[
            (OpCode::Binary, false, &[7; 10]),
            (OpCode::Close, true, &close),
        ],
        None,
    );
    {
        let mut message = ws.read_stream().unwrap();
        let mut one = [0u8; 1];
        message.read_exact(&mut one).unwrap();
    } // dropped half way: the rest is skipped
    assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
    assert!(matches!(ws.read(), Err(Error::AlreadyClosed)));
}
