//! Runs every case of an Autobahn fuzzing server against this crate's client.
//!
//! ```text
//! kosoku -m fuzzingserver 127.0.0.1:9001 -x '12.*' -x '13.*' -o reports &
//! cargo run --release --example autobahn_client -- ws://127.0.0.1:9001
//! ```
//!
//! With `--deflate` (and `--features deflate`) it offers permessage-deflate
//! (RFC 7692), for all 517 cases including 12.* and 13.*:
//!
//! ```text
//! kosoku -m fuzzingserver 127.0.0.1:9001 -o reports &
//! cargo run --release --features deflate --example autobahn_client -- --deflate ws://127.0.0.1:9001
//! ```

use rfc6455::handshake::DeflateConfig;
use rfc6455::protocol::SizeLimits;
use rfc6455::{connect_with, ClientConfig, Error, Message, WebSocketConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Set by `--deflate`.
static DEFLATE: AtomicBool = AtomicBool::new(false);

const AGENT: &str = "rfc6455";

fn config() -> ClientConfig {
    // Autobahn's largest case message is 16 MiB.
    let protocol = SizeLimits::default()
        .max_frame_size(64 << 20)
        .max_message_size(64 << 20);
    let deflate = DEFLATE.load(Ordering::Relaxed).then(DeflateConfig::client);
    ClientConfig::default()
        .read_timeout(Some(Duration::from_secs(60)))
        .websocket(WebSocketConfig::default().protocol(protocol))
        .deflate(deflate)
}

/// Echoes every data message until the connection ends.
fn echo(url: &str) -> Result<(), Error> {
    let (mut ws, _) = connect_with(url, &config())?;
    loop {
        match ws.read() {
            Ok(message) if message.is_data() => ws.write(message)?,
            Ok(_) => {}
            Err(Error::ConnectionClosed) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

fn case_count(base: &str) -> Result<u32, Error> {
    let (mut ws, _) = connect_with(&format!("{base}/getCaseCount"), &config())?;
    let mut count = None;
    loop {
        match ws.read() {
            Ok(Message::Text(text)) => count = text.trim().parse().ok(),
            Ok(_) => {}
            Err(Error::ConnectionClosed) => break,
            // Once the count is in, how the server ends the connection does
            // not matter (kosoku may reset it right after its close frame).
            Err(Error::Io(_)) if count.is_some() => break,
            Err(e) => return Err(e),
        }
    }
    count.ok_or_else(|| Error::Url("getCaseCount returned no number".into()))
}

fn main() {
    let mut base = "ws://127.0.0.1:9001".to_owned();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--deflate" if !cfg!(feature = "deflate") => {
                eprintln!("autobahn_client: --deflate needs --features deflate");
                std::process::exit(2);
            }
            "--deflate" => DEFLATE.store(true, Ordering::Relaxed),
            _ => base = arg,
        }
    }
    let base = base.trim_end_matches('/');
    let count = match case_count(base) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("autobahn_client: cannot get the case count from {base}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("autobahn_client: {count} cases");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={AGENT}");
        if let Err(e) = echo(&url) {
            // Failing cases are expected to end in errors; the report judges.
            eprintln!("autobahn_client: case {case}: {e}");
        }
    }
    match echo(&format!("{base}/updateReports?agent={AGENT}")) {
        Ok(()) => {}
        // Some fuzzing servers (kosoku among them) write the report and drop
        // the TCP connection without a close frame; the request was served.
        Err(Error::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            ) => {}
        Err(e) => {
            eprintln!("autobahn_client: updateReports: {e}");
            std::process::exit(1);
        }
    }
    eprintln!("autobahn_client: done");
}
