//! NPY arrays through the front door (header peek, then the reader).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = hourglass_fuzz::file("a.npy", data);
    let _ = hourglass::data::peek_width(&path);
    let _ = hourglass::data::load(&path, &Default::default());
});
