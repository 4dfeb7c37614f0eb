//! `hourglass report`: one self-contained HTML page about a model — its card, its training
//! curves and, given data, what it does on that data. Charts are inline SVG ([`svg`]),
//! pictures PNG data URIs; the page loads nothing and runs no script.
//!
//! Sections: the model card (architecture with shapes and parameters, regularizers, noise,
//! training data, settings, version); training curves from the per-epoch history every model
//! file carries (loss, learning rate, code sparsity) and, from a `--log` file, wall time; with
//! data: the reconstruction-error distribution and where the threshold falls, ROC and PR
//! curves with labels, originals beside reconstructions and the filters for images, code
//! statistics, the features that carry the error and the most anomalous rows for tables; for
//! classifiers, accuracy and the confusion matrix.

mod page;
pub mod svg;

use crate::classifier::Classifier;
use crate::error::{Error, Result};
use crate::format::ModelFile;
use crate::layer::Layer;
use crate::model::arch::Planned;
use crate::score::{self, ScoreMetric};
use crate::tensor::Matrix;
use crate::train::EpochStats;
pub use page::base64;
use page::{Page, image, pairs, table};
use std::fmt::Write;
use svg::{Axes, Series, escape, num};

/// Data to show the model on.
pub struct Data<'a> {
    /// The file's name, as shown.
    pub name: String,
    /// Rows, in the data's units (encoded, for tables).
    pub x: &'a Matrix,
    /// Image shape `(height, width, channels)`, for images.
    pub image: Option<(usize, usize, usize)>,
    /// Autoencoders: which rows are anomalies (from labels; for a model of windows, which
    /// steps of the series: one per step); classifiers: each row's class.
    pub labels: Option<Labels>,
}

/// What labels say about the rows.
pub enum Labels {
    /// `true` = anomaly (autoencoders).
    Anomaly(Vec<bool>),
    /// Class names (classifiers).
    Class(Vec<String>),
}

/// The architecture: one row per planned layer.
fn architecture(plan: &[Planned], layers: &[Layer]) -> String {
    let mut next = 0;
    let rows: Vec<Vec<String>> = plan
        .iter()
        .map(|p| {
            let params = if p.computes {
                next += 1;
                layers[next - 1].num_params()
            } else {
                0
            };
            vec![
                escape(&p.name),
                p.kind.to_string(),
                p.input.to_string(),
                p.output.to_string(),
                if p.computes {
                    p.activation.name().to_string()
                } else {
                    String::new()
                },
                format!("{params}"),
            ]
        })
        .collect();
    table(
        &["layer", "kind", "input", "output", "activation", "parameters"],
        &rows,
        &[false, false, false, false, false, true],
    )
}

