//! Folders of PNG and JPEG images in, PNG files and grids out.
//!
//! A folder becomes one row per image file (sorted by name), values in [0, 1], channel-major
//! (C, H, W) like every image row in hourglass. All images must have one size unless a shape
//! is given, in which case they are resized to it (and the caller is told how many were).

use super::{Dataset, Format};
use crate::error::{Error, Hint, Result};
use crate::fsutil::{io_at, write_bytes};
use crate::tensor::Matrix;
use image::{DynamicImage, GenericImageView, imageops::FilterType};
use std::path::{Path, PathBuf};

/// Image files in `dir`, sorted by name.
///
/// # Errors
/// [`Error::Io`] when the folder cannot be listed, [`Error::Data`] when it holds no images.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_at(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::data(dir, "no .png, .jpg or .jpeg files in this folder"));
    }
    Ok(files)
}

/// Reads a folder of images. `shape` = `(height, width, channels)`: images of another size
/// are resized to it (bilinear) and converted to its channels; without it, every image must
/// have the first one's size, and the rows are RGB when any image has color, gray otherwise.
///
/// Returns the rows and the number of images that were resized.
///
/// # Errors
/// [`Error::Data`] naming a file that cannot be decoded, or whose size differs from the first
/// one's when no shape is given (the message says both sizes and how to resize).
pub fn read_folder(dir: &Path, shape: Option<(usize, usize, usize)>) -> Result<(Dataset, usize)> {
    let files = list(dir)?;
    if let Some((h, w, c)) = shape
        && (h == 0 || w == 0 || !(c == 1 || c == 3) || h > u32::MAX as usize || w > u32::MAX as usize)
    {
        return Err(Error::setting(
            "image_shape",
            format!("{h},{w},{c}"),
            "height and width must be positive (and below 2^32) and channels 1 or 3",
        ));
    }
    // The shape comes from the files' headers, before anything is decoded: the rows are
    // allocated once, checked against the memory limit, and each image is decoded (under
    // the decoder's own limits), resized if asked and copied into its row in turn.
    let (h, w, c) = match shape {
        Some(s) => s,
        None => {
            let mut first = None;
            let mut color = false;
            for f in &files {
                let (dims, has_color) = header(f)?;
                color |= has_color;
                let (w0, h0) = *first.get_or_insert(dims);
                if dims != (w0, h0) {
                    return Err(Error::data(
                        f,
                        format!(
                            "{}x{} pixels (width x height), but {} is {w0}x{h0}; images of one folder must have one size, or be resized to one",
                            dims.0,
                            dims.1,
                            files[0].display()
                        ),
                    )
                    .with_hint(Hint::ImageShape));
                }
            }
            let (w0, h0) = first.unwrap_or_default();
            (h0 as usize, w0 as usize, if color { 3 } else { 1 })
        }
    };
    let cols = crate::bounds::product(&[c, h, w], "an image")?;
    let what = format_args!(
        "{} image{} of {h}x{w}x{c}",
        files.len(),
        if files.len() == 1 { "" } else { "s" }
    );
    crate::bounds::check_alloc(crate::bounds::product(&[files.len(), cols], what)?, 4, what)?;
    let mut x = Matrix::zeros(files.len(), cols);
    let mut resized = 0;
    for (i, f) in files.iter().enumerate() {
        let img = decode(f)?;
        let img = if img.dimensions() != (w as u32, h as u32) {
            resized += 1;
            img.resize_exact(w as u32, h as u32, FilterType::Triangle)
        } else {
            img
        };
        write_row(&img, (h, w, c), x.row_mut(i));
    }
    Ok((
        Dataset {
            x,
            names: Vec::new(),
            labels: None,
            image_shape: Some((h, w, c)),
            format: Format::Images,
            files: Some(files),
        },
        resized,
    ))
}

/// The decoder's limits: what one image may allocate while it is decoded (the smaller of
/// 1 GiB and the memory limit).
fn limits() -> image::Limits {
    let mut l = image::Limits::default();
    l.max_alloc = Some(crate::bounds::memory_limit().min(1 << 30));
    l
}

