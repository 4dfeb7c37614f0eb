//! `hourglass report`.

use super::{labels_of, noted, read, read_for};
use crate::args::ReportArgs;
use anyhow::{Context, Result};
use hourglass::format::{self, AnyModel};
use hourglass::report::{self, Data, Labels};
use hourglass::train::EpochStats;
use std::path::Path;

pub fn run(a: ReportArgs) -> Result<()> {
    let name = a
        .model
        .file_name()
        .map_or_else(|| a.model.display().to_string(), |n| n.to_string_lossy().into_owned());
    let history = a.log.as_deref().map(read_log).transpose()?;
    let sel = a.columns.selection();
    let html = match format::load_any(&a.model)? {
        AnyModel::Autoencoder(file) => {
            // The rows the model reads and, for a model of windows, the series' steps (whose
            // labels the step scores meet), cut into windows here rather than read twice.
            let (loaded, steps) = match (a.data.as_deref(), &file.windows) {
                (Some(p), Some(w)) => {
                    let steps = noted(hourglass::load::steps_for_model(&file, p, &sel)?).data;
                    let windows = hourglass::load::windowed(steps.clone(), &w.every(), p)?;
                    (Some(windows), Some(steps))
                }
                (Some(p), None) => (Some(read_for(&file, p, &sel)?.data), None),
                (None, _) => (None, None),
            };
            let data = match (&a.data, &loaded) {
                (Some(path), Some(rows)) => {
                    let ds = steps.as_ref().unwrap_or(rows);
                    // A model of windows reads one-row images of steps: not pictures.
                    let imagelike = file.windows.is_none()
                        && (a.image.image_shape.is_some()
                            || ds.image_shape.is_some()
                            || file.provenance.image_shape.is_some()
                            || file.model.config().arch.input.len() == 3);
                    let image = if imagelike {
                        Some(file.image_shape(a.image.image_shape, ds.image_shape)?)
                    } else {
                        None
                    };
                    let labels = labels_of(a.labels.as_deref(), path, ds)?.map(|l| Labels::Anomaly(a.anomaly.of(&l)));
                    Some(Data {
                        name: path.display().to_string(),
                        x: &rows.x,
                        image,
                        labels,
                    })
                }
                _ => None,
            };
            report::autoencoder(&file, &name, data.as_ref(), history.as_deref())?
        }
        AnyModel::Classifier(c) => {
            let loaded = a.data.as_deref().map(|p| read(p, &sel, None)).transpose()?;
            let data = match (&a.data, &loaded) {
                (Some(path), Some(l)) => Some(Data {
                    name: path.display().to_string(),
                    x: &l.data.x,
                    image: None,
                    labels: labels_of(a.labels.as_deref(), path, &l.data)?.map(Labels::Class),
                }),
                _ => None,
            };
            report::classifier(&c, &name, data.as_ref())?
        }
    };
    hourglass::fsutil::write_bytes(&a.output, html.as_bytes())
        .with_context(|| format!("cannot write {}", a.output.display()))?;
    note!("wrote {} ({} KiB)", a.output.display(), html.len().div_ceil(1024));
    Ok(())
}

/// The per-epoch lines of a `train --log` file.
fn read_log(path: &Path) -> Result<Vec<EpochStats>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| {
                format!(
                    "{}:{}: not a training log line (one JSON object per epoch)",
                    path.display(),
                    i + 1
                )
            })
        })
        .collect()
}