/// The training curves of a history: loss, learning rate, code sparsity, and time when the
/// history has it (a `--log` file; model files leave wall time out).
fn curves(history: &[EpochStats], loss: &str, code_rows: &str) -> String {
    if history.is_empty() {
        return "<p class=\"note\">No training history (a model made by PCA, or by an older version).</p>".into();
    }
    let pts = |f: &dyn Fn(&EpochStats) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|s| f(s).map(|v| (s.epoch as f64, v)))
            .collect()
    };
    let mut series = vec![Series {
        name: "train",
        points: pts(&|s| Some(s.train_loss)),
    }];
    let valid = pts(&|s| s.valid_loss);
    if !valid.is_empty() {
        series.push(Series {
            name: "validation",
            points: valid,
        });
    }
    let best: Vec<(f64, String)> = history
        .iter()
        .rfind(|s| s.best)
        .filter(|_| series.len() > 1)
        .map(|s| (s.epoch as f64, format!("best (epoch {})", s.epoch)))
        .into_iter()
        .collect();
    // A log scale where the loss falls by more than a factor of ten (and stays positive).
    let (lo, hi) = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    let positive = lo > 0.0 && hi / lo > 10.0;
    fn axes<'a>(title: &'a str, y: &'a str) -> Axes<'a> {
        Axes {
            title,
            x: "epoch",
            y,
            log_y: false,
            x_range: None,
            y_range: None,
        }
    }
    let mut out = String::from("<div class=\"grid\">");
    let loss_label = format!("{loss}{}", if positive { ", log scale" } else { "" });
    out.push_str(&svg::lines(
        &Axes {
            log_y: positive,
            ..axes("Loss per epoch", &loss_label)
        },
        &series,
        &best,
    ));
    out.push_str(&svg::lines(
        &axes("Learning rate (at the epoch's last step)", "learning rate"),
        &[Series {
            name: "lr",
            points: pts(&|s| Some(f64::from(s.lr))),
        }],
        &[],
    ));
    let l0 = pts(&|s| s.code.as_ref().map(|c| c.l0));
    if !l0.is_empty() {
        let (l0_title, dead_title) = (
            format!("Code sparsity on {code_rows}"),
            format!("Dead code units (active on none of the {code_rows})"),
        );
        out.push_str(&svg::lines(
            &axes(&l0_title, "active units per row (L0)"),
            &[Series { name: "L0", points: l0 }],
            &[],
        ));
        out.push_str(&svg::lines(
            &Axes {
                y_range: Some((0.0, 1.0)),
                ..axes(&dead_title, "fraction of units")
            },
            &[Series {
                name: "dead",
                points: pts(&|s| s.code.as_ref().map(|c| c.dead_fraction)),
            }],
            &[],
        ));
    }
    let acc = pts(&|s| s.valid_accuracy.or(s.train_accuracy));
    if !acc.is_empty() {
        out.push_str(&svg::lines(
            &Axes {
                y_range: Some((0.0, 1.0)),
                ..axes("Accuracy", "fraction right")
            },
            &[Series {
                name: "accuracy",
                points: acc,
            }],
            &[],
        ));
    }
    let secs: f64 = history.iter().map(|s| s.seconds).sum();
    if secs > 0.0 {
        out.push_str(&svg::lines(
            &axes("Training speed", "samples per second"),
            &[Series {
                name: "samples/s",
                points: pts(&|s| Some(s.samples_per_sec)),
            }],
            &[],
        ));
    }
    out.push_str("</div>");
    let last = history.last().expect("not empty");
    let _ = write!(
        out,
        "<p class=\"note\">{} epochs; last train loss {}{}{}.</p>",
        history.len(),
        num(last.train_loss),
        last.valid_loss
            .map_or(String::new(), |v| format!(", validation loss {}", num(v))),
        if secs > 0.0 {
            format!("; wall time {secs:.1} s (from the log)")
        } else {
            String::new()
        }
    );
    out
}

/// A PCA model's spectrum: each component's share of the variance and the cumulative share,
/// with the number of components kept marked.
fn spectrum(pca: &crate::pca::PcaSummary) -> String {
    let total = pca.total_variance().max(f64::MIN_POSITIVE);
    let shown = pca.eigenvalues.len().min((pca.components * 4).max(50));
    let mut cumulative = 0.0;
    let (mut each, mut cum) = (Vec::new(), Vec::new());
    for (i, v) in pca.eigenvalues[..shown].iter().enumerate() {
        cumulative += v / total;
        each.push(((i + 1) as f64, v / total));
        cum.push(((i + 1) as f64, cumulative));
    }
    let mut s = svg::lines(
        &Axes {
            title: "Explained variance by component",
            x: "component",
            y: "fraction of the variance",
            log_y: false,
            x_range: None,
            y_range: Some((0.0, 1.0)),
        },
        &[
            Series {
                name: "each",
                points: each,
            },
            Series {
                name: "cumulative",
                points: cum,
            },
        ],
        &[(pca.components as f64, format!("{} kept", pca.components))],
    );
    let _ = write!(
        s,
        "<p>The {} components kept explain <b>{:.2} %</b> of the variance ({} components in all).</p>",
        pca.components,
        100.0 * pca.explained_ratio(),
        pca.eigenvalues.len()
    );
    s
}

/// A histogram's range: up to the 99.5th percentile when a few rows lie far out (they are
/// counted in the text instead), so the bulk stays readable.
fn bulk_range(v: &[f64]) -> (f64, f64, usize) {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return (0.0, 1.0, 0);
    }
    let lo = s[0];
    let hi = s[s.len() - 1];
    let p = s[((s.len() - 1) as f64 * 0.995) as usize];
    if hi - lo > 4.0 * (p - lo) && p > lo {
        (lo, p, s.iter().filter(|x| **x > p).count())
    } else {
        (lo, hi, 0)
    }
}