fn reader(f: &Path) -> Result<image::ImageReader<std::io::BufReader<std::fs::File>>> {
    let mut r = image::ImageReader::open(f)
        .map_err(io_at(f))?
        .with_guessed_format()
        .map_err(io_at(f))?;
    r.limits(limits());
    Ok(r)
}

/// An image's `(width, height)` and whether it has color, from its header alone.
fn header(f: &Path) -> Result<((u32, u32), bool)> {
    use image::ImageDecoder;
    let cannot = |e: image::ImageError| Error::data(f, format!("cannot decode the image: {e}"));
    let d = reader(f)?.into_decoder().map_err(cannot)?;
    Ok((d.dimensions(), d.color_type().has_color()))
}

fn decode(f: &Path) -> Result<DynamicImage> {
    reader(f)?
        .decode()
        .map_err(|e| Error::data(f, format!("cannot decode the image: {e}")))
}

fn write_row(img: &DynamicImage, (h, w, c): (usize, usize, usize), row: &mut [f32]) {
    if c == 1 {
        let g = img.to_luma8();
        for (v, p) in row.iter_mut().zip(g.as_raw()) {
            *v = f32::from(*p) / 255.0;
        }
    } else {
        let rgb = img.to_rgb8();
        let raw = rgb.as_raw();
        for ch in 0..3 {
            for p in 0..h * w {
                row[ch * h * w + p] = f32::from(raw[p * 3 + ch]) / 255.0;
            }
        }
    }
}

/// An 8-bit image, gray (1 channel) or RGB (3), row-major, channels interleaved.
#[derive(Clone, Debug, PartialEq)]
pub struct Picture {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// 1 or 3.
    pub channels: usize,
    /// `height * width * channels` bytes.
    pub pixels: Vec<u8>,
}

/// Writes a picture as PNG, atomically.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_png(path: &std::path::Path, p: &Picture) -> Result<()> {
    let bytes = png_bytes(path, p)?;
    write_bytes(path, &bytes)
}

/// The bytes of a picture as a PNG file; `path` names it in errors.
pub fn png_bytes(path: &Path, p: &Picture) -> Result<Vec<u8>> {
    use image::ImageEncoder;
    let mut bytes = Vec::new();
    let color = if p.channels == 3 {
        image::ExtendedColorType::Rgb8
    } else {
        image::ExtendedColorType::L8
    };
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(&p.pixels, p.width as u32, p.height as u32, color)
        .map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))?;
    Ok(bytes)
}

/// The 8-bit picture of one channel-major image row (values clamped to [0, 1]).
pub fn picture(row: &[f32], (h, w, c): (usize, usize, usize)) -> Picture {
    let mut pixels = vec![0u8; h * w * c];
    for ch in 0..c {
        for p in 0..h * w {
            pixels[p * c + ch] = (row[ch * h * w + p].clamp(0.0, 1.0) * 255.0).round() as u8;
        }
    }
    Picture {
        width: w,
        height: h,
        channels: c,
        pixels,
    }
}

/// The PNG file names of `n` rows: each source file's stem (`x.png` for `x.jpg`), or
/// `00000.png`, `00001.png`, … without sources. Sources whose stems clash (`x.png` and
/// `x.PNG`, `x.jpg`; compared ignoring case, as some file systems do) keep their whole names
/// (`x.png.png`, `x.PNG.png`, `x.jpg.png`), so no output overwrites another.
pub fn output_names(n: usize, sources: Option<&[PathBuf]>) -> Vec<String> {
    let width = n.saturating_sub(1).to_string().len().max(5);
    let stem = |i: usize| {
        sources
            .and_then(|s| s.get(i))
            .and_then(|p| p.file_stem())
            .map(|s| s.to_string_lossy().into_owned())
    };
    let mut count = std::collections::HashMap::new();
    for i in 0..n {
        if let Some(s) = stem(i) {
            *count.entry(s.to_lowercase()).or_insert(0usize) += 1;
        }
    }
    (0..n)
        .map(|i| match stem(i) {
            Some(s) if count[&s.to_lowercase()] > 1 => {
                let whole = sources
                    .and_then(|src| src[i].file_name())
                    .map(|f| f.to_string_lossy().into_owned());
                format!("{}.png", whole.unwrap_or(s))
            }
            Some(s) => format!("{s}.png"),
            None => format!("{i:0width$}.png"),
        })
        .collect()
}

