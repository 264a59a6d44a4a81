//! Chromium for the browser tests: finding (or installing) Debian's
//! chromium and npm `playwright-core`, starting our servers as child
//! processes, and running `.ci/peers/browser_test.js`.
//!
//! The browser and the Node packages come from `.ci/peers.sh`; if they are
//! missing, the first test runs it once (root and the network are needed
//! for chromium). If they still cannot be had the tests fail, saying so,
//! unless `RFC6455_SKIP_BROWSER=1`, which skips them with a message.

use super::{install_peers, node_missing, repo};
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

/// Where node finds playwright-core, and the browser it launches.
pub struct Browser {
    node_dir: PathBuf,
    chromium: PathBuf,
}

/// The browser setup, or `None` when explicitly skipped. Panics, saying
/// why, when it cannot be found or installed.
pub fn browser() -> Option<&'static Browser> {
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
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `program` and waits for the stderr line that contains `marker`
/// followed by the `IP:PORT` it listens on.
pub fn start_server(program: &Path, args: &[&str], marker: &str) -> Server {
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

/// The `chat` example, built with this test's features.
pub fn chat_example() -> PathBuf {
    super::example_binary("chat")
}

/// The two servers a page echo test needs: the chat example, whose page
/// serves as the origin (a page must come from 127.0.0.1 to open a
/// WebSocket to 127.0.0.1), and `wsecho` with `flags`.
pub fn page_and_wsecho(flags: &[&str]) -> (Server, Server) {
    let chat = start_server(
        &chat_example(),
        &["--listen", "127.0.0.1:0"],
        "open http://",
    );
    let args: Vec<&str> = ["--listen", "127.0.0.1:0"]
        .iter()
        .chain(flags)
        .copied()
        .collect();
    let echo = start_server(
        Path::new(env!("CARGO_BIN_EXE_wsecho")),
        &args,
        "listening on ws://",
    );
    (chat, echo)
}

/// Runs `browser_test.js` with `args`; panics with its output unless it
/// exits 0 in time. Returns what it printed on stdout.
pub fn run_browser_test(browser: &Browser, args: &[&str]) -> String {
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
            stdout
        }
        Some(s) => panic!("browser_test {args:?} failed ({s}):\n{stdout}{stderr}"),
        None => panic!("browser_test {args:?} timed out:\n{stdout}{stderr}"),
    }
}