/// ROC and precision-recall curves of `scores` against `anomaly`.
fn detection_curves(scores: &[f64], anomaly: &[bool]) -> Result<String> {
    let d = score::detection(scores, anomaly, None)?;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (pos, neg) = (d.anomalies as f64, (d.n - d.anomalies) as f64);
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut roc = vec![(0.0, 0.0)];
    let mut pr = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        if anomaly[i] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last_of_tie = order.get(k + 1).is_none_or(|&j| scores[j] != scores[i]);
        if last_of_tie {
            roc.push((fp / neg, tp / pos));
            pr.push((tp / pos, tp / (tp + fp)));
        }
    }
    let unit = |title, x, y| Axes {
        title,
        x,
        y,
        log_y: false,
        x_range: Some((0.0, 1.0)),
        y_range: Some((0.0, 1.0)),
    };
    let mut s = String::from("<div class=\"grid\">");
    let roc_title = format!("ROC curve (AUC {:.4})", d.roc_auc);
    let pr_title = format!("Precision-recall (average precision {:.4})", d.pr_auc);
    s.push_str(&svg::lines(
        &unit(&roc_title, "false-positive rate", "true-positive rate (recall)"),
        &[
            Series {
                name: "model",
                points: roc,
            },
            Series {
                name: "chance",
                points: vec![(0.0, 0.0), (1.0, 1.0)],
            },
        ],
        &[],
    ));
    s.push_str(&svg::lines(
        &unit(&pr_title, "recall", "precision"),
        &[
            Series {
                name: "model",
                points: pr,
            },
            Series {
                name: "chance",
                points: vec![(0.0, pos / (pos + neg)), (1.0, pos / (pos + neg))],
            },
        ],
        &[],
    ));
    s.push_str("</div>");
    let _ = write!(
        s,
        "<p>{} rows, {} labelled anomalies: ROC-AUC <b>{:.4}</b>, PR-AUC (average precision) <b>{:.4}</b>.</p>",
        d.n, d.anomalies, d.roc_auc, d.pr_auc
    );
    Ok(s)
}

