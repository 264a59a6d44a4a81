//! Hub broadcasts with permessage-deflate (RFC 7692): what a broadcast
//! costs. Members whose server-side compressor resets after every message
//! (`server_no_context_takeover`) share one compressed form per distinct
//! window and level, made once (counted with
//! `PreparedMessage::encodings`); members with context takeover compress
//! each for themselves, because each compressor has its own history. Every
//! member is a real client of ours with compression on, behind a tap that
//! checks the messages arrived compressed. Only built with
//! `--features deflate`.
#![cfg(feature = "deflate")]

mod common;

use common::tap::{tap, Seen};
use common::{client_config, read_skipping_pings, test_config};
use rfc6455::handshake::DeflateConfig;
use rfc6455::protocol::PreparedMessage;
use rfc6455::{connect_with, ClientWebSocket, Hub, Message, RunningServer, Server, Stream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A server (compression accepted with the defaults: 12-bit windows,
/// context takeover unless the client asks otherwise) whose every
/// connection joins `hub` and stays until the client leaves. What a client
/// sends is echoed to it alone, through the member's own compressor, so
/// that broadcasts and the member's own messages interleave on the wire.
fn hub_server(hub: &Hub<Stream>) -> RunningServer {
    let hub = hub.clone();
    Server::bind(
        "127.0.0.1:0",
        test_config().deflate(Some(DeflateConfig::default())),
    )
    .unwrap()
    .spawn(move |ws, _| {
        let (mut reader, writer) = ws.split()?;
        let own = writer.clone();
        let _member = hub.join(writer);
        loop {
            let message = reader.read()?;
            if message.is_data() {
                own.send(message)?;
            }
        }
    })
    .unwrap()
}

/// Connects one client per config through a tap and waits until all are
/// members of `hub`.
fn members(
    hub: &Hub<Stream>,
    server: &RunningServer,
    configs: &[DeflateConfig],
) -> (Vec<ClientWebSocket>, Arc<Seen>) {
    let (addr, seen) = tap(server.local_addr());
    let clients = configs
        .iter()
        .map(|deflate| {
            let config = client_config().deflate(Some(*deflate));
            connect_with(&format!("ws://{addr}/"), &config).unwrap().0
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while hub.len() < configs.len() {
        assert!(Instant::now() < deadline, "clients did not all join");
        std::thread::sleep(Duration::from_millis(5));
    }
    seen.assert_deflate_negotiated();
    (clients, seen)
}

/// Broadcast material: JSON-like text (compressible), the same again (a
/// member with context takeover sends the repeat as back-references), and
/// 64 KiB of random bytes (compressed it is still over 16 KiB, so a member
/// writes the shared bytes straight from the prepared message).
fn messages() -> Vec<Message> {
    let text: String = (0..100)
        .map(|i| format!("{{\"seq\":{i},\"room\":\"lobby\",\"text\":\"hello everyone\"}}"))
        .collect();
    let random = common::random_bytes(&mut 0x2545_f491, 65536);
    vec![
        Message::Text(text.clone()),
        Message::Text(text),
        Message::Binary(random),
        Message::Text(String::new()),
    ]
}

/// Broadcasts each message, checks every member decoded it, and after each
/// has every member's own message echoed to it (through its own
/// compressor: a member with context takeover that had been sent a shared
/// compression would decode its next own message wrong, since the history
/// its compressor refers to would not be what its peer saw). Returns how
/// many shared encodings each broadcast made.
fn broadcast_all(hub: &Hub<Stream>, clients: &mut [ClientWebSocket]) -> Vec<usize> {
    // Not like any broadcast, and well inside a 4 KiB window: a compressor
    // with context sends its repeats as back-references.
    let ack = Message::Text("{\"ack\":true,\"from\":\"member\"} ".repeat(30));
    messages()
        .into_iter()
        .map(|message| {
            let prepared = Arc::new(PreparedMessage::new(message.clone()));
            let delivery = hub.broadcast_prepared(Arc::clone(&prepared));
            assert_eq!(delivery.queued, clients.len());
            for (i, client) in clients.iter_mut().enumerate() {
                let got = read_skipping_pings(client);
                assert!(got == message, "member {i} decoded a different broadcast");
                client.send(ack.clone()).unwrap();
                let echoed = read_skipping_pings(client);
                assert!(echoed == ack, "member {i} decoded a different echo");
            }
            prepared.encodings()
        })
        .collect()
}

/// A hub with a member per config; every broadcast made `encodings` shared
/// compressions, and every message reached every member compressed.
fn check_broadcasts(configs: &[DeflateConfig], encodings: usize) {
    let hub = Hub::new();
    let server = hub_server(&hub);
    let (mut clients, seen) = members(&hub, &server, configs);
    // The server resets its compressor for exactly the clients that asked.
    let mut answered: Vec<bool> = seen
        .extensions()
        .iter()
        .map(|e| e.contains("server_no_context_takeover"))
        .collect();
    let mut asked: Vec<bool> = configs.iter().map(|c| c.peer_no_context_takeover).collect();
    asked.sort_unstable();
    answered.sort_unstable();
    assert_eq!(asked, answered, "{:?}", seen.extensions());
    let made = broadcast_all(&hub, &mut clients);
    assert_eq!(made, [encodings; 4], "shared compressions per broadcast");
    // Four broadcasts and four echoes per member.
    let down = seen.to_client();
    let all = configs.len() * 8;
    assert_eq!((down.messages, down.compressed), (all, all), "{down:?}");
}

#[test]
fn a_broadcast_to_members_without_context_takeover_is_compressed_once() {
    let no_takeover = DeflateConfig::client().peer_no_context_takeover(true);
    check_broadcasts(&[no_takeover; 6], 1);
}

#[test]
fn members_with_context_takeover_compress_for_themselves() {
    let takeover = DeflateConfig::client();
    let no_takeover = DeflateConfig::client().peer_no_context_takeover(true);
    let small_window = no_takeover.peer_window_bits(10);
    // Two shareable settings (12- and 10-bit windows): one compression
    // each; the three members with context takeover compress on their own,
    // and still decode every message, their own between broadcasts too.
    let settings = [takeover, no_takeover, small_window];
    let configs: Vec<DeflateConfig> = settings.iter().cycle().take(7).copied().collect();
    check_broadcasts(&configs, 2);
}

#[test]
fn a_broadcast_to_members_with_context_takeover_only_shares_nothing() {
    check_broadcasts(&[DeflateConfig::client(); 3], 0);
}
