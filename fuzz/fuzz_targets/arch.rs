//! Architecture files (TOML), against flat or image data chosen by the first byte; what
//! parses is planned and built (allocations are bounded by the memory limit).
#![no_main]
use hourglass::model::arch::Dims;
use hourglass::model::toml;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hourglass_fuzz::setup();
    let Some((sel, text)) = hourglass_fuzz::split(data) else { return };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let dims = match sel % 3 {
        0 => Dims::Flat(784),
        1 => Dims::Image((1, 28, 28)),
        _ => Dims::Image((3, 8, 8)),
    };
    if let Ok(config) = toml::parse(text, dims) {
        let _ = config.init(7);
    }
});