/// The page for an autoencoder: `name` is the model file's name, `history` the per-epoch
/// statistics to draw (a `--log` file's, which has wall time; else the file's own).
///
/// # Errors
/// [`Error::Shape`] for data of the wrong width; errors of the model's commands otherwise.
pub fn autoencoder(
    file: &ModelFile,
    name: &str,
    data: Option<&Data<'_>>,
    history: Option<&[EpochStats]>,
) -> Result<String> {
    let m = &file.model;
    let cfg = m.config();
    let p = &file.provenance;
    let mut page = Page::new(format!("hourglass report: {name}"));
    let widths = std::iter::once(m.input_dim())
        .chain(m.layers().iter().map(Layer::n_out))
        .map(|w| w.to_string())
        .collect::<Vec<_>>()
        .join("-");
    let mut card = vec![
        ("model", format!("<code>{}</code>", escape(name))),
        (
            "kind",
            if p.pca.is_some() {
                "PCA (a linear autoencoder)".into()
            } else {
                "autoencoder".into()
            },
        ),
        ("widths", widths),
        ("parameters", m.num_params().to_string()),
        (
            "code",
            format!(
                "{} units, activation {}",
                m.code_dim(),
                m.layers()[m.config().code_layer()].activation().name()
            ),
        ),
        ("loss", format!("{:?}", cfg.loss).to_lowercase()),
        ("tied weights", if cfg.tied { "yes".into() } else { "no".into() }),
    ];
    let regs: Vec<String> = cfg
        .regularizers
        .iter()
        .filter(|(_, r)| r.is_active())
        .map(|(l, r)| {
            format!(
                "layer {l}{}: {}",
                if *l == cfg.code_layer() { " (code)" } else { "" },
                escape(&r.to_string())
            )
        })
        .collect();
    card.push((
        "regularizers",
        if regs.is_empty() {
            "none".into()
        } else {
            regs.join("<br>")
        },
    ));
    if let Some(t) = &p.train {
        let noise: Vec<String> = t.noise.iter().map(|n| escape(&format!("{n:?}"))).collect();
        card.push((
            "noise",
            if noise.is_empty() {
                "none".into()
            } else {
                noise.join(", ")
            },
        ));
        card.push((
            "training",
            format!(
                "{} epochs planned, batch {}, learning rate {} ({:?} schedule), seed {}, precision {}, validation fraction {}",
                t.epochs,
                t.batch_size,
                t.lr,
                t.schedule,
                t.seed,
                escape(&format!("{:?}", t.precision).to_lowercase()),
                t.valid_fraction
            ),
        ));
        let json = serde_json::to_string_pretty(t).unwrap_or_default();
        card.push((
            "all settings",
            format!("<details><summary>JSON</summary><pre>{}</pre></details>", escape(&json)),
        ));
    }
    if let Some(r) = &p.report {
        card.push((
            "outcome",
            format!(
                "{} epochs run, weights of epoch {}{}{}; {} training rows, {} validation rows",
                r.history.len(),
                r.best_epoch,
                if r.stopped_early { ", stopped early" } else { "" },
                if r.interrupted { ", interrupted" } else { "" },
                r.train_rows,
                r.valid_rows
            ),
        ));
    }
    card.push((
        "training data",
        match (&p.data_path, p.data_shape) {
            (Some(path), Some((r, c))) => format!("<code>{}</code>: {r} rows × {c} columns", escape(path)),
            _ => "not recorded".into(),
        },
    ));
    card.push(("scaler", m.scaler().kind.name().to_string()));
    if let Some(t) = &file.tabular {
        let cols: Vec<String> = t
            .columns
            .iter()
            .map(|c| match c {
                crate::data::tabular::Column::Numeric { name, fill, indicator } => format!(
                    "{} (number{}{})",
                    escape(name),
                    fill.map_or(String::new(), |f| format!(", missing → {}", num(f64::from(f)))),
                    if *indicator { ", missing flag" } else { "" }
                ),
                crate::data::tabular::Column::Categorical { name, categories } => {
                    format!("{} (one-hot, {} categories + other)", escape(name), categories.len())
                }
                crate::data::tabular::Column::Hashed { name, buckets } => {
                    format!("{} (hashed into {buckets} buckets)", escape(name))
                }
            })
            .collect();
        card.push(("table encoding", cols.join("; ")));
    }
    if let Some(t) = &file.anomaly {
        card.push((
            "anomaly threshold",
            format!(
                "{} on {} (rule {:?}, {} calibration rows, {:.2} % flagged)",
                num(t.value),
                t.metric.name(),
                t.rule,
                t.calibration_rows,
                100.0 * t.flagged_fraction
            ),
        ));
    }
    card.push(("written by", format!("hourglass {}", escape(&p.crate_version))));
    let secs: f64 = history.unwrap_or(&[]).iter().map(|s| s.seconds).sum();
    card.push((
        "wall time",
        if secs > 0.0 {
            format!("{secs:.1} s of training steps (from the training log)")
        } else if p.pca.is_some() {
            "not stored (fitted by exact PCA, no training loop)".into()
        } else {
            "not stored in model files (a model's bytes depend on its seed and settings only); give the training --log file to see it".into()
        },
    ));
    card.push(("threads", "any: results do not depend on the thread count".into()));
    let mut body = pairs(&card);
    body.push_str(&architecture(&cfg.plan()?, m.layers()));
    page.section("Model card", body);
    if let Some(pca) = &p.pca {
        page.section("Spectrum", spectrum(pca));
    }
    let own = p.report.as_ref().map(|r| r.history.as_slice()).unwrap_or(&[]);
    if p.pca.is_none() || history.is_some() {
        page.section(
            "Training",
            curves(
                history.unwrap_or(own),
                &format!("loss ({}, scaled units)", format!("{:?}", cfg.loss).to_lowercase()),
                &match p.report.as_ref().map(|r| r.valid_rows) {
                    Some(v) if v > 0 => format!("{v} validation rows"),
                    _ => format!("first {} training rows", crate::train::CODE_SAMPLE),
                },
            ),
        );
    }
    if let Some(d) = data {
        data_sections(&mut page, file, d)?;
    }
    Ok(page.html())
}

