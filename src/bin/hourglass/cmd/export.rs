//! `hourglass export`.

use super::outln;
use crate::args::ExportArgs;
use anyhow::{Context, Result};
use hourglass::format::{self, AnyModel};
use hourglass::onnx;

pub fn run(a: ExportArgs) -> Result<()> {
    let outputs = a.outputs.as_deref();
    let exported = match format::load_any(&a.model)? {
        AnyModel::Autoencoder(f) => onnx::autoencoder(&f, outputs)?,
        AnyModel::Classifier(c) => onnx::classifier(&c, outputs)?,
    };
    exported
        .save(&a.output)
        .with_context(|| format!("cannot write {}", a.output.display()))?;
    for n in &exported.notes {
        note!("note: {n}");
    }
    outln!(
        "wrote {} (ONNX opset {}, {} bytes)",
        a.output.display(),
        onnx::OPSET,
        exported.bytes.len()
    );
    outln!("inputs:  {}", exported.inputs.join(", "));
    outln!(
        "outputs: {}",
        exported.outputs.iter().map(|o| o.name()).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}
