//! Parquet tables through the front door: numbers (and a label column) and the text fields of
//! the table encoding, a chunk at a time.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = hourglass_fuzz::file("a.parquet", data);
    let _ = hourglass::data::load(&path, &Default::default());
    let _ = hourglass::data::parquet::read_raw(&path, &Default::default());
});