fn data_sections(page: &mut Page, file: &ModelFile, d: &Data<'_>) -> Result<()> {
    let m = &file.model;
    if d.x.cols() != m.input_dim() {
        return Err(Error::Shape {
            what: "report data".into(),
            expected: format!("{} columns", m.input_dim()),
            got: format!("{} columns", d.x.cols()),
        });
    }
    let codes = m.encode(d.x)?;
    if m.check_reconstructs().is_ok() {
        // The error section shows an error over features: a model calibrated on a likelihood
        // score (nll) gets its squared error here, and no threshold line.
        let metric = file.default_metric();
        let shown = if metric.is_error() { metric } else { ScoreMetric::Mse };
        let e = score::explain(m, d.x, shown)?;
        // A model with a code neighbourhood is shown by its own score (mse+lof or mse+knn):
        // the histogram, the threshold and the curves; the shares stay those of the error.
        let neighbour = crate::neighbours::Part::of(metric);
        let scored = if neighbour.is_some() { metric } else { shown };
        let row_scores = if scored == shown {
            e.scores.clone()
        } else {
            file.scores(d.x, scored)?
        };
        // A model of windows scores steps as `score` does (each step: the mean over the
        // windows that contain it), and its threshold was calibrated on those.
        let (scores, unit) = match &file.windows {
            Some(w) => {
                let mut acc = crate::data::window::StepScores::new(w.length);
                let mut steps = acc.push(&row_scores);
                steps.extend(acc.finish());
                (steps, "step")
            }
            None => (row_scores, "row"),
        };
        let (lo, hi, out) = bulk_range(&scores);
        let mut marks = Vec::new();
        if let Some(t) = file.anomaly.as_ref().filter(|t| t.metric == scored) {
            let flagged = scores.iter().filter(|s| **s > t.value).count();
            marks.push((
                t.value.min(hi),
                format!(
                    "threshold {} ({:.1} % above)",
                    num(t.value),
                    100.0 * flagged as f64 / scores.len().max(1) as f64
                ),
            ));
        }
        let mut sorted = scores.clone();
        sorted.sort_by(f64::total_cmp);
        let q = |p: f64| sorted[((sorted.len() - 1) as f64 * p) as usize];
        let mut body = svg::histogram(
            &Axes {
                title: &if neighbour.is_some() {
                    format!("Anomaly score per {unit}")
                } else {
                    format!("Reconstruction error per {unit}")
                },
                x: &if let Some(part) = neighbour {
                    let what = match part {
                        crate::neighbours::Part::Lof => "the code's LOF",
                        crate::neighbours::Part::Distance => "the code's distance to its k-th nearest training code",
                    };
                    format!(
                        "score ({}: the error and {what}, each in units of its training spread)",
                        scored.name()
                    )
                } else {
                    format!("score ({}, in the model's scaled units)", scored.name())
                },
                y: &format!("{unit}s"),
                log_y: false,
                x_range: Some((lo, hi)),
                y_range: None,
            },
            &scores,
            40,
            &marks,
        );
        let _ = write!(
            body,
            "<p>{} {unit}s of <code>{}</code>{}: median score {}, 95th percentile {}, maximum {}{}.</p>",
            scores.len(),
            escape(&d.name),
            if file.windows.is_some() {
                format!(" (each the mean score of the {} windows that contain it)", d.x.rows())
            } else {
                String::new()
            },
            num(q(0.5)),
            num(q(0.95)),
            num(q(1.0)),
            if out > 0 {
                format!(" ({out} {unit}s beyond the 99.5th percentile are off the chart)")
            } else {
                String::new()
            }
        );
        page.section("Reconstruction error", body);
        if let Some(Labels::Anomaly(a)) = &d.labels {
            page.section("Detection against the labels", detection_curves(&scores, a)?);
        }
        if d.image.is_none() {
            page.section("What carries the error", features(file, d.x, &e));
        }
    }
    if let Some(shape) = d.image {
        let mut body = String::new();
        if m.check_reconstructs().is_ok() {
            let n = d.x.rows().min(16);
            let pic = crate::viz::show(m, d.x, &[], shape, n, 0)?;
            let _ = write!(
                body,
                "<p>The first {n} rows (top) and their reconstructions (bottom).</p>{}",
                image(&pic, "originals and reconstructions", (pic.width * 2).min(1040))?
            );
        }
        match crate::viz::filters(m, false, shape, 64) {
            Ok(pic) => {
                let _ = write!(
                    body,
                    "<p>Filters of the first encoder layer (each scaled to its own range).</p>{}",
                    image(&pic, "filters", (pic.width * 2).min(1040))?
                );
            }
            Err(e) => {
                let _ = write!(
                    body,
                    "<p class=\"note\">No filter picture: {}.</p>",
                    escape(&e.to_string())
                );
            }
        }
        page.section("Pictures", body);
    }
    page.section(
        "The code",
        code_stats(&codes, m.layers()[m.config().code_layer()].activation()),
    );
    Ok(())
}

