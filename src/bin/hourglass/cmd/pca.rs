//! `hourglass pca`.

use super::{outln, read, read_for};
use crate::args::PcaArgs;
use anyhow::Result;
use hourglass::format::{self, ModelFile, Provenance};
use hourglass::pca::{self, PcaSettings};

pub fn run(a: PcaArgs) -> Result<()> {
    let base = a.on.as_deref().map(super::load_model).transpose()?;
    let mut ds = match &base {
        Some(f) => read_for(f, &a.data, &a.columns.selection())?.data,
        None => read(&a.data, &a.columns.selection(), None)?.data,
    };
    let settings = PcaSettings {
        components: a.components,
        scaling: a.scale,
        itq: a.itq.map(|rounds| (rounds, a.seed)),
    };
    let (model, summary) = pca::build(&ds.x, &settings, base.as_ref().map(|f| &f.model))?;
    if let Some(f) = &base {
        ds.image_shape = f.provenance.image_shape;
        ds.names = f.feature_names();
    }
    let top: Vec<String> = summary.eigenvalues.iter().take(5).map(|v| format!("{v:.4}")).collect();
    let line = format!(
        "pca: {} components keep {:.2} % of the variance; train SSE per sample {:.4} (the {} eigenvalues left out)",
        summary.components,
        100.0 * summary.explained_ratio(),
        summary.train_sse_per_sample(),
        summary.eigenvalues.len() - summary.components
    );
    let file = ModelFile {
        provenance: Provenance {
            pca: Some(summary),
            ..Provenance::of_data(&a.data, &ds)
        },
        tabular: base.as_ref().and_then(|f| f.tabular.clone()),
        ..ModelFile::new(model)
    };
    format::save(&a.output, &file)?;
    outln!("{line}");
    outln!("largest eigenvalues: {} …", top.join(", "));
    outln!("model: {} ({} parameters)", a.output.display(), file.model.num_params());
    Ok(())
}
