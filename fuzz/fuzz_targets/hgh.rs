//! Binary code files (`.hgh`), then a search of the first code against all.
#![no_main]
use hourglass::hash::{self, Codes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = hourglass_fuzz::file("c.hgh", data);
    if let Ok(codes) = Codes::load(&path)
        && codes.rows() > 0
    {
        let q = codes.row(0).to_vec();
        let _ = hash::search(&codes, &q, 5, Some(3));
    }
});
