//! Labels files (one label per line, an optional header), for a row count chosen by the first
//! byte.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((rows, text)) = hourglass_fuzz::split(data) else { return };
    let path = hourglass_fuzz::file("labels.csv", text);
    let _ = hourglass::data::load_labels(&path);
    let _ = hourglass::data::load_labels_for(&path, usize::from(rows));
});
