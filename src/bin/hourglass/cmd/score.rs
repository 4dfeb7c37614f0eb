//! `hourglass score` and `hourglass calibrate`.

use super::{load_model, outln, read_for, write_output};
use crate::args::{CalibrateArgs, ScoreArgs};
use anyhow::{Context, Result, bail};
use hourglass::Matrix;
use hourglass::format;
use hourglass::score::{self, ThresholdRule};

pub fn run(a: ScoreArgs) -> Result<()> {
    let file = load_model(&a.model)?;
    let ds = read_for(&file, &a.data, &a.columns.selection())?.data;
    let threshold = file.anomaly.as_ref();
    let metric = match (a.metric, threshold) {
        (Some(m), Some(t)) if m != t.metric => bail!(
            "{}: calibrated for --metric {}, asked for {}; calibrate again or drop --metric",
            a.model.display(),
            t.metric.name(),
            m.name()
        ),
        (Some(m), _) => m,
        (None, Some(t)) => t.metric,
        (None, None) => Default::default(),
    };
    let labels = super::labels_of(a.labels.as_deref(), &a.data, &ds)?;
    let explained = if a.per_feature {
        Some(score::explain(&file.model, &ds.x, metric)?)
    } else {
        None
    };
    let scores = match &explained {
        Some(e) => e.scores.clone(),
        None => score::scores(&file.model, &ds.x, metric)?,
    };
    let flags: Option<Vec<bool>> = threshold.map(|t| scores.iter().map(|&s| s > t.value).collect());

    // Everything that can fail is done before the output is written.
    let detection = match &labels {
        Some(l) => {
            let anomaly = a.anomaly.of(l);
            Some(score::detection(&scores, &anomaly, threshold.map(|t| t.value))?)
        }
        None => None,
    };
    if let Some(out) = &a.output {
        let mut names = vec!["score".to_string()];
        if flags.is_some() {
            names.push("anomaly".into());
        }
        let fixed = names.len();
        let features = file.feature_names();
        if explained.is_some() {
            names.extend(features.iter().map(|n| format!("{n}.expected")));
            names.extend(features.iter().map(|n| format!("{n}.share")));
        }
        let mut m = Matrix::zeros(scores.len(), names.len());
        for i in 0..scores.len() {
            let row = m.row_mut(i);
            row[0] = scores[i] as f32;
            if let Some(f) = &flags {
                row[1] = f32::from(u8::from(f[i]));
            }
            if let Some(e) = &explained {
                let d = features.len();
                row[fixed..fixed + d].copy_from_slice(e.expected.row(i));
                row[fixed + d..].copy_from_slice(e.share.row(i));
            }
        }
        let mut leading = Vec::new();
        if let (Some(l), Some(name)) = (&ds.labels, &a.columns.label_column) {
            leading.push((name.clone(), l.clone()));
        }
        if let Some(e) = &explained {
            let top = (0..scores.len())
                .map(|i| features[hourglass::tensor::argmax(e.share.row(i))].clone())
                .collect();
            leading.push(("top_feature".into(), top));
        }
        write_output(out, &m, &names, &leading)?;
    }

    let flagged = flags.as_ref().map(|f| f.iter().filter(|&&b| b).count());
    if a.json {
        let mut v = serde_json::json!({
            "n": scores.len(),
            "metric": metric.name(),
            "mean_score": scores.iter().sum::<f64>() / scores.len() as f64,
            "threshold": threshold.map(|t| t.value),
            "flagged": flagged,
        });
        if let Some(d) = &detection {
            v["detection"] = serde_json::to_value(d)?;
        }
        outln!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    let mut sorted = scores.clone();
    sorted.sort_by(f64::total_cmp);
    outln!(
        "scored {} rows by {} (higher = more anomalous): median {:.6}, max {:.6}",
        scores.len(),
        metric.name(),
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1]
    );
    match (threshold, flagged) {
        (Some(t), Some(k)) => outln!(
            "threshold {:.6}: {} rows flagged ({:.2} %)",
            t.value,
            k,
            100.0 * k as f64 / scores.len() as f64
        ),
        _ => outln!("not calibrated: run `hourglass calibrate` to flag rows"),
    }
    if let Some(d) = &detection {
        outln!("anomalies        {} of {}", d.anomalies, d.n);
        outln!("ROC-AUC          {:.4}", d.roc_auc);
        outln!("PR-AUC           {:.4}", d.pr_auc);
        if let Some(t) = &d.at_threshold {
            outln!(
                "at threshold     precision {:.4}  recall {:.4}  F1 {:.4}  (TP {}, FP {}, FN {})",
                t.precision,
                t.recall,
                t.f1,
                t.true_positives,
                t.false_positives,
                t.false_negatives
            );
        }
    }
    Ok(())
}

pub fn calibrate(a: CalibrateArgs) -> Result<()> {
    let mut file = load_model(&a.model)?;
    let ds = read_for(&file, &a.data, &a.columns.selection())?.data;
    let rule = match (a.contamination, a.quantile, a.fpr) {
        (Some(p), _, _) => ThresholdRule::Contamination(p),
        (_, Some(q), _) => ThresholdRule::Quantile(q),
        (_, _, Some(f)) => ThresholdRule::Fpr(f),
        _ => unreachable!("clap requires one rule"),
    };
    let t = score::calibrate(&file.model, &ds.x, a.metric, rule, Some(a.data.display().to_string()))?;
    let (value, rows, fraction) = (t.value, t.calibration_rows, t.flagged_fraction);
    file.anomaly = Some(t);
    let out = a.output.as_ref().unwrap_or(&a.model);
    format::save(out, &file).with_context(|| format!("cannot write {}", out.display()))?;
    let flagged = (fraction * rows as f64).round() as usize;
    outln!(
        "threshold {value:.6} ({} above it: {flagged} of {rows} calibration rows, {:.2} %); saved in {}",
        a.metric.name(),
        100.0 * fraction,
        out.display()
    );
    Ok(())
}
