//! A WebSocket relay (proxy): every client that connects gets its own
//! connection to an upstream server, and messages are relayed both ways as
//! they arrive, frame by frame, so a message of any size passes through in
//! memory that does not grow with it.
//!
//! ```text
//! cargo run --release --bin wsecho -- --listen 127.0.0.1:9001
//! cargo run --release --example relay -- --listen 127.0.0.1:9003 --upstream ws://127.0.0.1:9001/
//! cargo run --release --bin wsclient -- ws://127.0.0.1:9003/      # talks to wsecho through the relay
//! ```
//!
//! Messages up to 64 KiB are relayed whole (one allocation-free read, one
//! write); larger ones piece by piece, each piece written as a fragment as
//! soon as it is read. Pings are answered on each side by the library; a
//! close on either side is passed on.

use rfc6455::frame::OpCode;
use rfc6455::protocol::{MessageRef, Piece, Streaming};
use rfc6455::{ClientConfig, Error, Reader, Server, ServerConfig, Stream, Writer};
use std::process::ExitCode;
use std::thread;

/// Messages larger than this are relayed as they arrive.
const STREAM_ABOVE: usize = 64 << 10;

const USAGE: &str = "usage: relay --listen ADDR --upstream ws://HOST:PORT/PATH";

/// Relays everything `from` receives to `to` until the connection ends.
fn pump(mut from: Reader<Stream>, to: Writer<Stream>) -> rfc6455::Result<()> {
    // The opcode of a relayed message's first fragment, until it is sent.
    let mut first = None;
    loop {
        match from.read_piece(Streaming::Above(STREAM_ABOVE))? {
            Piece::Message(message @ (MessageRef::Text(_) | MessageRef::Binary(_))) => {
                to.send_ref(message)?
            }
            Piece::Message(MessageRef::Close(frame)) => {
                // Passed on; each side completes its own close handshake.
                let _ = to.send_ref(MessageRef::Close(frame));
            }
            // Pings are answered where they arrive; pongs end there.
            Piece::Message(_) => {}
            Piece::Start(opcode) => first = Some(opcode),
            Piece::Data(bytes) => {
                let opcode = first.take().unwrap_or(OpCode::Continuation);
                to.send_frame(opcode, bytes, false)?
            }
            Piece::End => {
                let opcode = first.take().unwrap_or(OpCode::Continuation);
                to.send_frame(opcode, &[], true)?
            }
        }
    }
}

fn main() -> ExitCode {
    let mut listen = None;
    let mut upstream = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next(),
            "--upstream" => upstream = args.next(),
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let (Some(listen), Some(upstream)) = (listen, upstream) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let server = match Server::bind(&listen, ServerConfig::default()) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("relay: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "relay: listening on ws://{}/, relaying to {upstream}",
        server.local_addr()
    );
    let result = server.serve(move |client, request| {
        let url = format!("{}{}", upstream.trim_end_matches('/'), request.target);
        let (upstream_ws, _) = rfc6455::connect_with(&url, &ClientConfig::default())?;
        let (client_reader, client_writer) = client.split()?;
        let (upstream_reader, upstream_writer) = upstream_ws.split()?;
        let back = thread::spawn(move || pump(upstream_reader, client_writer));
        let forth = pump(client_reader, upstream_writer);
        let back = back.join().unwrap_or(Err(Error::AlreadyClosed));
        match (forth, back) {
            (Err(Error::ConnectionClosed), _) | (_, Err(Error::ConnectionClosed)) => Ok(()),
            (Err(e), _) | (_, Err(e)) => Err(e),
            (Ok(()), Ok(())) => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("relay: {e}");
            ExitCode::FAILURE
        }
    }
}
