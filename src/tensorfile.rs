//! The bytes of a `.safetensors` file with tensors of several dtypes: the header keys sorted and
//! the tensors in name order, so equal inputs give equal bytes. Model files (`format`) and
//! training checkpoints (`train::checkpoint`) are written and read through it.

use crate::error::{Error, Result};
use safetensors::tensor::{SafeTensors, TensorView};
use std::collections::HashMap;

/// Parses the bytes of a `.safetensors` file: its metadata (empty when it has none) and its
/// tensors.
///
/// # Errors
/// The parser's message, for the caller to name the file and what it expected.
pub fn parse(bytes: &[u8]) -> std::result::Result<(HashMap<String, String>, SafeTensors<'_>), String> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| e.to_string())?;
    Ok((header.metadata().clone().unwrap_or_default(), st))
}

/// The values of a tensor the caller checked to be F32.
pub fn f32_values(view: &TensorView<'_>) -> Vec<f32> {
    view.data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect()
}

/// The values of a tensor to write.
#[derive(Clone, Copy, Debug)]
pub enum TensorData<'a> {
    /// 32-bit floats.
    F32(&'a [f32]),
    /// 64-bit unsigned integers.
    U64(&'a [u64]),
}

impl TensorData<'_> {
    fn dtype(self) -> &'static str {
        match self {
            TensorData::F32(_) => "F32",
            TensorData::U64(_) => "U64",
        }
    }

    fn bytes(self) -> usize {
        match self {
            TensorData::F32(d) => 4 * d.len(),
            TensorData::U64(d) => 8 * d.len(),
        }
    }
}

/// The file's bytes: metadata `meta`, then `tensors` (name, shape, values).
///
/// # Errors
/// [`Error::Config`] if the header cannot be serialized.
pub fn write_typed(
    meta: serde_json::Map<String, serde_json::Value>,
    tensors: &mut [(String, Vec<usize>, TensorData<'_>)],
) -> Result<Vec<u8>> {
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    // serde_json's Map is a BTreeMap: keys come out sorted ("__metadata__" first).
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::Value::Object(meta));
    let mut offset = 0usize;
    for (name, shape, data) in tensors.iter() {
        let end = offset + data.bytes();
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": data.dtype(), "shape": shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut text = serde_json::to_string(&header).map_err(|e| Error::Config(e.to_string()))?;
    text.push_str(&" ".repeat((8 - text.len() % 8) % 8)); // data starts 8-byte aligned
    let mut bytes = Vec::with_capacity(8 + text.len() + offset);
    bytes.extend_from_slice(&(text.len() as u64).to_le_bytes());
    bytes.extend_from_slice(text.as_bytes());
    for (_, _, data) in tensors.iter() {
        match *data {
            TensorData::F32(d) => bytes.extend(d.iter().flat_map(|x| x.to_le_bytes())),
            TensorData::U64(d) => bytes.extend(d.iter().flat_map(|x| x.to_le_bytes())),
        }
    }
    Ok(bytes)
}
