//! The broadcast hub over loopback: every member gets every broadcast, a
//! client that never reads does not hold up the others, and members leave
//! when they disconnect.

use rfc6455::{
    connect, CloseCode, Error, Hub, Message, RunningServer, Server, ServerConfig, Stream,
};
use std::time::{Duration, Instant};

type ServerHub = Hub<Stream>;

/// A chat-room server: every text message is broadcast to all members.
fn room(hub: &ServerHub, config: ServerConfig) -> RunningServer {
    let room = hub.clone();
    Server::bind("127.0.0.1:0", config)
        .unwrap()
        .spawn(move |ws, _request| {
            let (mut reader, writer) = ws.split()?;
            let _member = room.join(writer);
            loop {
                match reader.read()? {
                    Message::Text(text) => {
                        room.broadcast(Message::Text(text));
                    }
                    Message::Binary(data) => {
                        room.broadcast(Message::Binary(data));
                    }
                    _ => {}
                }
            }
        })
        .unwrap()
}

fn url(server: &RunningServer) -> String {
    format!("ws://{}/", server.local_addr())
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `n` clients of `server` (reads time out after 10 s), once all are in `hub`.
fn members(hub: &ServerHub, server: &RunningServer, n: usize) -> Vec<rfc6455::ClientWebSocket> {
    let clients = (0..n)
        .map(|_| {
            let (ws, _) = connect(&url(server)).unwrap();
            ws.get_ref()
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            ws
        })
        .collect();
    wait_for(&format!("{n} members"), || hub.len() == n);
    clients
}

#[test]
fn broadcast_reaches_every_member_in_order() {
    let hub = ServerHub::new();
    let server = room(&hub, ServerConfig::default());
    let mut clients = members(&hub, &server, 5);

    for i in 0..20 {
        let text = format!("message {i} from client {}", i % 5);
        clients[i % 5].send(Message::Text(text.clone())).unwrap();
        // Every member, the sender included, gets it next.
        for client in &mut clients {
            assert_eq!(client.read().unwrap(), Message::Text(text.clone()));
        }
    }
    // Server-side broadcast (not triggered by a client) reaches everyone.
    let delivery = hub.broadcast(Message::Binary(vec![7; 1000]));
    assert_eq!(delivery.queued, 5);
    for client in &mut clients {
        assert_eq!(client.read().unwrap(), Message::Binary(vec![7; 1000]));
    }
    server.shutdown().unwrap();
}

#[test]
fn slow_member_that_never_reads_does_not_block_the_others() {
    let hub = ServerHub::with_queue_len(4);
    let config = ServerConfig::default().write_timeout(Some(Duration::from_secs(2)));
    let server = room(&hub, config);
    // This client never reads: the kernel buffers fill, then its queue.
    let (stuck, _) = connect(&url(&server)).unwrap();
    let (mut reader, _) = connect(&url(&server)).unwrap();
    reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    wait_for("2 members", || hub.len() == 2);

    let payload = vec![b'x'; 64 * 1024];
    let start = Instant::now();
    let mut dropped = 0;
    for _ in 0..200 {
        let d = hub.broadcast(Message::Binary(payload.clone()));
        dropped += d.dropped;
        // The reading client keeps up, so it never misses a message.
        assert_eq!(reader.read().unwrap(), Message::Binary(payload.clone()));
    }
    // 200 × 64 KiB is far beyond socket buffers plus a 4-message queue: the
    // stuck client must have missed some, and broadcast never blocked on it.
    assert!(dropped > 0, "the stuck client never missed a broadcast");
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "broadcasting was held up by the stuck client: {:?}",
        start.elapsed()
    );
    drop(stuck);
    server.shutdown().unwrap();
}

