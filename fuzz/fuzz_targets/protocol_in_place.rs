//! `receive` and `receive_in_place` must agree on every input: same
//! messages, same errors, same replies. See
//! `rfc6455_fuzz::run_in_place_differential`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfc6455::frame::Role;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the role, so one target covers both.
    if let Some((&role, rest)) = data.split_first() {
        let role = if role & 1 == 0 {
            Role::Server
        } else {
            Role::Client
        };
        rfc6455_fuzz::run_in_place_differential(role, rest);
    }
});
