//! Activation matrices in `.safetensors` files (named tensors, as PyTorch and the sparse
//! dictionary tools save them): one tensor, picked by name or the file's only one, read as rows
//! of f32 (`(N, …)` → N rows of the remaining dimensions' product). F32, F64, F16 and BF16.

use crate::error::{Error, Result};
use crate::tensor::Matrix;
use safetensors::tensor::Dtype;
use std::path::Path;

/// Whether `head` (the file's first bytes, at least 9) starts like a `.safetensors` file: an
/// 8-byte little-endian header length, then the header's `{`.
pub fn sniff(head: &[u8]) -> bool {
    head.len() >= 9 && head[8] == b'{' && u64::from_le_bytes(head[..8].try_into().expect("8 bytes")) >= 2
}

/// Reads tensor `name` (or the file's only tensor) as rows; returns them and the tensor's shape.
///
/// # Errors
/// [`Error::Data`] naming the file for a damaged file, a missing or ambiguous tensor (the
/// names are listed), a scalar, or a dtype other than F32, F64, F16 and BF16.
pub fn read(path: &Path, name: Option<&str>) -> Result<(Matrix, Vec<usize>)> {
    let len = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
    crate::bounds::check_alloc(
        usize::try_from(len).unwrap_or(usize::MAX),
        1,
        format_args!("{}", path.display()),
    )?;
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (_, st) =
        crate::tensorfile::parse(&bytes).map_err(|m| Error::data(path, format!("not a safetensors file: {m}")))?;
    let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    names.sort();
    let chosen = match name {
        Some(n) if names.iter().any(|m| m == n) => n.to_string(),
        Some(n) => {
            return Err(Error::data(
                path,
                format!("no tensor `{n}`; it holds {}", names.join(", ")),
            ));
        }
        None if names.len() == 1 => names[0].clone(),
        None if names.is_empty() => return Err(Error::data(path, "no tensors")),
        None => {
            return Err(Error::data(
                path,
                format!(
                    "{} tensors ({}): name one with --columns NAME",
                    names.len(),
                    names.join(", ")
                ),
            ));
        }
    };
    let view = st
        .tensor(&chosen)
        .map_err(|e| Error::data(path, format!("tensor `{chosen}`: {e}")))?;
    let shape = view.shape().to_vec();
    let Some((&rows, rest)) = shape.split_first() else {
        return Err(Error::data(
            path,
            format!("tensor `{chosen}` is a scalar; expected rows"),
        ));
    };
    let cols = crate::bounds::checked_product(rest).unwrap_or(usize::MAX);
    crate::bounds::check_alloc(
        crate::bounds::checked_product(&[rows, cols]).unwrap_or(usize::MAX),
        4,
        format_args!("tensor `{chosen}` of {}", path.display()),
    )?;
    let data = view.data();
    let values: Vec<f32> = match view.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4")))
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8")) as f32)
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        other => {
            return Err(Error::data(
                path,
                format!("tensor `{chosen}` is {other:?}; expected F32, F64, F16 or BF16"),
            ));
        }
    };
    let m = Matrix::from_vec(rows, cols, values).map_err(|e| Error::data(path, e.to_string()))?;
    if let Some((r, c)) = m.find_non_finite() {
        return Err(Error::data(
            path,
            format!("tensor `{chosen}`: row {}, column {} is {}", r + 1, c + 1, m.row(r)[c]),
        ));
    }
    Ok((m, shape))
}

/// IEEE half precision to f32 (subnormals, infinities and NaN included).
fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = (h >> 10) & 0x1f;
    let frac = f32::from(h & 0x3ff);
    sign * match exp {
        0 => frac * 2f32.powi(-24),
        31 if frac == 0.0 => f32::INFINITY,
        31 => f32::NAN,
        e => (1.0 + frac / 1024.0) * 2f32.powi(i32::from(e) - 15),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensorfile::TensorData;

    #[test]
    fn half_precision_values() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert!(f16_to_f32(0x7c00).is_infinite());
    }

    #[test]
    fn a_named_tensor_reads_as_rows() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("acts.safetensors");
        let a: Vec<f32> = (0..24).map(|i| i as f32 * 0.5).collect();
        let b = [1.0f32, 2.0];
        let bytes = crate::tensorfile::write_typed(
            Default::default(),
            &mut [
                ("layer3".into(), vec![2, 3, 4], TensorData::F32(&a)),
                ("bias".into(), vec![2], TensorData::F32(&b)),
            ],
        )
        .unwrap();
        std::fs::write(&p, &bytes).unwrap();
        let mut head = [0u8; 9];
        head.copy_from_slice(&bytes[..9]);
        assert!(sniff(&head));
        let (m, shape) = read(&p, Some("layer3")).unwrap();
        assert_eq!(shape, vec![2, 3, 4]);
        assert_eq!(m.shape(), (2, 12));
        assert_eq!(m.row(1)[0], 6.0);
        let e = read(&p, None).unwrap_err().to_string();
        assert!(e.contains("2 tensors (bias, layer3): name one"), "{e}");
        let e = read(&p, Some("layer4")).unwrap_err().to_string();
        assert!(e.contains("no tensor `layer4`"), "{e}");
    }
}
