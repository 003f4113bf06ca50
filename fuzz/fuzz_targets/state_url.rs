//! A state URL (`--state-url`, `FERRY_STATE_URL`), taken apart for its TLS settings.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(url) = std::str::from_utf8(data) else {
        return;
    };
    let _ = ferry_engine::store::tls::options(url);
});
