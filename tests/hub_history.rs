//! Room history in the hub, over loopback with the in-process log: offsets
//! in one order, recovery "since offset O in epoch E" with no gap and no
//! duplicate at the seam, what a member is told when history cannot cover
//! its gap, publish outcomes and ids, members in several rooms, recoveries
//! paced through small queues, and slow members closed with 1013 on both
//! engines. The same hub over Redis Streams is in `tests/redis_chat.rs`.

use rfc6455::hub::{Entry, Envelope, HistoryConfig, HubConfig, Joined, Outcome, Since, SlowPolicy};
use rfc6455::{
    connect, CloseCode, Error, Hub, Member, Message, RunningServer, Server, ServerConfig, Stream,
};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

type ServerHub = Hub<Stream>;

/// A wire format for tests: `m|ROOM|OFFSET|EPOCH|TEXT` for a message and
/// `j|ROOM|EPOCH|OFFSET|RECOVERED|MISSED` for a join report (`-` for a
/// fresh join).
struct Pipes;

impl Envelope for Pipes {
    fn entry(&self, entry: &Entry) -> Message {
        let text = match &**entry.message() {
            Message::Text(t) => t.clone(),
            other => format!("<{} bytes>", other.len()),
        };
        let (room, offset, epoch) = (entry.room(), entry.offset(), entry.epoch());
        Message::Text(format!("m|{room}|{offset}|{epoch}|{text}"))
    }

    fn joined(&self, room: &str, joined: &Joined) -> Option<Message> {
        let (recovered, missed) = match joined.recovery {
            Some(r) => (r.recovered.to_string(), r.missed.to_string()),
            None => ("-".into(), "-".into()),
        };
        let (epoch, offset) = (&joined.epoch, joined.offset);
        Some(Message::Text(format!(
            "j|{room}|{epoch}|{offset}|{recovered}|{missed}"
        )))
    }
}

/// What a test client reads.
#[derive(Debug, Clone, PartialEq)]
enum Heard {
    Msg {
        room: String,
        offset: String,
        epoch: String,
        text: String,
    },
    Joined {
        room: String,
        epoch: String,
        offset: String,
        recovered: String,
        missed: String,
    },
}

fn parse(text: &str) -> Heard {
    let parts: Vec<&str> = text.splitn(6, '|').collect();
    match parts[0] {
        "m" => Heard::Msg {
            room: parts[1].into(),
            offset: parts[2].into(),
            epoch: parts[3].into(),
            text: parts[4..].join("|"),
        },
        "j" => Heard::Joined {
            room: parts[1].into(),
            epoch: parts[2].into(),
            offset: parts[3].into(),
            recovered: parts[4].into(),
            missed: parts[5].into(),
        },
        _ => panic!("unexpected {text:?}"),
    }
}

