//! An HTTP answer given later from another thread (`HttpResponse::later`):
//! the request gets it when it comes, a poll worker serves its other
//! connections meanwhile, a dropped `Responder` answers 500.

mod common;

use common::{raw_exchange, status};
use rfc6455::{HttpResponse, ServerConfig};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `/later` is answered by the test through the channel's responders,
/// `/drop` by a responder dropped at once, anything else at once.
fn config(responders: mpsc::Sender<rfc6455::server::Responder>) -> ServerConfig {
    let responders = Arc::new(Mutex::new(responders));
    ServerConfig::default().http_handler(move |request| match request.target.as_str() {
        "/later" => {
            let (response, responder) = HttpResponse::later();
            responders.lock().unwrap().send(responder).unwrap();
            response
        }
        "/drop" => HttpResponse::later().0,
        _ => HttpResponse::new(200, "text/plain", "now\n"),
    })
}

fn get(addr: SocketAddr, target: &str) -> String {
    raw_exchange(
        addr,
        format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
}

fn answers_later(addr: SocketAddr, responders: &mpsc::Receiver<rfc6455::server::Responder>) {
    let waiting = std::thread::spawn(move || get(addr, "/later"));
    let responder = responders.recv_timeout(Duration::from_secs(10)).unwrap();
    // Meanwhile the server answers others (on the poll engine, the same
    // single worker).
    assert_eq!(status(&get(addr, "/now")), 200);
    assert!(!waiting.is_finished());
    responder.send(HttpResponse::new(202, "text/plain", "later\n"));
    let response = waiting.join().unwrap();
    assert_eq!(status(&response), 202, "{response}");
    assert!(response.ends_with("later\n"));
    assert_eq!(status(&get(addr, "/drop")), 500);
}

#[test]
fn an_answer_given_later_reaches_its_request_on_the_threaded_server() {
    let (tx, rx) = mpsc::channel();
    let server = rfc6455::Server::bind("127.0.0.1:0", config(tx))
        .unwrap()
        .spawn(|_ws, _| Ok(()))
        .unwrap();
    answers_later(server.local_addr(), &rx);
    server.shutdown().unwrap();
}

#[cfg(feature = "mio")]
#[test]
fn an_answer_given_later_never_holds_up_the_poll_worker() {
    use rfc6455::poll::{Conn, Handler, PollServer};
    use rfc6455::protocol::MessageRef;
    struct Nothing;
    impl Handler for Nothing {
        type State = ();
        fn on_open(&self, _: &mut Conn<'_>, _: &rfc6455::handshake::Request) {}
        fn on_message(&self, _: &mut (), _: &mut Conn<'_>, _: MessageRef<'_>) {}
    }
    let (tx, rx) = mpsc::channel();
    let server = PollServer::bind("127.0.0.1:0", config(tx))
        .unwrap()
        .workers(1);
    let addr = server.local_addr();
    let handle = server.handle();
    let thread = std::thread::spawn(move || server.serve(Nothing).unwrap());
    answers_later(addr, &rx);
    handle.shutdown();
    thread.join().unwrap();
}
