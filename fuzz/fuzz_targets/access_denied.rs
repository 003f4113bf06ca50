//! An AccessDenied message, as `ferry doctor` reads it, diagnosed against the example's
//! foundation.
#![no_main]

use std::sync::LazyLock;

use ferry_manifest::Manifest;
use ferry_plan::{Foundation, Names};
use libfuzzer_sys::fuzz_target;

static MANIFEST: LazyLock<Manifest> = LazyLock::new(|| {
    let text = include_str!("../../examples/orders/ferry.yaml");
    ferry_manifest::from_str("ferry.yaml", text)
        .manifest
        .expect("the example manifest is valid")
});
static FOUNDATION: LazyLock<Foundation> = LazyLock::new(|| ferry_plan::plan(&names()));

fn names() -> Names<'static> {
    Names::new(&MANIFEST, None).expect("the example has a shared account")
}

fuzz_target!(|data: &[u8]| {
    let Ok(message) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(denial) = ferry_plan::doctor::parse(message) {
        let _ = ferry_plan::doctor::diagnose(denial, &FOUNDATION, &names());
    }
});
