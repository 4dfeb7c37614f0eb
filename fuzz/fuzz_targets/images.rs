//! Image folders: the input is one file (PNG or JPEG by its magic bytes) in a folder, read
//! as the data of a model, with or without a resize chosen by the first byte.
#![no_main]
use hourglass::data::images;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((sel, bytes)) = hourglass_fuzz::split(data) else { return };
    let dir = hourglass_fuzz::folder("images");
    let name = if bytes.starts_with(&[0xff, 0xd8]) { "a.jpg" } else { "a.png" };
    std::fs::write(dir.join(name), bytes).expect("scratch file");
    if sel & 1 != 0 {
        std::fs::write(dir.join("b.png"), bytes).expect("scratch file");
    }
    let shape = (sel & 2 != 0).then_some((8, 8, 1 + 2 * usize::from(sel & 4 != 0)));
    let _ = images::read_folder(&dir, shape);
});
