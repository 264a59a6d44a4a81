//! A client `Connection` fed arbitrary bytes in fuzzer-chosen chunks, with
//! small limits; see `rfc6455_fuzz::run_connection` for the input layout and
//! the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfc6455::frame::Role;

fuzz_target!(|data: &[u8]| rfc6455_fuzz::run_connection(Role::Client, data));