/// Writes each row of `x` as a PNG file in folder `dir` (created if missing), named by
/// [`output_names`]. All or nothing: the files are written to a temporary folder beside `dir`
/// and moved into it only when every one was written.
///
/// # Errors
/// [`Error::Config`] when the rows do not match the shape or channels are not 1 or 3;
/// [`Error::Io`] naming the file or folder.
pub fn write_folder(dir: &Path, x: &Matrix, shape: (usize, usize, usize), names: Option<&[PathBuf]>) -> Result<()> {
    let (h, w, c) = shape;
    if crate::bounds::checked_product(&[h, w, c]) != Some(x.cols()) || !(c == 1 || c == 3) {
        return Err(Error::Config(format!(
            "rows of {} values cannot be written as {h}x{w} images with {c} channels",
            x.cols()
        )));
    }
    if dir.exists() && !dir.is_dir() {
        return Err(Error::io(
            dir,
            std::io::Error::new(std::io::ErrorKind::AlreadyExists, "exists and is not a folder"),
        ));
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io_at(parent))?;
    }
    let staging = crate::fsutil::TempFolder::beside(dir)?;
    let files = output_names(x.rows(), names);
    for (i, name) in files.iter().enumerate() {
        let tmp = staging.path().join(name);
        png_file(&tmp, &picture(x.row(i), shape)).map_err(|e| match e {
            Error::Io { cause, .. } => Error::io(dir.join(name), cause),
            e => e,
        })?;
    }
    std::fs::create_dir_all(dir).map_err(io_at(dir))?;
    for name in &files {
        std::fs::rename(staging.path().join(name), dir.join(name)).map_err(io_at(&dir.join(name)))?;
    }
    Ok(())
}

/// Writes a picture as PNG straight to `path` (a file of a staging folder).
fn png_file(path: &Path, p: &Picture) -> Result<()> {
    std::fs::write(path, png_bytes(path, p)?).map_err(io_at(path))
}

/// Parses an image shape `H,W` or `H,W,C` (height, width, channels; one channel when left
/// out), all positive.
///
/// # Errors
/// A message naming the expected form.
pub fn parse_shape(s: &str) -> std::result::Result<(usize, usize, usize), String> {
    let v: Vec<usize> = s
        .split(',')
        .map(|p| p.trim().parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| format!("bad image shape `{s}`; expected H,W or H,W,C"))?;
    let shape = match v.as_slice() {
        [h, w] if *h > 0 && *w > 0 => (*h, *w, 1),
        [h, w, c] if *h > 0 && *w > 0 && *c > 0 => (*h, *w, *c),
        _ => {
            return Err(format!(
                "bad image shape `{s}`; expected H,W or H,W,C with positive sizes"
            ));
        }
    };
    if crate::bounds::checked_product(&[shape.0, shape.1, shape.2]).is_none() {
        return Err(format!("bad image shape `{s}`: its size overflows"));
    }
    Ok(shape)
}