#[test]
fn members_leave_the_hub_when_they_disconnect() {
    let hub = ServerHub::new();
    let server = room(&hub, ServerConfig::default());
    let (mut a, _) = connect(&url(&server)).unwrap();
    let (b, _) = connect(&url(&server)).unwrap();
    wait_for("2 members", || hub.len() == 2);

    a.close(CloseCode::NORMAL, "bye").unwrap();
    loop {
        match a.read() {
            Ok(_) => {}
            Err(Error::ConnectionClosed) => break,
            Err(e) => panic!("unexpected error closing: {e}"),
        }
    }
    wait_for("1 member after a clean close", || hub.len() == 1);

    drop(b); // vanishes without a close frame
    wait_for("0 members after a dropped TCP connection", || {
        hub.is_empty()
    });
    assert_eq!(hub.broadcast(Message::Text("anyone?".into())).queued, 0);
    server.shutdown().unwrap();
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn broadcast_to_members_that_never_read_costs_one_copy_of_the_message() {
    // 20 members never read; a 16 MiB broadcast used to be copied into each
    // member's output buffer and held there while its write blocked
    // (20 × 16 MiB). Now large payloads are written from the shared message.
    const MEMBERS: usize = 20;
    const SIZE: usize = 16 << 20;
    let hub = ServerHub::new();
    let config = ServerConfig::default().write_timeout(Some(Duration::from_secs(5)));
    let server = room(&hub, config);
    let stuck: Vec<_> = (0..MEMBERS)
        .map(|_| connect(&url(&server)).unwrap().0)
        .collect();
    wait_for("20 members", || hub.len() == MEMBERS);
    let before = rss_kib();
    hub.broadcast(Message::Binary(vec![b'x'; SIZE]));
    // Give the sender threads time to block in their writes.
    std::thread::sleep(Duration::from_millis(500));
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    assert!(
        grown_mib < 3 * (SIZE as u64 >> 20),
        "RSS grew by {grown_mib} MiB for one 16 MiB broadcast to {MEMBERS} stuck members"
    );
    drop(stuck);
    server.shutdown().unwrap();
}

/// A room that greets each member with an 8 MiB broadcast: more than the
/// socket buffers hold, so the member's sender thread stays blocked in its
/// write until the member reads.
fn greeting_room(hub: &ServerHub) -> RunningServer {
    let room = hub.clone();
    Server::bind("127.0.0.1:0", ServerConfig::default())
        .unwrap()
        .spawn(move |ws, _request| {
            let (mut reader, writer) = ws.split()?;
            let _member = room.join(writer);
            room.broadcast(Message::Binary(vec![7; 8 << 20]));
            loop {
                reader.read()?;
            }
        })
        .unwrap()
}

#[test]
fn close_reply_is_not_lost_while_a_broadcast_is_being_written() {
    // The reader gets our close while the member's sender thread is blocked
    // writing to us; its close reply must still follow the broadcast, whole,
    // before the server closes TCP (it used to be dropped: a 1006 here).
    let hub = ServerHub::new();
    let server = greeting_room(&hub);
    let (mut ws, _) = connect(&url(&server)).unwrap();
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    wait_for("1 member", || hub.len() == 1);
    std::thread::sleep(Duration::from_millis(200));
    ws.close(CloseCode::NORMAL, "").unwrap();
    let mut got = Vec::new();
    loop {
        match ws.read() {
            Ok(Message::Binary(data)) => got.push(format!("binary {}", data.len())),
            Ok(Message::Close(frame)) => got.push(format!("close {:?}", frame.map(|f| f.code.0))),
            Ok(other) => got.push(format!("{other:?}")),
            Err(Error::ConnectionClosed) => break,
            Err(e) => panic!("after {got:?}: {e}"),
        }
    }
    assert_eq!(got, ["binary 8388608", "close Some(1000)"]);
    server.shutdown().unwrap();
}

#[test]
fn ping_flood_while_a_broadcast_is_blocked_meets_backpressure() {
    // The member never reads; its sender thread is blocked. Every ping it
    // floods queues a pong: past 64 KiB the reader must stop reading (TCP
    // backpressure) rather than let the queue, and our memory, grow.
    use std::io::Write;
    let hub = ServerHub::new();
    let server = greeting_room(&hub);
    let (ws, _) = connect(&url(&server)).unwrap();
    wait_for("1 member", || hub.len() == 1);
    let mut raw = ws.get_ref().try_clone().unwrap();
    raw.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut ping = vec![0x89, 0x80 | 125, 1, 2, 3, 4];
    ping.extend_from_slice(&[0x5a; 125]);
    let burst: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 500)
        .collect();
    let mut sent = 0usize;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(8) {
        match raw.write(&burst) {
            Ok(n) => sent += n,
            Err(_) => break, // blocked: backpressure reached us
        }
        if sent > 256 << 20 {
            break;
        }
    }
    assert!(
        sent < 64 << 20,
        "the server took {} MiB of pings without reading being held back",
        sent >> 20
    );
    drop(raw);
    drop(ws);
    server.shutdown().unwrap();
}

/// A server whose clients pick a room with the request path (`/NAME`);
/// text goes to their room, binary to everyone.
fn rooms_server(hub: &ServerHub) -> RunningServer {
    let hub = hub.clone();
    Server::bind("127.0.0.1:0", ServerConfig::default())
        .unwrap()
        .spawn(move |ws, request| {
            let room = request.target.trim_start_matches('/').to_owned();
            let (mut reader, writer) = ws.split()?;
            let _member = hub.join_room(&room, writer);
            loop {
                match reader.read()? {
                    Message::Text(text) => {
                        hub.broadcast_to(&room, Message::Text(text));
                    }
                    Message::Binary(data) => {
                        hub.broadcast(Message::Binary(data));
                    }
                    _ => {}
                }
            }
        })
        .unwrap()
}