/// Code statistics: the distribution of code values, L0, dead units, and each unit's firing
/// frequency.
fn code_stats(codes: &Matrix, act: crate::activation::Activation) -> String {
    let c = crate::metrics::code(codes, act);
    let (n, k) = codes.shape();
    let active = |v: f32| crate::metrics::active(v, act);
    let mut freq: Vec<(usize, f64)> = (0..k)
        .map(|j| {
            (
                j,
                (0..n).filter(|&i| active(codes.row(i)[j])).count() as f64 / n.max(1) as f64,
            )
        })
        .collect();
    let values: Vec<f64> = codes.as_slice().iter().map(|&v| f64::from(v)).collect();
    let (lo, hi, _) = bulk_range(&values);
    let mut s = String::from("<div class=\"grid\">");
    s.push_str(&svg::histogram(
        &Axes {
            title: "Code values (all units, all rows)",
            x: "activation",
            y: "count",
            log_y: false,
            x_range: Some((lo, hi)),
            y_range: None,
        },
        &values,
        40,
        &[],
    ));
    freq.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    s.push_str(&svg::lines(
        &Axes {
            title: "Firing frequency per unit (sorted)",
            x: "units, most active first",
            y: "fraction of rows where active",
            log_y: false,
            x_range: None,
            y_range: Some((0.0, 1.0)),
        },
        &[Series {
            name: "frequency",
            points: freq.iter().enumerate().map(|(i, f)| (i as f64, f.1)).collect(),
        }],
        &[],
    ));
    s.push_str("</div>");
    let top: Vec<String> = freq
        .iter()
        .take(5)
        .map(|(j, f)| format!("unit {j} ({:.1} %)", 100.0 * f))
        .collect();
    let _ = write!(
        s,
        "<p>{k} units; mean active per row (L0) <b>{}</b>; dead (active on no row) <b>{:.1} %</b>; mean activation {}. Most active: {}. A unit is active when |value| &gt; 1e-6 (&gt; 0.5 for sigmoid codes).</p>",
        num(c.l0),
        100.0 * c.dead_fraction,
        num(c.mean_activation),
        top.join(", ")
    );
    s
}

/// For tables: the features with the largest mean share of the error, and the most anomalous
/// rows with the features that explain them.
fn features(file: &ModelFile, x: &Matrix, e: &score::Explanation) -> String {
    let names = file.feature_names();
    let (n, d) = e.share.shape();
    let mut mean: Vec<(String, f64)> = (0..d)
        .map(|j| {
            (
                names[j].clone(),
                (0..n).map(|i| f64::from(e.share.row(i)[j])).sum::<f64>() / n.max(1) as f64,
            )
        })
        .collect();
    mean.sort_by(|a, b| b.1.total_cmp(&a.1));
    mean.truncate(20);
    let mut s = svg::bars(
        "Mean share of the error, by feature (top 20)",
        "mean share of a row's score",
        &mean,
    );
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| e.scores[b].total_cmp(&e.scores[a]));
    let rows: Vec<Vec<String>> = order
        .iter()
        .take(10)
        .map(|&i| {
            let mut f: Vec<usize> = (0..d).collect();
            f.sort_by(|&a, &b| e.share.row(i)[b].total_cmp(&e.share.row(i)[a]));
            let why: Vec<String> = f
                .iter()
                .take(3)
                .map(|&j| {
                    format!(
                        "<b>{}</b> {:.0} % (value {}, expected {})",
                        escape(&names[j]),
                        100.0 * e.share.row(i)[j],
                        num(f64::from(x.row(i)[j])),
                        num(f64::from(e.expected.row(i)[j]))
                    )
                })
                .collect();
            vec![i.to_string(), num(e.scores[i]), why.join("; ")]
        })
        .collect();
    s.push_str("<p>The ten most anomalous rows (row numbers count from 0) and the features that carry most of each one's error:</p>");
    s.push_str(&table(
        &[
            "row",
            "score",
            "top features (share of the row's error; the row's value and the value the model expected)",
        ],
        &rows,
        &[true, true, false],
    ));
    s
}

