//! `hourglass score` and `hourglass calibrate`.

use super::{load_model, outln, source_for};
use crate::args::{CalibrateArgs, ScoreArgs};
use anyhow::{Context, Result, bail};
use hourglass::Matrix;
use hourglass::format;
use hourglass::score::{self, ThresholdRule};
use hourglass::stream::{Sink, Spill};

fn sink_path(p: &Option<std::path::PathBuf>) -> &std::path::Path {
    p.as_deref().expect("a sink is made for an output")
}

pub fn run(a: ScoreArgs) -> Result<()> {
    let mut file = load_model(&a.model)?;
    a.infer.apply(&mut file.model)?;
    let sel = a.columns.selection();
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
        (None, None) => file.default_metric(),
    };
    // Per-feature shares are of the reconstruction error (for mse+lof, of its mse part).
    let shared = metric.error_part();
    // The rows stream through in chunks: outputs are written as they are scored, and the
    // scores are kept on disk for the summary's order statistics (and in memory only when
    // labels ask for ROC and PR curves).
    if file.windows.is_some() && a.per_feature && !a.per_window {
        bail!(
            "{}: --per-feature explains windows, and this model scores steps; add --per-window",
            a.model.display()
        );
    }
    if a.per_window && file.windows.is_none() {
        bail!(
            "{}: --per-window needs a model of windows (train --window)",
            a.model.display()
        );
    }
    let mut src = source_for(&file, &a.data, &sel)?;
    let features = file.feature_names();
    let mut names = vec!["score".to_string()];
    if threshold.is_some() {
        names.push("anomaly".into());
    }
    let fixed = names.len();
    if a.per_feature {
        names.extend(features.iter().map(|n| format!("{n}.expected")));
        names.extend(features.iter().map(|n| format!("{n}.share")));
    }
    let mut leading: Vec<String> = sel.label_column.iter().cloned().collect();
    if a.per_feature {
        leading.push("top_feature".into());
    }
    // A model of a text scores each of its tokens: the token comes first.
    let mut tokens: Option<std::collections::VecDeque<String>> = match file.tabular.as_ref().and_then(|t| t.text) {
        Some(t) if !a.per_window && a.output.is_some() => Some(hourglass::data::text::read(&a.data, &t)?.fields.into()),
        _ => None,
    };
    if tokens.is_some() {
        leading.push("token".into());
    }
    let cannot = |p: &std::path::Path| format!("cannot write {}", p.display());
    let mut sink = match &a.output {
        Some(out) => Some(Sink::create(out, &names, &leading).with_context(|| cannot(out))?),
        None => None,
    };
    let labelled = a.labels.is_some() || sel.label_column.is_some();
    let (mut kept, mut column_labels) = (Vec::new(), Vec::new());
    let mut spill = Spill::new()?;
    let (mut sum, mut flagged) = (0.0f64, 0usize);
    // Takes the next rows' scores (with their labels and explanations): counts them, writes
    // them, keeps what the summary needs.
    let mut emit =
        |scores: &[f64], labels: Option<Vec<String>>, explained: Option<&score::Explanation>| -> Result<()> {
            for &s in scores {
                sum += s;
            }
            if let Some(t) = threshold {
                flagged += scores.iter().filter(|&&s| s > t.value).count();
            }
            if let Some(sink) = sink.as_mut() {
                let mut m = Matrix::zeros(scores.len(), names.len());
                for (i, &s) in scores.iter().enumerate() {
                    let row = m.row_mut(i);
                    row[0] = s as f32;
                    if let Some(t) = threshold {
                        row[1] = f32::from(u8::from(s > t.value));
                    }
                    if let Some(e) = explained {
                        let d = features.len();
                        row[fixed..fixed + d].copy_from_slice(e.expected.row(i));
                        row[fixed + d..].copy_from_slice(e.share.row(i));
                    }
                }
                let mut lead = Vec::new();
                if sel.label_column.is_some() {
                    lead.push(labels.clone().unwrap_or_default());
                }
                if let Some(e) = explained {
                    lead.push(
                        (0..scores.len())
                            .map(|i| features[hourglass::tensor::argmax(e.share.row(i))].clone())
                            .collect(),
                    );
                }
                if let Some(t) = tokens.as_mut() {
                    lead.push(t.drain(..scores.len().min(t.len())).collect());
                }
                sink.write(&m, &lead).with_context(|| cannot(sink_path(&a.output)))?;
            }
            spill.push(scores)?;
            if labelled {
                kept.extend_from_slice(scores);
                column_labels.extend(labels.unwrap_or_default());
            }
            Ok(())
        };
    // A model of windows scores every window; each step gets the mean of its windows' scores
    // (unless --per-window), and its own label.
    let mut steps = src.step_scores().filter(|_| !a.per_window);
    let mut step_labels = std::collections::VecDeque::new();
    while let Some(chunk) = src.next_chunk()? {
        let explained = if a.per_feature {
            Some(score::explain(&file.model, &chunk.x, shared)?)
        } else {
            None
        };
        let scores = match &explained {
            Some(e) if shared == metric => e.scores.clone(),
            _ => file.scores(&chunk.x, metric)?,
        };
        match steps.as_mut() {
            Some(acc) => {
                let done = acc.push(&scores);
                step_labels.extend(chunk.step_labels.unwrap_or_default());
                let labels = sel
                    .label_column
                    .is_some()
                    .then(|| step_labels.drain(..done.len()).collect());
                emit(&done, labels, None)?;
            }
            None => emit(&scores, chunk.labels, explained.as_ref())?,
        }
    }
    if let Some(acc) = steps {
        let done = acc.finish();
        let labels = sel.label_column.is_some().then(|| step_labels.drain(..).collect());
        emit(&done, labels, None)?;
    }
    let n = spill.len();
    let detection = if labelled {
        let column = sel.label_column.is_some().then_some(column_labels);
        let l = hourglass::load::labels(&a.data, a.labels.as_deref(), column, n)?;
        let anomaly = a.anomaly.of(&l);
        Some(score::detection(&kept, &anomaly, threshold.map(|t| t.value))?)
    } else {
        None
    };
    let flagged = threshold.map(|_| flagged);
    // Written (renamed into place) only once the labels are known to fit.
    if let Some(sink) = sink {
        let rows = sink.rows();
        sink.finish().with_context(|| cannot(sink_path(&a.output)))?;
        note!(
            "wrote {rows} rows x {} columns to {}",
            names.len(),
            sink_path(&a.output).display()
        );
    }
    if a.json {
        let mut v = serde_json::json!({
            "n": n,
            "metric": metric.name(),
            "mean_score": sum / n as f64,
            "threshold": threshold.map(|t| t.value),
            "flagged": flagged,
        });
        if let Some(d) = &detection {
            v["detection"] = serde_json::to_value(d)?;
        }
        outln!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    outln!(
        "scored {} rows by {} (higher = more anomalous): median {:.6}, max {:.6}",
        n,
        metric.name(),
        spill.kth(n / 2)?,
        spill.kth(n - 1)?
    );
    match (threshold, flagged) {
        (Some(t), Some(k)) => outln!(
            "threshold {:.6}: {} rows flagged ({:.2} %)",
            t.value,
            k,
            100.0 * k as f64 / n as f64
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
    a.infer.apply(&mut file.model)?;
    let mut src = source_for(&file, &a.data, &a.columns.selection())?;
    let rule = match (a.contamination, a.quantile, a.fpr) {
        (Some(p), _, _) => ThresholdRule::Contamination(p),
        (_, Some(q), _) => ThresholdRule::Quantile(q),
        (_, _, Some(f)) => ThresholdRule::Fpr(f),
        _ => unreachable!("clap requires one rule"),
    };
    let data_path = Some(a.data.display().to_string());
    let metric = a.metric.unwrap_or(file.own_metric());
    let t = hourglass::stream::calibrate(&file, &mut src, metric, rule, data_path)?;
    let (value, rows, fraction) = (t.value, t.calibration_rows, t.flagged_fraction);
    file.anomaly = Some(t);
    let out = a.output.as_ref().unwrap_or(&a.model);
    format::save(out, &file).with_context(|| format!("cannot write {}", out.display()))?;
    let flagged = (fraction * rows as f64).round() as usize;
    outln!(
        "threshold {value:.6} ({} above it: {flagged} of {rows} calibration rows, {:.2} %); saved in {}",
        metric.name(),
        100.0 * fraction,
        out.display()
    );
    Ok(())
}