fn client_at(server: &RunningServer, path: &str) -> rfc6455::ClientWebSocket {
    let (ws, _) = connect(&format!("ws://{}{path}", server.local_addr())).unwrap();
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    ws
}

#[test]
fn rooms_isolate_broadcasts_but_everyone_gets_a_broadcast_to_all() {
    let hub = ServerHub::new();
    let server = rooms_server(&hub);
    let mut red = client_at(&server, "/red");
    let mut blue = client_at(&server, "/blue");
    wait_for("2 members", || hub.len() == 2);
    assert_eq!((hub.room_len("red"), hub.room_len("blue")), (1, 1));

    // Each sees its own room's message, then the broadcast to all: never
    // the other room's.
    red.send(Message::Text("for red".into())).unwrap();
    assert_eq!(red.read().unwrap(), Message::Text("for red".into()));
    blue.send(Message::Text("for blue".into())).unwrap();
    assert_eq!(blue.read().unwrap(), Message::Text("for blue".into()));
    blue.send(Message::Binary(vec![1, 2, 3])).unwrap();
    assert_eq!(red.read().unwrap(), Message::Binary(vec![1, 2, 3]));
    assert_eq!(blue.read().unwrap(), Message::Binary(vec![1, 2, 3]));
    assert_eq!(
        hub.broadcast_to("green", Message::Text("?".into())).queued,
        0
    );

    drop(red);
    wait_for("red to empty", || hub.room_len("red") == 0);
    server.shutdown().unwrap();
}

/// A relay that records what the hub tells it, to check the seam without
/// any broker.
#[derive(Default, Clone)]
struct Recorder {
    events: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    inbox: std::sync::Arc<std::sync::OnceLock<rfc6455::Inbox>>,
}

impl Recorder {
    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
    fn log(&self, event: String) {
        self.events.lock().unwrap().push(event);
    }
}

impl rfc6455::Relay for Recorder {
    fn attach(&self, inbox: rfc6455::Inbox) {
        let _ = self.inbox.set(inbox);
        self.log("attach".into());
    }
    fn publish(&self, room: Option<&str>, message: &std::sync::Arc<Message>) {
        self.log(format!("publish {room:?} {message:?}"));
    }
    fn room_opened(&self, room: &str) {
        self.log(format!("open {room}"));
    }
    fn room_closed(&self, room: &str) {
        self.log(format!("close {room}"));
    }
}

#[test]
fn relay_follows_rooms_and_gets_data_broadcasts_but_not_its_own_deliveries() {
    let recorder = Recorder::default();
    let hub = ServerHub::new().with_relay(recorder.clone());
    let server = rooms_server(&hub);
    let mut a = client_at(&server, "/red");
    let b = client_at(&server, "/red");
    wait_for("2 members in red", || hub.room_len("red") == 2);

    a.send(Message::Text("hi".into())).unwrap();
    assert_eq!(a.read().unwrap(), Message::Text("hi".into()));
    hub.broadcast(Message::Ping(vec![])); // control messages stay local
                                          // What arrives from other processes goes to members, not back out.
    let inbox = recorder.inbox.get().expect("attached");
    let delivery = inbox.deliver(Some("red"), Message::Text("from afar".into()));
    assert_eq!(delivery.map(|d| d.queued), Some(2));
    let next = loop {
        match a.read().unwrap() {
            Message::Ping(_) => continue,
            other => break other,
        }
    };
    assert_eq!(next, Message::Text("from afar".into()));
    drop(a);
    drop(b);
    wait_for("red to empty", || hub.room_len("red") == 0);
    wait_for("the close event", || recorder.events().len() == 4);
    assert_eq!(
        recorder.events(),
        [
            "attach",
            "open red",
            r#"publish Some("red") Text("hi")"#,
            "close red"
        ]
    );
    server.shutdown().unwrap();
}