/// The page for a classifier: card, and with data its accuracy and confusion matrix.
///
/// # Errors
/// [`Error::Shape`] for data of the wrong width.
pub fn classifier(model: &Classifier, name: &str, data: Option<&Data<'_>>) -> Result<String> {
    let mut page = Page::new(format!("hourglass report: {name}"));
    let classes = &model.config.classes;
    let card = vec![
        ("model", format!("<code>{}</code>", escape(name))),
        ("kind", "classifier (an encoder and a softmax head)".into()),
        ("classes", escape(&classes.join(", "))),
        ("parameters", model.num_params().to_string()),
        ("scaler", model.scaler.kind.name().to_string()),
        ("dropout in training", model.config.dropout.to_string()),
    ];
    let mut body = pairs(&card);
    body.push_str(&architecture(&model.config.plan()?, &model.layers));
    page.section("Model card", body);
    let history = model.report.as_ref().map(|r| r.history.as_slice()).unwrap_or(&[]);
    page.section("Training", curves(history, "loss (cross-entropy, nats)", ""));
    if let Some(d) = data {
        let p = model.predict_proba(d.x)?;
        let pred: Vec<usize> = (0..p.rows()).map(|i| crate::tensor::argmax(p.row(i))).collect();
        let mut body = String::new();
        let conf: Vec<f64> = (0..p.rows()).map(|i| f64::from(p.row(i)[pred[i]])).collect();
        body.push_str(&svg::histogram(
            &Axes {
                title: "Confidence of the predicted class",
                x: "probability",
                y: "rows",
                log_y: false,
                x_range: Some((0.0, 1.0)),
                y_range: None,
            },
            &conf,
            20,
            &[],
        ));
        if let Some(Labels::Class(labels)) = &d.labels {
            let c = crate::metrics::confusion(labels, &pred, classes);
            let _ = write!(
                body,
                "<p>{} rows of <code>{}</code>: accuracy <b>{:.2} %</b>{}.</p><p>Confusion matrix (rows: true class, columns: predicted; shading by the share of the true class):</p>",
                c.n,
                escape(&d.name),
                100.0 * c.accuracy,
                if c.unknown_labels > 0 {
                    format!(" ({} rows with labels the classifier does not know)", c.unknown_labels)
                } else {
                    String::new()
                }
            );
            let mut t = String::from("<table><tr><th>true \\ predicted</th>");
            for k in classes {
                let _ = write!(t, "<th>{}</th>", escape(k));
            }
            t.push_str("</tr>");
            for (i, row) in c.matrix.iter().enumerate() {
                let total = row.iter().sum::<usize>().max(1) as f64;
                let _ = write!(t, "<tr><th>{}</th>", escape(&classes[i]));
                for &v in row {
                    let a = v as f64 / total;
                    let ink = if a > 0.6 { "#fff" } else { "#222" };
                    let _ = write!(
                        t,
                        "<td class=\"num\" style=\"background:rgba(31,119,180,{a:.2});color:{ink}\">{v}</td>"
                    );
                }
                t.push_str("</tr>");
            }
            t.push_str("</table>");
            body.push_str(&t);
        }
        page.section("Predictions", body);
    }
    Ok(page.html())
}

#[cfg(test)]
mod tests;
