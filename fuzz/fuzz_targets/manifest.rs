//! `ferry.yaml`, as `ferry validate` reads it, down to the rendered diagnostics; a manifest
//! that validates goes on through what `ferry plan` and `ferry synth` make of it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let loaded = ferry_manifest::from_str("ferry.yaml", text);
    let _ = loaded.render(false);
    let Some(manifest) = &loaded.manifest else {
        return;
    };
    let Some(names) = ferry_plan::Names::new(manifest, None) else {
        return;
    };
    let foundation = ferry_plan::plan(&names);
    let _ = ferry_plan::synth::terraform::terraform(&foundation, &names);
    let _ = ferry_plan::synth::codepipeline::codepipeline(&names);
});
