//! `wsclient`: an interactive WebSocket client. Lines from stdin go out as
//! text messages; received messages are printed to stdout, one per line.
//!
//! ```text
//! wsclient ws://127.0.0.1:9001/
//! printf 'a\nb\n' | wsclient ws://127.0.0.1:9001/
//! ```
//!
//! `args` reads the flags, `connect` sets up the library's reconnecting
//! client and explains its failures, `input` turns lines into messages,
//! `printer` shows what arrives (the client's callbacks, on its reading
//! thread), and `session` runs the rest on the main thread.

mod args;
#[path = "../common/mod.rs"]
mod common;
mod connect;
mod input;
mod printer;
mod session;

use session::{Event, Session};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{mpsc, Arc};

fn main() -> ExitCode {
    let options = match args::parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("wsclient: {e}");
            return ExitCode::from(2);
        }
    };
    let (events, inbox) = mpsc::channel::<Event>();
    // Before the first connect, so that a signal never finds us unprepared.
    let open = Arc::new(AtomicBool::new(false));
    let signalled = Arc::new(AtomicI32::new(0));
    install_signal_handler(events.clone(), Arc::clone(&open), Arc::clone(&signalled));
    let client = match connect::client(&options) {
        Ok(client) => client,
        Err(e) => {
            eprintln!(
                "wsclient: cannot connect to {}: {}",
                options.url,
                connect::explain(&e)
            );
            return ExitCode::FAILURE;
        }
    };
    let handle = client.handle();
    let gate = Arc::new(input::Gate::default());
    let mode = input::Mode {
        binary: options.binary,
        slash: options.slash,
    };
    input::spawn_reader(events.clone(), mode, Arc::clone(&gate));
    let settings = printer::Settings {
        url: options.url.clone(),
        output: printer::Output::for_stdout(options.null),
        reconnect: options.reconnect,
        verbose: options.verbose,
        show_pings: options.show_pings,
        count: options.count,
        save: options.save.clone(),
    };
    let failed = Arc::new(AtomicBool::new(false));
    let printer = printer::Printer::new(
        settings,
        events.clone(),
        open,
        Arc::clone(&failed),
        handle.clone(),
    );
    let running = match client.spawn(printer) {
        Ok(running) => running,
        Err(e) => {
            eprintln!("wsclient: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The client's end, as an event.
    std::thread::spawn(move || {
        let _ = events.send(Event::Finished(running.join()));
    });
    Session::new(&options, handle, inbox, gate, signalled, failed).run()
}

/// SIGINT and SIGTERM: with a connection open, the session closes it
/// (`Event::Interrupted`); with none (connecting, or waiting to reconnect)
/// there is nothing to close, so exit at once. A second signal always exits
/// at once: the user is done waiting.
#[cfg(feature = "signals")]
fn install_signal_handler(
    events: mpsc::Sender<Event>,
    open: Arc<AtomicBool>,
    signalled: Arc<AtomicI32>,
) {
    common::on_signal("wsclient", move |signal| {
        if !open.load(Ordering::Acquire) {
            std::process::exit(128 + signal);
        }
        signalled.store(signal, Ordering::Release);
        eprintln!("wsclient: interrupted; closing (again to quit now)");
        let _ = events.send(Event::Interrupted(signal));
    });
}

#[cfg(not(feature = "signals"))]
fn install_signal_handler(
    _events: mpsc::Sender<Event>,
    _open: Arc<AtomicBool>,
    _signalled: Arc<AtomicI32>,
) {
}