#[test]
fn more_stuck_members_than_sender_threads_do_not_hold_up_a_reader() {
    // Sender threads are shared: each of these 12 clients that never read
    // ends up holding one, blocked in a write. New ones must take over, or
    // the reading client would wait for the write timeout.
    let hub = ServerHub::with_queue_len(4);
    let config = ServerConfig::default().write_timeout(Some(Duration::from_secs(20)));
    let server = room(&hub, config);
    let stuck: Vec<_> = (0..12).map(|_| connect(&url(&server)).unwrap().0).collect();
    let (mut reader, _) = connect(&url(&server)).unwrap();
    reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    wait_for("13 members", || hub.len() == 13);
    let payload = vec![b'y'; 256 * 1024];
    for _ in 0..40 {
        hub.broadcast(Message::Binary(payload.clone()));
        // Within the 10 s read timeout, far below the 20 s write timeout.
        assert_eq!(reader.read().unwrap(), Message::Binary(payload.clone()));
    }
    drop(stuck);
    server.shutdown().unwrap();
}

#[test]
fn a_burst_of_every_length_encoding_and_control_frames_arrives_whole_and_in_order() {
    // Queued faster than it is written, so each member's sender writes many
    // broadcasts at once: data frames from the bytes framed once for all,
    // the pings between them framed per member. 7-bit, 16-bit and 64-bit
    // lengths (RFC 6455 §5.2), empty and large payloads.
    let hub = ServerHub::new();
    let server = room(&hub, ServerConfig::default());
    let mut clients = members(&hub, &server, 3);
    let sizes = [0, 1, 125, 126, 65_535, 65_536, 70_000, 2, 16 * 1024];
    let mut sent = Vec::new();
    for (i, &size) in sizes.iter().cycle().take(60).enumerate() {
        let message = match i % 2 {
            0 => Message::Text("t".repeat(size)),
            _ => Message::Binary(vec![i as u8; size]),
        };
        hub.broadcast(message.clone());
        sent.push(message);
        if i % 7 == 0 {
            hub.broadcast(Message::Ping(vec![i as u8]));
        }
    }
    for client in &mut clients {
        let mut got = Vec::new();
        while got.len() < sent.len() {
            let message = client.read().unwrap();
            if matches!(message, Message::Text(_) | Message::Binary(_)) {
                got.push(message);
            }
        }
        assert!(got == sent, "a member got its broadcasts out of order");
    }
    server.shutdown().unwrap();
}

#[test]
fn members_that_mask_their_frames_get_broadcasts_framed_for_them() {
    // Client writers in a hub: every frame they send must be masked with a
    // key of their own (RFC 6455 §5.3), so the frames shared by server
    // members do not fit them. The server fails a connection that sends an
    // unmasked frame (1002); here it echoes what it gets.
    let server = Server::bind("127.0.0.1:0", ServerConfig::default())
        .unwrap()
        .spawn(|mut ws, _request| loop {
            let message = ws.read()?;
            ws.send(message)?;
        })
        .unwrap();
    let hub = ServerHub::new();
    let mut readers = Vec::new();
    let mut members = Vec::new();
    for _ in 0..2 {
        let (ws, _) = connect(&url(&server)).unwrap();
        ws.get_ref()
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (reader, writer) = ws.split().unwrap();
        members.push(hub.join(writer));
        readers.push(reader);
    }
    let sent: Vec<Message> = (0..20)
        .map(|i| Message::Text(format!("echo {i}")))
        .chain([Message::Binary(vec![3; 70_000])])
        .collect();
    for message in &sent {
        hub.broadcast(message.clone());
    }
    for reader in &mut readers {
        for message in &sent {
            assert_eq!(&reader.read().unwrap(), message);
        }
    }
    assert!(members.iter().all(|m| m.is_joined()));
    server.shutdown().unwrap();
}

#[cfg(feature = "deflate")]
#[test]
fn members_with_permessage_deflate_get_broadcasts_compressed_for_them() {
    // The frames shared by plain members carry RSV1 clear and the payload
    // as is; a member that negotiated permessage-deflate gets its own
    // compressed frame (RSV1 set, RFC 7692 §6), not the shared bytes.
    use std::io::{Read, Write};
    let hub = ServerHub::new();
    let config =
        ServerConfig::default().deflate(Some(rfc6455::handshake::DeflateConfig::default()));
    let server = room(&hub, config);
    let mut raw = std::net::TcpStream::connect(server.local_addr()).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    raw.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        raw.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(
        head.contains("permessage-deflate"),
        "not negotiated: {head}"
    );
    wait_for("1 member", || hub.len() == 1);
    hub.broadcast(Message::Text("compress me ".repeat(100)));
    let mut header = [0; 2];
    raw.read_exact(&mut header).unwrap();
    assert_eq!(header[0], 0x80 | 0x40 | 0x1, "FIN, RSV1 and text");
    assert!(
        usize::from(header[1]) < 126,
        "1200 bytes, compressed to under 126"
    );
    server.shutdown().unwrap();
}