/// A mask picture: pixels brighter than half are true (hidden). It must have the images'
/// size, `(height, width)`.
///
/// # Errors
/// [`Error::Data`] naming the file when it cannot be decoded, has another size or marks
/// nothing.
pub fn read_mask(path: &Path, (h, w): (usize, usize)) -> Result<Vec<bool>> {
    let img = image::open(path)
        .map_err(|e| Error::data(path, format!("cannot read the mask image: {e}")))?
        .to_luma8();
    if (img.width() as usize, img.height() as usize) != (w, h) {
        return Err(Error::data(
            path,
            format!(
                "the mask is {}x{} pixels, the images are {w}x{h} (width x height)",
                img.width(),
                img.height()
            ),
        ));
    }
    let m: Vec<bool> = img.pixels().map(|p| p[0] > 127).collect();
    if !m.contains(&true) {
        return Err(Error::data(
            path,
            "the mask hides no pixel (hidden = brighter than half)",
        ));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save(path: &Path, img: DynamicImage) {
        img.save(path).unwrap();
    }

    #[test]
    fn gray_and_rgb_pngs_are_read_channel_major() {
        let dir = tempfile::tempdir().unwrap();
        let gray = image::GrayImage::from_fn(3, 2, |x, y| image::Luma([(10 * x + 100 * y) as u8]));
        save(&dir.path().join("a.png"), DynamicImage::ImageLuma8(gray));
        let rgb = image::RgbImage::from_fn(3, 2, |x, y| image::Rgb([x as u8, y as u8, 200]));
        save(&dir.path().join("b.png"), DynamicImage::ImageRgb8(rgb));
        let (ds, resized) = read_folder(dir.path(), None).unwrap();
        assert_eq!(resized, 0);
        assert_eq!(ds.image_shape, Some((2, 3, 3)), "one color image makes the rows RGB");
        assert_eq!(ds.x.shape(), (2, 18));
        // b.png: channel 0 is x, channel 1 is y, channel 2 is 200, planes of 6 values.
        let b = ds.x.row(1);
        let px = |v: u8| f32::from(v) / 255.0;
        assert_eq!(&b[0..6], &[0, 1, 2, 0, 1, 2].map(px));
        assert_eq!(&b[6..12], &[0, 0, 0, 1, 1, 1].map(px));
        assert_eq!(&b[12..18], &[200; 6].map(px));
        // a.png, gray, is repeated on all three channels.
        assert_eq!(&ds.x.row(0)[0..6], &[0, 10, 20, 100, 110, 120].map(px));
        assert_eq!(&ds.x.row(0)[12..18], &[0, 10, 20, 100, 110, 120].map(px));
        // Gray only: one channel.
        std::fs::remove_file(dir.path().join("b.png")).unwrap();
        let (ds, _) = read_folder(dir.path(), None).unwrap();
        assert_eq!(ds.image_shape, Some((2, 3, 1)));
    }

    #[test]
    fn jpeg_files_are_read_too() {
        let dir = tempfile::tempdir().unwrap();
        let img = image::RgbImage::from_fn(6, 4, |x, _| image::Rgb([200, 40 * x as u8, 10]));
        save(&dir.path().join("photo.JPG"), DynamicImage::ImageRgb8(img));
        let (ds, _) = read_folder(dir.path(), None).unwrap();
        assert_eq!(ds.image_shape, Some((4, 6, 3)));
        // Lossy, but the red plane stays near 200/255.
        let red = &ds.x.row(0)[..24];
        assert!(red.iter().all(|&v| (v - 200.0 / 255.0).abs() < 0.1), "{red:?}");
    }

    #[test]
    fn a_mismatched_size_is_named_or_resized() {
        let dir = tempfile::tempdir().unwrap();
        save(&dir.path().join("a.png"), DynamicImage::new_luma8(4, 4));
        save(&dir.path().join("b.png"), DynamicImage::new_luma8(5, 4));
        let e = read_folder(dir.path(), None).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Hinted {
                    hint: Hint::ImageShape,
                    ..
                }
            ),
            "{e:?}"
        );
        let err = e.to_string();
        assert!(err.contains("b.png"), "{err}");
        assert!(err.contains("5x4 pixels (width x height), but"), "{err}");
        assert!(err.contains("image shape"), "{err}");
        let (ds, resized) = read_folder(dir.path(), Some((4, 4, 1))).unwrap();
        assert_eq!((ds.x.shape(), resized), ((2, 16), 1));
        std::fs::remove_file(dir.path().join("b.png")).unwrap();
        std::fs::write(dir.path().join("c.png"), b"not a png").unwrap();
        let err = read_folder(dir.path(), None).unwrap_err().to_string();
        assert!(err.contains("c.png") && err.contains("cannot decode"), "{err}");
    }

    #[test]
    fn written_folders_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let x = Matrix::from_vec(2, 12, (0..24).map(|i| (i * 10) as f32 / 255.0).collect()).unwrap();
        write_folder(dir.path(), &x, (2, 2, 3), None).unwrap();
        let (back, _) = read_folder(dir.path(), None).unwrap();
        assert_eq!(back.x, x);
        assert!(dir.path().join("00000.png").exists());
    }
}
