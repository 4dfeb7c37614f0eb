//! `hourglass pca`.

use super::load_data;
use crate::args::PcaArgs;
use anyhow::Result;
use hourglass::format::{self, ModelFile, Provenance};

pub fn run(a: PcaArgs) -> Result<()> {
    let base = a.on.as_deref().map(super::load_model).transpose()?;
    let mut ds = match &base {
        Some(f) => super::load_data_for(f, &a.data, &a.columns)?,
        None => load_data(&a.data, &a.columns.selection())?,
    };
    if let Some(f) = &base {
        anyhow::ensure!(
            a.scale == hourglass::Scaling::None,
            "--on: codes are not scaled; drop --scale"
        );
        ds.x = f.model.encode(&ds.x)?;
    }
    let scaler = hourglass::Scaler::fit(a.scale, &ds.x);
    let (mut model, summary) = hourglass::pca::fit(&ds.x, a.components, scaler)?;
    if let Some(rounds) = a.itq {
        model = hourglass::pca::itq(&model, &ds.x, rounds, a.seed)?;
    }
    if let Some(f) = &base {
        model = hourglass::pca::stack(&f.model, &model)?;
        ds.image_shape = f.provenance.image_shape;
        ds.names = super::feature_names(f);
    }
    let top: Vec<String> = summary.eigenvalues.iter().take(5).map(|v| format!("{v:.4}")).collect();
    let line = format!(
        "pca: {} components keep {:.2} % of the variance; train SSE per sample {:.4} (the {} eigenvalues left out)",
        summary.components,
        100.0 * summary.explained_ratio(),
        summary.train_sse_per_sample(),
        summary.eigenvalues.len() - summary.components
    );
    let provenance = Provenance {
        data_path: Some(a.data.display().to_string()),
        data_shape: Some(ds.x.shape()),
        image_shape: ds.image_shape,
        feature_names: Some(ds.names.clone()),
        crate_version: env!("CARGO_PKG_VERSION").to_string(),
        pca: Some(summary),
        ..Provenance::default()
    };
    let file = ModelFile {
        model,
        provenance,
        anomaly: None,
        tabular: base.as_ref().and_then(|f| f.tabular.clone()),
    };
    format::save(&a.output, &file)?;
    println!("{line}");
    println!("largest eigenvalues: {} …", top.join(", "));
    println!("model: {} ({} parameters)", a.output.display(), file.model.num_params());
    Ok(())
}
