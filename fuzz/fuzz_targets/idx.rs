//! IDX files, plain or gzip-compressed (chosen by the content's magic bytes, as the reader
//! does), through the front door (header peek, then the reader).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let name = if data.starts_with(&[0x1f, 0x8b]) { "a-idx3-ubyte.gz" } else { "a-idx3-ubyte" };
    let path = hourglass_fuzz::file(name, data);
    let _ = hourglass::data::peek_width(&path);
    let _ = hourglass::data::load(&path, &Default::default());
});
