//! `hourglass probe`.

use super::{load_model, outln, read, read_for, write_output};
use crate::args::ProbeArgs;
use anyhow::{Result, bail};
use hourglass::Matrix;
use hourglass::probe::{self, ProbeConfig};
use std::path::Path;

/// Features and labels of one file.
fn features(a: &ProbeArgs, path: &Path, labels: Option<&Path>) -> Result<(Matrix, Vec<String>)> {
    let (x, from_column) = match &a.model {
        Some(m) => {
            let mut file = load_model(m)?;
            a.infer.apply(&mut file.model)?;
            if let Some(k) = a.topk_encode {
                file.model.set_encode_k(k)?;
            }
            let ds = read_for(&file, path, &a.columns.selection())?.data;
            let layer = a.layer.unwrap_or(file.model.encoder_layers() - 1);
            (file.model.encode_layer(&ds.x, layer)?, ds.labels)
        }
        None => {
            let ds = read(path, &a.columns.selection(), None)?.data;
            (ds.x, ds.labels)
        }
    };
    let labels = hourglass::load::labels(path, labels, from_column, x.rows())?;
    Ok((x, labels))
}

pub fn run(a: ProbeArgs) -> Result<()> {
    let (xtr, ltr) = features(&a, &a.train, a.labels.as_deref())?;
    let (xte, lte) = features(&a, &a.test, a.test_labels.as_deref())?;
    if xtr.cols() != xte.cols() {
        bail!(
            "{} has {} features, {} has {}",
            a.train.display(),
            xtr.cols(),
            a.test.display(),
            xte.cols()
        );
    }
    let (names, ytr) = probe::encode_labels(&ltr);
    if names.len() < 2 {
        bail!(
            "{}: the labels have one class ({}); a probe needs two or more",
            a.train.display(),
            names[0]
        );
    }
    let cfg = ProbeConfig {
        l2: a.l2,
        max_iter: a.max_iter,
        ..ProbeConfig::default()
    };
    let t0 = std::time::Instant::now();
    let p = probe::fit(&xtr, &ytr, names.len(), &cfg)?;
    let seconds = t0.elapsed().as_secs_f64();
    let train_acc = probe::accuracy(&p.predict(&xtr), &ytr);
    let test = p.test(&xte, &lte, &names);
    let (test_acc, unseen) = (test.accuracy, test.unseen);
    if let Some(out) = &a.output {
        let cols: Vec<String> = names.iter().map(|n| format!("p_{n}")).collect();
        write_output(
            out,
            &test.proba,
            &cols,
            &[("label".into(), lte.clone()), ("predicted".into(), test.predicted)],
        )?;
    }
    if a.json {
        let v = serde_json::json!({
            "train_rows": xtr.rows(), "test_rows": xte.rows(), "features": xtr.cols(), "classes": names.len(),
            "l2": p.l2, "iterations": p.iterations, "converged": p.converged, "loss": p.loss,
            "train_accuracy": train_acc, "test_accuracy": test_acc, "test_error": 1.0 - test_acc,
            "unseen_test_labels": unseen, "l2_search": p.search, "seconds": seconds,
        });
        outln!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    outln!(
        "logistic regression on {} features, {} classes, {} training rows",
        xtr.cols(),
        names.len(),
        xtr.rows()
    );
    for (l, acc) in &p.search {
        outln!("  l2 {l:<8e} held-out accuracy {:.2} %", 100.0 * acc);
    }
    outln!(
        "l2 {:e}: {} L-BFGS iterations ({}), {seconds:.1} s",
        p.l2,
        p.iterations,
        if p.converged {
            "converged"
        } else {
            "stopped at --max-iter"
        }
    );
    outln!("train accuracy   {:.2} %", 100.0 * train_acc);
    outln!(
        "test accuracy    {:.2} %  (error {:.2} %)",
        100.0 * test_acc,
        100.0 * (1.0 - test_acc)
    );
    if unseen > 0 {
        outln!("note             {unseen} test rows have labels not seen in training (counted as errors)");
    }
    Ok(())
}
