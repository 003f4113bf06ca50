//! A buildspec, as a build reads it, down to the rendered diagnostics.
#![no_main]

use ferry_yaml::{Limits, SourceFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = SourceFile::from_bytes("buildspec.yml", data.to_vec(), &Limits::default())
    else {
        return;
    };
    let (_, diagnostics) = ferry_engine::buildspec::parse(&file);
    let _ = ferry_yaml::render_text(&file, &diagnostics, false);
});
