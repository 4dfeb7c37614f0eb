//! `hourglass select`.

use super::read;
use crate::args::SelectArgs;
use anyhow::Context as _;
use anyhow::{Result, bail};
use hourglass::data::{self, ColumnSelection};

pub fn run(a: SelectArgs) -> Result<()> {
    if !a.labels.is_empty() && a.labels.len() != a.data.len() {
        bail!(
            "{} data files but {} --labels files; give one labels file per data file",
            a.data.len(),
            a.labels.len()
        );
    }
    let mut parts = Vec::with_capacity(a.data.len());
    let mut labels: Vec<String> = Vec::new();
    for (i, path) in a.data.iter().enumerate() {
        let ds = read(path, &ColumnSelection::default(), None)?.data;
        if let Some(first) = parts.first().map(|m: &hourglass::Matrix| m.cols())
            && ds.x.cols() != first
        {
            bail!(
                "{}: has {} columns, {} has {first}",
                path.display(),
                ds.x.cols(),
                a.data[0].display()
            );
        }
        if let Some(lp) = a.labels.get(i) {
            let l = data::load_labels_for(lp, ds.x.rows())?;
            if l.len() != ds.x.rows() {
                bail!(
                    "{}: {} labels for the {} rows of {}",
                    lp.display(),
                    l.len(),
                    ds.x.rows(),
                    path.display()
                );
            }
            labels.extend(l);
        }
        parts.push(ds.x);
    }
    let cols = parts[0].cols();
    let total: usize = parts.iter().map(|m| m.rows()).sum();
    let keep = data::select_rows(total, &labels, &a.label, a.rows)?;
    let mut all = Vec::with_capacity(total * cols);
    for m in parts {
        all.extend(m.into_vec());
    }
    let x = hourglass::Matrix::from_vec(total, cols, all)?.select_rows(&keep);
    // The rows and their labels are written together or not at all.
    let mut outputs = hourglass::fsutil::Outputs::new();
    if let Some(out) = &a.labels_output {
        let kept: Vec<String> = keep.iter().map(|&i| labels[i].clone()).collect();
        data::write_in(
            &mut outputs,
            out,
            &hourglass::Matrix::zeros(kept.len(), 0),
            &[],
            &[("label".into(), kept)],
        )
        .with_context(|| format!("cannot write {}", out.display()))?;
    }
    data::write_in(&mut outputs, &a.output, &x, &data::numbered("c", cols), &[])
        .with_context(|| format!("cannot write {}", a.output.display()))?;
    outputs.commit()?;
    note!("wrote {} rows x {cols} columns to {}", x.rows(), a.output.display());
    Ok(())
}
