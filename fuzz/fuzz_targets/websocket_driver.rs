//! The blocking `WebSocket`, server and client, over an in-memory stream
//! with fuzzer-chosen read sizes, short writes and interrupted reads, fed
//! small frames and 100 KiB ones (so the direct payload reads run), checked
//! against `Connection::receive` and `Connection::receive_in_place` on the
//! same bytes. See `rfc6455_fuzz::run_websocket_driver` for the input layout
//! and `rfc6455_fuzz::driver::check` for the properties.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rfc6455_fuzz::run_websocket_driver(data));