fn query(target: &str, name: &str) -> Option<String> {
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

fn history_hub(config: HubConfig) -> ServerHub {
    ServerHub::with_config(config).with_envelope(Pipes)
}

fn with_history(len: usize) -> HubConfig {
    HubConfig::default().history(Some(HistoryConfig::new(len)))
}

/// A server: `/?room=R[&since=O&epoch=E]` joins R; a text `ROOM TEXT` from
/// a client publishes TEXT to ROOM; `+ROOM` and `-ROOM` join and leave.
fn server(hub: &ServerHub) -> RunningServer {
    let hub = hub.clone();
    Server::bind("127.0.0.1:0", ServerConfig::default().keepalive(None))
        .unwrap()
        .spawn(move |ws, request| {
            let (mut reader, writer) = ws.split()?;
            let member = hub.join(writer);
            if let Some(room) = query(&request.target, "room") {
                let since = query(&request.target, "since")
                    .map(|o| Since::new(&query(&request.target, "epoch").unwrap_or_default(), &o));
                member.join(&room, since);
            }
            loop {
                if let Message::Text(text) = reader.read()? {
                    command(&hub, &member, &text);
                }
            }
        })
        .unwrap()
}

fn command(hub: &ServerHub, member: &Member, text: &str) {
    if let Some(room) = text.strip_prefix('+') {
        member.join(room, None);
    } else if let Some(room) = text.strip_prefix('-') {
        member.leave(room);
    } else if let Some((room, text)) = text.split_once(' ') {
        hub.publish(room, Message::text(text), None, drop);
    }
}

/// A client whose reader thread hands what it hears to a channel.
struct Client {
    writer: rfc6455::Writer<Stream>,
    heard: Receiver<Result<Heard, Option<CloseCode>>>,
}

impl Client {
    fn connect(server: &RunningServer, query: &str) -> Client {
        Client::connect_addr(server.local_addr(), query)
    }

    fn next(&self) -> Heard {
        match self.heard.recv_timeout(Duration::from_secs(20)) {
            Ok(Ok(heard)) => heard,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    fn say(&self, text: &str) {
        self.writer.send(Message::text(text)).unwrap();
    }

    /// Closes the connection and waits until the server has seen it go.
    fn leave(self) {
        let _ = self.writer.close(CloseCode::NORMAL, "bye");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            match self.heard.recv_timeout(Duration::from_millis(100)) {
                Ok(Err(_)) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
                _ => {}
            }
        }
        panic!("the connection did not close");
    }

    fn quiet_for(&self, wait: Duration) -> bool {
        self.heard.recv_timeout(wait).is_err()
    }
}

fn joined(heard: Heard) -> (String, String, String, String, String) {
    match heard {
        Heard::Joined {
            room,
            epoch,
            offset,
            recovered,
            missed,
        } => (room, epoch, offset, recovered, missed),
        other => panic!("expected a join report, got {other:?}"),
    }
}

fn message(heard: Heard) -> (String, String, String) {
    match heard {
        Heard::Msg {
            offset,
            epoch,
            text,
            ..
        } => (offset, epoch, text),
        other => panic!("expected a message, got {other:?}"),
    }
}

fn publish(hub: &ServerHub, room: &str, text: &str) -> Outcome {
    hub.publish_wait(room, Message::text(text), None, Duration::from_secs(10))
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_member_back_since_its_last_offset_gets_exactly_what_it_missed_then_live_ones() {
    let hub = history_hub(with_history(1000));
    let server = server(&hub);
    let first = Client::connect(&server, "room=news");
    let (room, epoch, start, recovered, _) = joined(first.next());
    assert_eq!(
        (room.as_str(), recovered.as_str(), start.as_str()),
        ("news", "-", "0-0")
    );
    for i in 0..3 {
        assert!(matches!(
            publish(&hub, "news", &format!("seen {i}")),
            Outcome::Accepted { .. }
        ));
    }
    let mut last = String::new();
    for i in 0..3 {
        let (offset, e, text) = message(first.next());
        assert_eq!((e.as_str(), text), (epoch.as_str(), format!("seen {i}")));
        last = offset;
    }
    first.leave();
    wait_for("the member to leave", || hub.room_len("news") == 0);

    for i in 0..50 {
        publish(&hub, "news", &format!("missed {i}"));
    }
    let back = Client::connect(&server, &format!("room=news&since={last}&epoch={epoch}"));
    let (_, e, top, recovered, missed) = joined(back.next());
    assert_eq!(
        (e.as_str(), recovered.as_str(), missed.as_str()),
        (epoch.as_str(), "true", "50")
    );
    let mut previous: rfc6455::hub::Offset = last.parse().unwrap();
    for i in 0..50 {
        let (offset, _, text) = message(back.next());
        let offset: rfc6455::hub::Offset = offset.parse().unwrap();
        assert_eq!(offset.seq(), previous.seq() + 1, "a gap");
        assert_eq!(text, format!("missed {i}"));
        previous = offset;
    }
    assert_eq!(previous.to_string(), top, "the report says where it ends");
    back.say("news live");
    let (_, _, text) = message(back.next());
    assert_eq!(text, "live");
    assert_eq!(hub.stats().recovered, 1);
    server.shutdown().unwrap();
}

#[test]
fn reconnecting_again_and_again_while_messages_flow_misses_none_and_repeats_none() {
    let hub = history_hub(with_history(100_000));
    let server = server(&hub);
    let mut client = Client::connect(&server, "room=feed");
    let (_, epoch, _, _, _) = joined(client.next());
    let publisher = {
        let hub = hub.clone();
        thread::spawn(move || {
            for i in 0..3000 {
                publish(&hub, "feed", &format!("{i}"));
                if i % 50 == 0 {
                    thread::sleep(Duration::from_millis(1));
                }
            }
        })
    };
    let mut expected = 0;
    let mut reconnects = 0;
    while expected < 3000 {
        let (offset, e, text) = message(client.next());
        assert_eq!(e, epoch);
        assert_eq!(
            text,
            expected.to_string(),
            "out of order, missed or repeated"
        );
        assert_eq!(
            offset.parse::<rfc6455::hub::Offset>().unwrap().seq(),
            expected + 1
        );
        expected += 1;
        if expected % 200 == 0 {
            // Away for a moment, and back with where it was.
            client.leave();
            let last = offset;
            reconnects += 1;
            client = Client::connect(&server, &format!("room=feed&since={last}&epoch={epoch}"));
            let (_, _, _, recovered, _) = joined(client.next());
            assert_eq!(recovered, "true");
        }
    }
    publisher.join().unwrap();
    assert!(
        client.quiet_for(Duration::from_millis(100)),
        "more than was published"
    );
    assert_eq!(hub.stats().recovered, reconnects);
    server.shutdown().unwrap();
}

#[test]
fn more_missed_than_the_history_holds_is_not_recovered_and_missed_counts_what_follows() {
    let hub = history_hub(with_history(10));
    let server = server(&hub);
    let first = Client::connect(&server, "room=r");
    let (_, epoch, _, _, _) = joined(first.next());
    publish(&hub, "r", "before");
    let (last, _, _) = message(first.next());
    first.leave();
    for i in 0..25 {
        publish(&hub, "r", &format!("{i}"));
    }
    let back = Client::connect(&server, &format!("room=r&since={last}&epoch={epoch}"));
    let (_, _, _, recovered, missed) = joined(back.next());
    assert_eq!((recovered.as_str(), missed.as_str()), ("false", "10"));
    for i in 15..25 {
        assert_eq!(message(back.next()).2, i.to_string());
    }
    assert!(back.quiet_for(Duration::from_millis(100)));
    assert_eq!(hub.stats().unrecoverable, 1);
    server.shutdown().unwrap();
}

#[test]
fn another_epoch_gets_no_history_only_live_messages() {
    let hub = history_hub(with_history(10));
    let server = server(&hub);
    publish(&hub, "r", "old");
    // An offset from another history (another process, before a restart).
    let back = Client::connect(&server, "room=r&since=1-1&epoch=0000000000000000");
    let (_, epoch, top, recovered, missed) = joined(back.next());
    assert_eq!((recovered.as_str(), missed.as_str()), ("false", "0"));
    assert_ne!(epoch, "0000000000000000");
    assert!(top.ends_with("-1"), "{top}");
    publish(&hub, "r", "new");
    assert_eq!(message(back.next()).2, "new");
    // An offset that does not parse is no better, and no worse.
    let garbage = Client::connect(&server, &format!("room=r&since=x&epoch={epoch}"));
    assert_eq!(joined(garbage.next()).3, "false");
    server.shutdown().unwrap();
}

#[test]
fn a_publish_retried_with_the_same_id_is_accepted_once() {
    let hub = history_hub(with_history(100));
    let server = server(&hub);
    let client = Client::connect(&server, "room=r");
    joined(client.next());
    let send = |id| hub.publish_wait("r", Message::text("once"), Some(id), Duration::from_secs(5));
    let Outcome::Accepted {
        offset,
        duplicate: false,
        ..
    } = send("id-1")
    else {
        panic!("not accepted");
    };
    let Outcome::Accepted {
        offset: again,
        duplicate: true,
        ..
    } = send("id-1")
    else {
        panic!("the retry was not taken as one");
    };
    assert_eq!(offset, again);
    assert_eq!(message(client.next()).2, "once");
    assert!(
        client.quiet_for(Duration::from_millis(100)),
        "delivered twice"
    );
    assert!(matches!(
        send("id-2"),
        Outcome::Accepted {
            duplicate: false,
            ..
        }
    ));
    assert_eq!(hub.stats().accepted, 3);
    server.shutdown().unwrap();
}

#[test]
fn a_room_without_history_is_broadcast_at_most_once() {
    let hub = history_hub(HubConfig::default().history(Some(
        HistoryConfig::new(10).rooms(|r| r.starts_with("kept")),
    )));
    assert!(hub.has_history("kept-1") && !hub.has_history("plain"));
    let server = server(&hub);
    let client = Client::connect(&server, "room=plain");
    wait_for("the member", || hub.room_len("plain") == 1);
    // No report, no offset: a plain room's message goes out as it came.
    let outcome = publish(&hub, "plain", "m|plain|-|-|hi");
    assert!(
        matches!(outcome, Outcome::Sent(d) if d.queued == 1),
        "{outcome:?}"
    );
    assert_eq!(message(client.next()).2, "hi");
    server.shutdown().unwrap();
}

#[test]
fn a_member_joins_and_leaves_rooms_while_connected() {
    let hub = history_hub(with_history(10));
    let server = server(&hub);
    let client = Client::connect(&server, "");
    client.say("+a");
    client.say("+b");
    assert_eq!(joined(client.next()).0, "a");
    assert_eq!(joined(client.next()).0, "b");
    client.say("a to a");
    client.say("b to b");
    let heard: Vec<_> = (0..2).map(|_| client.next()).collect();
    let rooms: Vec<&str> = heard
        .iter()
        .map(|h| match h {
            Heard::Msg { room, .. } => room.as_str(),
            _ => panic!("{h:?}"),
        })
        .collect();
    assert_eq!(rooms, ["a", "b"]);
    client.say("-a");
    wait_for("leaving a", || hub.room_len("a") == 0);
    publish(&hub, "a", "gone");
    publish(&hub, "b", "still");
    assert_eq!(message(client.next()).2, "still");
    assert_eq!(hub.room_len("b"), 1);
    server.shutdown().unwrap();
}

#[test]
fn a_recovery_many_times_the_queue_is_paced_not_dropped() {
    // A queue of 8 messages, a recovery of 5,000.
    let hub = history_hub(with_history(10_000).queue_len(8));
    let server = server(&hub);
    for i in 0..5000 {
        publish(&hub, "big", &format!("{i}"));
    }
    let back = Client::connect(&server, "room=big&since=0-0&epoch=x");
    let (_, epoch, _, _, _) = joined(back.next());
    drop(back);
    let back = Client::connect(&server, &format!("room=big&since=0-0&epoch={epoch}"));
    let (_, _, _, recovered, missed) = joined(back.next());
    assert_eq!((recovered.as_str(), missed.as_str()), ("true", "5000"));
    for i in 0..5000 {
        assert_eq!(message(back.next()).2, i.to_string());
    }
    assert_eq!(hub.stats().slow_closed, 0);
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

/// Issue 23: a member that never reads, sent large messages: its queue is
/// bounded in bytes, not only in messages (256 × 8 MiB before).
#[test]
fn queue_of_a_member_that_never_reads_is_bounded_in_bytes() {
    let hub = ServerHub::with_config(HubConfig::default().queue_bytes(4 << 20));
    let server = Server::bind(
        "127.0.0.1:0",
        ServerConfig::default().write_timeout(Some(Duration::from_secs(20))),
    )
    .unwrap()
    .spawn({
        let hub = hub.clone();
        move |ws, _| {
            let (mut reader, writer) = ws.split()?;
            let _member = hub.join(writer);
            loop {
                reader.read()?;
            }
        }
    })
    .unwrap();
    let (stuck, _) = connect(&format!("ws://{}/", server.local_addr())).unwrap();
    wait_for("the member", || hub.len() == 1);
    let before = rss_kib();
    let mut dropped = 0;
    for _ in 0..30 {
        dropped += hub.broadcast(Message::Binary(vec![b'x'; 8 << 20])).dropped;
    }
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    assert!(dropped >= 27, "only {dropped} of 30 × 8 MiB skipped");
    // One message queued, one being written, the kernel's buffers.
    assert!(grown_mib < 100, "RSS grew by {grown_mib} MiB");
    assert_eq!(hub.stats().dropped, dropped as u64);
    drop(stuck);
    server.shutdown().unwrap();
}

/// A client that reads nothing until told to: its socket buffers fill.
fn stalled(server_addr: std::net::SocketAddr, query: &str) -> (rfc6455::ClientWebSocket, ()) {
    let (ws, _) = connect(&format!("ws://{server_addr}/?{query}")).unwrap();
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    (ws, ())
}

/// Reads a stalled client's messages until its close frame; the code.
fn drain_to_close(ws: &mut rfc6455::ClientWebSocket) -> Option<CloseCode> {
    loop {
        match ws.read() {
            Ok(Message::Close(frame)) => return frame.map(|f| f.code),
            Ok(_) => {}
            Err(Error::ConnectionClosed) => return None,
            Err(e) => panic!("{e}"),
        }
    }
}

fn slow_member_is_closed_with_1013(
    hub: &ServerHub,
    addr: std::net::SocketAddr,
    room: &str,
    plain: bool,
) {
    let (mut slow, ()) = stalled(addr, &format!("room={room}"));
    let reader = Client::connect_addr(addr, &format!("room={room}"));
    wait_for("2 members", || hub.room_len(room) == 2);
    if !plain {
        joined(reader.next());
    }
    let payload = "x".repeat(64 * 1024);
    for i in 0..400 {
        if plain {
            hub.broadcast_to(room, Message::text(format!("{i} {payload}")));
        } else {
            publish(hub, room, &format!("{i} {payload}"));
        }
        // The reader keeps up: it is never the slow one.
        let _ = reader.next();
        if hub.stats().slow_closed == 1 {
            break;
        }
    }
    assert_eq!(
        hub.stats().slow_closed,
        1,
        "the member that never reads was not closed"
    );
    assert_eq!(drain_to_close(&mut slow), Some(CloseCode::TRY_AGAIN_LATER));
    wait_for("the slow member to leave", || hub.room_len(room) == 1);
}

impl Client {
    fn connect_addr(addr: std::net::SocketAddr, query: &str) -> Client {
        let server_url = format!("ws://{addr}/?{query}");
        let (ws, _) = connect(&server_url).unwrap();
        ws.get_ref().set_read_timeout(None).unwrap();
        let (mut reader, writer) = ws.split().unwrap();
        let (tx, heard) = mpsc::channel();
        thread::spawn(move || loop {
            match reader.read() {
                Ok(Message::Text(t)) if t.starts_with("m|") || t.starts_with("j|") => {
                    if tx.send(Ok(parse(&t))).is_err() {
                        return;
                    }
                }
                Ok(Message::Text(t)) => {
                    let heard = Heard::Msg {
                        room: String::new(),
                        offset: String::new(),
                        epoch: String::new(),
                        text: t,
                    };
                    if tx.send(Ok(heard)).is_err() {
                        return;
                    }
                }
                Ok(Message::Close(frame)) => {
                    let _ = tx.send(Err(frame.map(|f| f.code)));
                    return;
                }
                Ok(_) => {}
                Err(_) => {
                    let _ = tx.send(Err(None));
                    return;
                }
            }
        });
        Client { writer, heard }
    }
}

#[test]
fn slow_member_is_closed_with_1013_under_the_close_policy() {
    let hub = history_hub(HubConfig::default().slow(SlowPolicy::Close).queue_len(4));
    let server = server(&hub);
    slow_member_is_closed_with_1013(&hub, server.local_addr(), "plain", true);
    server.shutdown().unwrap();
}

#[test]
fn slow_member_of_a_room_with_history_is_closed_with_1013_never_skipped() {
    let hub = history_hub(with_history(1000).queue_len(4));
    let server = server(&hub);
    slow_member_is_closed_with_1013(&hub, server.local_addr(), "kept", false);
    server.shutdown().unwrap();
}

/// The poll engine: its `Sender`s are hub members, with the same history,
/// pacing and slow-member policy.
#[cfg(feature = "mio")]
mod poll_engine {
    use super::*;
    use rfc6455::handshake::Request;
    use rfc6455::poll::{Conn, Handler, PollHandle, PollServer};
    use rfc6455::protocol::MessageRef;

    struct Chat(ServerHub);

    impl Handler for Chat {
        type State = Member;

        fn on_open(&self, conn: &mut Conn<'_>, request: &Request) -> Member {
            let member = self.0.join_sink(None, conn.sender());
            if let Some(room) = query(&request.target, "room") {
                let since = query(&request.target, "since")
                    .map(|o| Since::new(&query(&request.target, "epoch").unwrap_or_default(), &o));
                member.join(&room, since);
            }
            member
        }

        fn on_message(&self, member: &mut Member, _: &mut Conn<'_>, message: MessageRef<'_>) {
            if let MessageRef::Text(text) = message {
                command(&self.0, member, text);
            }
        }
    }

    fn poll_server(
        hub: &ServerHub,
        max_pending: usize,
    ) -> (std::net::SocketAddr, PollHandle, thread::JoinHandle<()>) {
        let server = PollServer::bind("127.0.0.1:0", ServerConfig::default().keepalive(None))
            .unwrap()
            .max_pending(max_pending);
        let addr = server.local_addr();
        let handle = server.handle();
        let hub = hub.clone();
        let thread = thread::spawn(move || server.serve(Chat(hub)).unwrap());
        (addr, handle, thread)
    }

    #[test]
    fn a_recovery_many_times_max_pending_is_paced_on_the_poll_engine() {
        let hub = history_hub(with_history(10_000));
        let (addr, handle, thread) = poll_server(&hub, 64 * 1024);
        let text = "y".repeat(1000);
        for i in 0..3000 {
            publish(&hub, "big", &format!("{i} {text}"));
        }
        let probe = Client::connect_addr(addr, "room=big");
        let (_, epoch, _, _, _) = joined(probe.next());
        drop(probe);
        // 3 MB to recover through 64 KiB of output.
        let back = Client::connect_addr(addr, &format!("room=big&since=0-0&epoch={epoch}"));
        let (_, _, _, recovered, missed) = joined(back.next());
        assert_eq!((recovered.as_str(), missed.as_str()), ("true", "3000"));
        for i in 0..3000 {
            assert_eq!(message(back.next()).2, format!("{i} {text}"));
        }
        assert_eq!(hub.stats().slow_closed, 0);
        handle.shutdown();
        thread.join().unwrap();
    }

    #[test]
    fn slow_member_of_a_room_with_history_is_closed_with_1013_on_the_poll_engine() {
        let hub = history_hub(with_history(1000));
        let (addr, handle, thread) = poll_server(&hub, 256 * 1024);
        slow_member_is_closed_with_1013(&hub, addr, "kept", false);
        handle.shutdown();
        thread.join().unwrap();
    }

    #[test]
    fn slow_member_is_closed_with_1013_under_the_close_policy_on_the_poll_engine() {
        let hub = history_hub(HubConfig::default().slow(SlowPolicy::Close));
        let (addr, handle, thread) = poll_server(&hub, 256 * 1024);
        slow_member_is_closed_with_1013(&hub, addr, "plain", true);
        handle.shutdown();
        thread.join().unwrap();
    }
}
