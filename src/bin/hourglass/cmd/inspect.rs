//! `hourglass inspect`.

use super::{load_model, outln};
use crate::args::InspectArgs;
use anyhow::Result;
use serde_json::json;

pub fn run(a: InspectArgs) -> Result<()> {
    let file = load_model(&a.model)?;
    let m = &file.model;
    let cfg = m.config();
    let n_enc = cfg.encoder_layers();
    let layers: Vec<_> = m
        .layers()
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let name = if i < n_enc {
                format!("encoder.{i}")
            } else {
                format!("decoder.{}", i - n_enc)
            };
            (name, l.n_in(), l.n_out(), l.activation(), l.num_params())
        })
        .collect();
    // Stacks of plain dense layers print compactly; others list every layer (flatten and
    // reshape too) with its shapes and kind.
    let compact = cfg.arch.is_dense()
        && cfg
            .arch
            .encoder
            .iter()
            .chain(&cfg.arch.decoder)
            .all(|s| s.name().is_none());
    let plan = (!compact).then(|| cfg.plan()).transpose()?;
    let arch_rows: Vec<_> = plan
        .iter()
        .flatten()
        .scan(0usize, |next, p| {
            let params = if p.computes {
                *next += 1;
                m.layers()[*next - 1].num_params()
            } else {
                0
            };
            Some((
                p.name.clone(),
                p.kind,
                p.input.to_string(),
                p.output.to_string(),
                p.activation,
                params,
            ))
        })
        .collect();
    let p = &file.provenance;
    if a.json {
        let out = json!({
            "config": cfg,
            "layers": if plan.is_some() {
                arch_rows.iter().map(|(n, k, i, o, act, p)| json!({"name": n, "kind": k, "in": i, "out": o, "activation": act, "params": p})).collect::<Vec<_>>()
            } else {
                layers.iter().map(|(n, i, o, act, p)| json!({"name": n, "in": i, "out": o, "activation": act, "params": p})).collect::<Vec<_>>()
            },
            "params": m.num_params(),
            "scaler": m.scaler().kind,
            "provenance": p,
            "anomaly": file.anomaly,
            "tabular": file.tabular,
            "windows": file.windows,
        });
        outln!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let widths: Vec<String> = std::iter::once(m.input_dim())
        .chain(m.layers().iter().map(|l| l.n_out()))
        .map(|w| w.to_string())
        .collect();
    outln!(
        "autoencoder {}  (code {}, loss {})",
        widths.join("-"),
        m.code_dim(),
        cfg.loss.name()
    );
    if plan.is_some() {
        for (name, kind, i, o, act, params) in &arch_rows {
            outln!("  {name:<12} {kind:<15} {i:>9} -> {o:<9} {act:<10} {params:>10} params");
        }
    } else {
        for (name, i, o, act, params) in &layers {
            outln!("  {name:<12} {i:>6} -> {o:<6} {act:<10} {params:>10} params");
        }
    }
    outln!("parameters       {}", m.num_params());
    if let Ok((_, g)) = hourglass::vae::code(m) {
        let p = g.prior;
        outln!(
            "variational      Gaussian code of {} units; KL weight {}, capacity {} nats, warm-up {} epochs{}",
            g.width,
            p.beta,
            p.capacity,
            p.warmup,
            if p.samples > 1 {
                format!("; trained on the IWAE bound, {} samples", p.samples)
            } else {
                String::new()
            }
        );
    }
    if let Some(r) = cfg.regularizer_at(cfg.code_layer()) {
        outln!("code             {r}");
    }
    for (l, r) in cfg.regularizers.iter().filter(|(l, _)| **l != cfg.code_layer()) {
        outln!("layer {l:<10} {r}");
    }
    outln!("scaling          {}", m.scaler().kind);
    if let Some(path) = &p.data_path {
        let shape = p
            .data_shape
            .map(|(r, c)| format!(" ({r} rows x {c} columns)"))
            .unwrap_or_default();
        outln!("trained on       {path}{shape}");
    }
    if let (Some(t), Some(r)) = (&p.train, &p.report) {
        let last = r.history.last();
        // Older files stored the wall time; newer ones leave it out (same seed, same bytes).
        let time = if r.seconds > 0.0 {
            format!(", {:.1} s", r.seconds)
        } else {
            String::new()
        };
        outln!(
            "training         {} epochs (best {}), batch {}, lr {}, seed {}{time}",
            r.history.len(),
            r.best_epoch,
            t.batch_size,
            t.lr,
            t.seed
        );
        if let Some(l) = last {
            let valid = l.valid_loss.map(|v| format!(", valid loss {v:.6}")).unwrap_or_default();
            outln!("final            train loss {:.6}{valid}", l.train_loss);
        }
        if let Some(p) = r.precision {
            let asked = if t.precision != p {
                format!(" ({} asked for)", t.precision.name())
            } else {
                String::new()
            };
            let kernels = r
                .kernels
                .as_deref()
                .map(|k| format!(", kernels {k}"))
                .unwrap_or_default();
            outln!("ran in           {}{asked}{kernels}", p.name());
        }
        let dictionary: Vec<&str> = [
            (t.unit_norm_decoder, "unit-norm atoms"),
            (t.tied_init, "tied init"),
            (t.pre_bias, "pre-encoder bias (folded into the code bias)"),
        ]
        .iter()
        .filter_map(|&(on, what)| on.then_some(what))
        .collect();
        if !dictionary.is_empty() {
            outln!("dictionary       {}", dictionary.join(", "));
        }
        if !r.code_firing.is_empty() {
            code_firing(&r.code_firing)?;
        }
    }
    if let Some(pca) = &p.pca {
        outln!(
            "pca              {} of {} components, {:.2} % of the variance, train SSE/sample {:.4}",
            pca.components,
            pca.eigenvalues.len(),
            100.0 * pca.explained_ratio(),
            pca.train_sse_per_sample()
        );
    }
    if let Some(w) = &file.windows {
        let c = file.data_width();
        outln!(
            "windows          {} steps of {c} channel{} (trained {} apart; read every window, each step scored by the mean of its windows)",
            w.length,
            if c == 1 { "" } else { "s" },
            w.stride
        );
    }
    if let Some(t) = &file.tabular
        && let (Some(text), Some(vocab)) = (t.text, t.vocabulary())
    {
        let shown: Vec<String> = vocab.iter().take(20).map(|v| format!("{v:?}")).collect();
        outln!(
            "text             {}{}; vocabulary of {} ({}{})",
            text.unit,
            if text.lowercase { ", lower-cased" } else { "" },
            vocab.len(),
            shown.join(" "),
            if vocab.len() > shown.len() { " …" } else { "" }
        );
    } else if let Some(t) = &file.tabular {
        use hourglass::data::tabular::Column;
        let cats: Vec<String> = t
            .columns
            .iter()
            .filter_map(|c| match c {
                Column::Categorical { name, categories } => Some(format!("{name} ({})", categories.len())),
                Column::Hashed { name, buckets } => Some(format!("{name} (hashed, {buckets})")),
                _ => None,
            })
            .collect();
        let imputed: Vec<&str> = t
            .columns
            .iter()
            .filter_map(|c| match c {
                Column::Numeric {
                    name, indicator: true, ..
                } => Some(name.as_str()),
                _ => None,
            })
            .collect();
        outln!(
            "table            {} columns -> {} features; categorical: {}; imputed: {}; dropped: {}",
            t.columns.len(),
            t.feature_names().len(),
            if cats.is_empty() { "-".into() } else { cats.join(", ") },
            if imputed.is_empty() {
                "-".into()
            } else {
                imputed.join(", ")
            },
            if t.dropped.is_empty() {
                "-".into()
            } else {
                t.dropped.join(", ")
            }
        );
    }
    if let Some(n) = &file.neighbours {
        let s = n.settings;
        let distance = s
            .distance
            .map_or(String::new(), |d| format!(", distance {:.4}/{:.4}", d.median, d.iqr));
        outln!(
            "neighbourhood    {} training codes, {} neighbours, reachability floor {:.4} (score {}; training median/IQR: mse {:.4}/{:.4}, LOF {:.4}/{:.4}{distance})",
            s.rows,
            s.k,
            s.floor,
            s.part.metric().name(),
            s.error.median,
            s.error.iqr,
            s.lof.median,
            s.lof.iqr
        );
    }
    if let Some(t) = &file.anomaly {
        let rule = match t.rule {
            hourglass::score::ThresholdRule::Contamination(v) => format!("contamination {v}"),
            hourglass::score::ThresholdRule::Quantile(v) => format!("quantile {v}"),
            hourglass::score::ThresholdRule::Fpr(v) => format!("fpr {v}"),
        };
        outln!(
            "anomaly          {} > {:.6} ({rule}; {:.2} % of {} calibration rows above)",
            t.metric.name(),
            t.value,
            100.0 * t.flagged_fraction,
            t.calibration_rows
        );
    }
    outln!("written by       hourglass {}", p.crate_version);
    Ok(())
}

/// The code units' firing after training: the histogram, the most and the least active.
fn code_firing(freq: &[f32]) -> anyhow::Result<()> {
    let f64s: Vec<f64> = freq.iter().map(|&f| f64::from(f)).collect();
    let h = hourglass::metrics::firing_histogram(&f64s);
    outln!("code firing      {}", super::eval::firing_line(&h));
    if freq.iter().all(|&f| f >= 1.0) {
        return Ok(()); // a dense code: every unit fires on every row
    }
    let mut order: Vec<usize> = (0..freq.len()).collect();
    order.sort_by(|&a, &b| freq[b].total_cmp(&freq[a]).then(a.cmp(&b)));
    let list = |units: &mut dyn Iterator<Item = &usize>| {
        units
            .map(|&u| format!("{u} ({:.3})", freq[u]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let n = freq.len().min(8);
    outln!("most active      units {}", list(&mut order.iter().take(n)));
    outln!("least active     units {}", list(&mut order.iter().rev().take(n)));
    Ok(())
}
