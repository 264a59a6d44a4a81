//! A real browser against our servers: Debian's chromium, driven by npm
//! `playwright-core` from `.ci/peers/browser_test.js` (playwright cannot
//! download a browser here, so it launches `/usr/bin/chromium`).
//!
//! - `chat_page_in_two_tabs`: the `chat` example's page in two tabs; what
//!   one tab sends shows up in the other, and so does `GET /receive?msg=`.
//!   One tab is saved as a screenshot: `docs/chat.png` when
//!   `RFC6455_SCREENSHOT=1`, else under `target/tmp/` (tests do not dirty
//!   the tree).
//! - `browser_echoes_through_wsecho`: a page (from the chat server's origin:
//!   a page must come from 127.0.0.1 to open a WebSocket to 127.0.0.1)
//!   echoes text and binary messages up to 1 MiB through `wsecho` and
//!   compares them byte for byte in the page.
//!
//! The browser and the Node packages come from `.ci/peers.sh`; if they are
//! missing the first test runs it once (root and the network needed for
//! chromium). If they still cannot be had the tests fail, saying so, unless
//! `RFC6455_SKIP_BROWSER=1`.

mod common;

use common::{install_peers, node_missing, repo};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// A cold browser start, two tabs and a few megabytes of echoes.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(150);
/// How long a server may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Finding (or installing) node, playwright-core and chromium

struct Browser {
    node_dir: PathBuf,
    chromium: PathBuf,
}

/// The browser setup, or `None` when explicitly skipped. Panics, saying
/// why, when it cannot be found or installed.
fn browser() -> Option<&'static Browser> {
    if std::env::var("RFC6455_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!("RFC6455_SKIP_BROWSER=1: skipping this browser test");
        return None;
    }
    static BROWSER: OnceLock<Result<Browser, String>> = OnceLock::new();
    match BROWSER.get_or_init(find_browser) {
        Ok(browser) => Some(browser),
        Err(why) => panic!(
            "browser test setup missing: {why}\n\
             Run `.ci/peers.sh` as root (it installs Debian's chromium and \
             npm playwright-core), or set RFC6455_SKIP_BROWSER=1 to skip."
        ),
    }
}

fn find_browser() -> Result<Browser, String> {
    let explicit = std::env::var_os("RFC6455_PEERS_NODE_DIR").is_some()
        || std::env::var_os("RFC6455_CHROMIUM").is_some();
    let browser = Browser {
        node_dir: std::env::var_os("RFC6455_PEERS_NODE_DIR")
            .map_or_else(|| repo().join(".ci").join("peers"), PathBuf::from),
        chromium: std::env::var_os("RFC6455_CHROMIUM")
            .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from),
    };
    match missing(&browser) {
        None => return Ok(browser),
        Some(why) if explicit => return Err(why),
        Some(why) => eprintln!("{why}: running .ci/peers.sh once"),
    }
    install_peers(&[])?;
    match missing(&browser) {
        None => Ok(browser),
        Some(why) => Err(format!("{why}, even after .ci/peers.sh")),
    }
}

fn missing(browser: &Browser) -> Option<String> {
    let playwright = browser
        .node_dir
        .join("node_modules")
        .join("playwright-core");
    if !playwright.join("package.json").is_file() {
        return Some(format!("no playwright-core at {}", playwright.display()));
    }
    if !browser.chromium.is_file() {
        return Some(format!("no browser at {}", browser.chromium.display()));
    }
    node_missing()
}

// ---------------------------------------------------------------------------
// Servers under test, as child processes

/// A child process, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `program` and waits for the stderr line that contains `marker`
/// followed by the `IP:PORT` it listens on.
fn start_server(program: &Path, args: &[&str], marker: &str) -> Server {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let marker = marker.to_owned();
    thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            eprintln!("  | {line}");
            if !sent {
                let addr = line.split_once(&marker).and_then(|(_, rest)| {
                    let end = rest.find(['/', ' ']).unwrap_or(rest.len());
                    rest[..end].parse::<SocketAddr>().ok()
                });
                if let Some(addr) = addr {
                    let _ = tx.send(addr);
                    sent = true;
                }
            }
        }
    });
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(addr) => Server { child, addr },
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} did not say where it listens", program.display());
        }
    }
}

fn chat_example() -> PathBuf {
    common::example_binary("chat")
}

/// Runs `browser_test.js` with `args`; panics with its output unless it
/// exits 0 in time.
fn run_browser_test(browser: &Browser, args: &[&str]) {
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg(repo().join(".ci").join("peers").join("browser_test.js"))
        .args(args)
        .env("NODE_PATH", browser.node_dir.join("node_modules"))
        .env("RFC6455_CHROMIUM", &browser.chromium)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node browser_test.js");
    let collect = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut out = String::new();
            let _ = pipe.read_to_string(&mut out);
            out
        })
    };
    let stdout = collect(Box::new(child.stdout.take().unwrap()));
    let stderr = collect(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status);
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    eprintln!("{stderr}");
    match status {
        Some(s) if s.success() && stdout.contains("browser_test: ok") => {
            eprintln!("browser_test {args:?}: ok in {:?}", started.elapsed());
        }
        Some(s) => panic!("browser_test {args:?} failed ({s}):\n{stdout}{stderr}"),
        None => panic!("browser_test {args:?} timed out:\n{stdout}{stderr}"),
    }
}

// ---------------------------------------------------------------------------

#[test]
fn chat_page_in_two_tabs() {
    let Some(browser) = browser() else { return };
    let chat = start_server(
        &chat_example(),
        &["--listen", "127.0.0.1:0"],
        "open http://",
    );
    let screenshot = if std::env::var("RFC6455_SCREENSHOT").as_deref() == Ok("1") {
        let docs = repo().join("docs");
        std::fs::create_dir_all(&docs).expect("create docs/");
        docs.join("chat.png")
    } else {
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("chat.png")
    };
    let _ = std::fs::remove_file(&screenshot);
    let page = format!("http://{}/", chat.addr);
    run_browser_test(browser, &["chat", &page, screenshot.to_str().unwrap()]);
    let png = std::fs::read(&screenshot).expect("the screenshot was written");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        screenshot.display()
    );
}

#[test]
fn browser_echoes_through_wsecho() {
    let Some(browser) = browser() else { return };
    // Any page from 127.0.0.1 will do as the origin; the chat page is one.
    let chat = start_server(
        &chat_example(),
        &["--listen", "127.0.0.1:0"],
        "open http://",
    );
    let echo = start_server(
        Path::new(env!("CARGO_BIN_EXE_wsecho")),
        &["--listen", "127.0.0.1:0"],
        "listening on ws://",
    );
    let page = format!("http://{}/", chat.addr);
    let ws = format!("ws://{}/", echo.addr);
    run_browser_test(browser, &["echo", &page, &ws]);
}
