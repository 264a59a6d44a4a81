//! The servers the bench compares, each run in a child process of its own
//! (so that its CPU time is its own): ours, the poll engine, tungstenite,
//! fastwebsockets on tokio, and the floors of the two architectures.

use super::HANDSHAKE_ACCEPT;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;

pub(super) fn start_ours() -> SocketAddr {
    let server =
        rfc6455::Server::bind("127.0.0.1:0", rfc6455::ServerConfig::default()).expect("bind ours");
    let addr = server.local_addr();
    // The same handler as `src/bin/wsecho.rs`.
    let running = server
        .spawn(|mut ws, _request| loop {
            let (message, mut sender) = ws.read_ref()?;
            if message.is_data() {
                sender.write(message)?;
            }
        })
        .expect("spawn ours");
    // Runs until the process exits.
    std::mem::forget(running);
    addr
}

#[cfg(feature = "mio")]
pub(super) fn start_poll() -> Option<SocketAddr> {
    use rfc6455::poll::{Conn, Handler, PollServer};
    use rfc6455::protocol::MessageRef;

    // The same handler as `wsecho --engine poll`.
    struct Echo;
    impl Handler for Echo {
        type State = ();
        fn on_open(&self, _: &mut Conn<'_>, _: &rfc6455::handshake::Request) {}
        fn on_message(&self, _: &mut (), conn: &mut Conn<'_>, message: MessageRef<'_>) {
            let _ = conn.send(message);
        }
    }
    let server =
        PollServer::bind("127.0.0.1:0", rfc6455::ServerConfig::default()).expect("bind poll");
    let server = server.workers(poll_workers());
    let addr = server.local_addr();
    // Runs until the process exits.
    std::mem::forget(server.spawn(Echo).expect("spawn poll"));
    Some(addr)
}

#[cfg(not(feature = "mio"))]
pub(super) fn start_poll() -> Option<SocketAddr> {
    eprintln!("echo bench: no poll engine in this build (cargo bench --features mio)");
    None
}

/// The poll engine's floor, with the same worker count.
#[cfg(feature = "mio")]
pub(super) fn start_mio_floor() -> Option<SocketAddr> {
    Some(super::floor_mio::start(poll_workers()))
}

#[cfg(not(feature = "mio"))]
pub(super) fn start_mio_floor() -> Option<SocketAddr> {
    None
}

/// Worker threads of the poll engine and its floor: one per core unless
/// `ECHO_POLL_WORKERS` says otherwise.
#[cfg(feature = "mio")]
fn poll_workers() -> usize {
    std::env::var("ECHO_POLL_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| thread::available_parallelism().map_or(1, |n| n.get()))
}

/// fastwebsockets as its echo example serves: hyper's HTTP/1 server with
/// upgrades on tokio's multi-threaded runtime, a task per connection.
pub(super) fn start_fastwebsockets() -> SocketAddr {
    use fastwebsockets::{upgrade, FragmentCollector, OpCode, WebSocketError};
    use http_body_util::Empty;
    use hyper::body::{Bytes, Incoming};
    use hyper::{Request, Response};

    async fn handle_client(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
        let mut ws = FragmentCollector::new(fut.await?);
        loop {
            let frame = ws.read_frame().await?;
            match frame.opcode {
                OpCode::Close => break,
                OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
                _ => {}
            }
        }
        Ok(())
    }

    async fn server_upgrade(
        mut req: Request<Incoming>,
    ) -> Result<Response<Empty<Bytes>>, WebSocketError> {
        let (response, fut) = upgrade::upgrade(&mut req)?;
        tokio::spawn(async move {
            let _ = handle_client(fut).await;
        });
        Ok(response)
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind fastwebsockets");
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        runtime.block_on(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, hyper::service::service_fn(server_upgrade))
                        .with_upgrades()
                        .await;
                });
            }
        })
    });
    addr
}

pub(super) fn start_tungstenite() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind tungstenite");
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let Ok(mut ws) = tungstenite::accept(stream) else {
                    return;
                };
                loop {
                    match ws.read() {
                        Ok(msg) if msg.is_binary() || msg.is_text() => {
                            if ws.send(msg).is_err() {
                                break;
                            }
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            });
        }
    });
    addr
}

pub(super) fn start_floor() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind floor");
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            thread::spawn(move || {
                let _ = floor_echo(stream);
            });
        }
    });
    addr
}

/// The floor's connection: every whole frame of each read echoed in one write.
fn floor_echo(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; 64 << 10];
    let mut have = 0;
    // The load generator sends its head and waits for ours.
    while !buf[..have].windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf[have..])?;
        if n == 0 {
            return Ok(());
        }
        have += n;
    }
    have = 0;
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Accept: {HANDSHAKE_ACCEPT}\r\n\r\n"
    );
    stream.write_all(head.as_bytes())?;
    let mut out = Vec::with_capacity(64 << 10);
    loop {
        if have == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = stream.read(&mut buf[have..])?;
        if n == 0 {
            return Ok(());
        }
        have += n;
        let mut pos = 0;
        // Masked client frames: 2-byte head, 16/64-bit length, 4-byte key.
        while have - pos >= 6 {
            let b = &buf[pos..have];
            let (len, at) = match b[1] & 0x7f {
                126 if b.len() >= 8 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
                127 if b.len() >= 14 => (
                    u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                126 | 127 => break,
                l => (l as usize, 2),
            };
            if b.len() < at + 4 + len {
                if buf.len() < at + 4 + len {
                    buf.resize(at + 4 + len, 0);
                }
                break;
            }
            let key = [b[at], b[at + 1], b[at + 2], b[at + 3]];
            out.push(b[0]);
            match len {
                0..=125 => out.push(len as u8),
                126..=65535 => {
                    out.push(126);
                    out.extend_from_slice(&(len as u16).to_be_bytes());
                }
                _ => {
                    out.push(127);
                    out.extend_from_slice(&(len as u64).to_be_bytes());
                }
            }
            let start = out.len();
            out.extend_from_slice(&b[at + 4..at + 4 + len]);
            // The crate's word-at-a-time unmasking: a floor must not lose
            // to us on a byte loop.
            rfc6455::frame::apply_mask(&mut out[start..], key);
            pos += at + 4 + len;
            if b[0] & 0x0f == 0x8 {
                // A close frame: echoed above; the server closes TCP first.
                stream.write_all(&out)?;
                return Ok(());
            }
        }
        buf.copy_within(pos..have, 0);
        have -= pos;
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }
    }
}
