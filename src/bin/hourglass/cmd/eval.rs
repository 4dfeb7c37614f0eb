//! `hourglass eval`.

use super::{outln, read, read_for};
use crate::args::EvalArgs;
use anyhow::Result;
use hourglass::format::{self, AnyModel, ModelFile};

pub fn run(a: EvalArgs) -> Result<()> {
    let mut file = match format::load_any(&a.model)? {
        AnyModel::Classifier(c) => {
            anyhow::ensure!(
                a.infer.precision == hourglass::InferPrecision::F32,
                "{}: a classifier evaluates in f32; --precision {} applies to autoencoders",
                a.model.display(),
                a.infer.precision.name()
            );
            return super::pretrain::eval(a, &c);
        }
        AnyModel::Autoencoder(f) => f,
    };
    a.infer.apply(&mut file.model)?;
    if let Some(t) = &a.target {
        let ds = read_for(&file, &a.data, &a.columns.selection())?.data;
        return paired(&file, &ds, t, a.json);
    }
    file.model.check_reconstructs()?;
    // The rows stream through a chunk at a time (CSV, Parquet, NPY; other files whole). With
    // noise, the inputs are corrupted in the network's units (as in training), and the
    // corrupted inputs are measured against the clean data too, for comparison.
    let mut source = hourglass::stream::Source::for_model(&file, &a.data, &a.columns.selection())?;
    for n in source.notes() {
        note!("note: {n}");
    }
    let noise = &a.noise.noise;
    let image = a.image.image_shape.or(file.provenance.image_shape);
    let mut rng = hourglass::Rng::new(a.seed);
    let mut sums = hourglass::metrics::ReconstructionSums::default();
    let mut noisy_sums = (!noise.is_empty()).then(hourglass::metrics::ReconstructionSums::default);
    let code_act = file.model.config().code_activation();
    let mut code_sums = hourglass::metrics::CodeSums::new(file.model.code_dim(), code_act);
    let mut vae = hourglass::vae::code(&file.model).is_ok().then(|| {
        (
            hourglass::vae::VaeSums::default(),
            hourglass::Rng::stream(a.seed, 0x7ae),
        )
    });
    let mut binarize = a.binarize.then(|| hourglass::Rng::stream(a.seed, 0xb1));
    // A softmax output (loss ce): the share of positions given back, and the cross-entropy.
    let mut categorical = match file.model.layers().last() {
        Some(hourglass::layer::Layer::Softmax(s)) => {
            Some(hourglass::metrics::CategoricalSums::new(s.channels, s.positions))
        }
        _ => None,
    };
    while let Some(mut chunk) = source.next_chunk()? {
        if let Some(rng) = &mut binarize {
            hourglass::noise::binarize(chunk.x.as_mut_slice(), rng);
        }
        let x = &chunk.x;
        if let Some((sums, rng)) = &mut vae {
            sums.add(&file.model, x, a.samples, rng)?;
        }
        let x_hat = match &mut noisy_sums {
            None => {
                code_sums.add(&file.model.encode(x)?);
                file.model.reconstruct(x)?
            }
            Some(ns) => {
                let (noisy, x_hat) = file.model.reconstruct_corrupted(x, noise, image, &mut rng)?;
                ns.add(x, &noisy);
                code_sums.add(&file.model.encode(&noisy)?);
                x_hat
            }
        };
        sums.add(x, &x_hat);
        if let Some(c) = &mut categorical {
            c.add(x, &x_hat);
        }
    }
    anyhow::ensure!(sums.rows() > 0, "{}: no rows to evaluate", a.data.display());
    let m = sums.finish();
    let noisy = noisy_sums.map(|s| s.finish());
    let c = code_sums.finish();
    let vae = vae.map(|(s, _)| s.finish(a.samples));
    let categorical = categorical.and_then(|c| c.finish());
    if a.json {
        let mut v = serde_json::to_value(&m)?;
        if let Some(c) = &categorical {
            v["categorical"] = serde_json::to_value(c)?;
        }
        if let Some(e) = &vae {
            v["elbo"] = e.elbo.into();
            v["log_likelihood"] = e.log_likelihood.into();
            v["kl"] = e.kl.into();
            v["reconstruction_nll"] = e.reconstruction.into();
            v["samples"] = e.samples.into();
        }
        v["l0"] = c.l0.into();
        v["dead_fraction"] = c.dead_fraction.into();
        v["mean_activation"] = c.mean_activation.into();
        v["firing_histogram"] = firing_json(&c.firing_histogram);
        if let Some(n) = &noisy {
            v["noisy_mse"] = n.mse.into();
            v["noisy_psnr"] = n.psnr.into();
        }
        outln!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    outln!("rows             {}", m.n);
    outln!("mse              {:.6}", m.mse);
    outln!("sse per sample   {:.4}", m.sse_per_sample);
    if let Some(f) = m.fvu {
        outln!("fvu              {f:.5} (fraction of variance unexplained: 0 perfect, 1 the mean row)");
    }
    match m.psnr {
        Some(p) => outln!("psnr             {p:.2} dB"),
        None => outln!("psnr             - (data not in [0, 1])"),
    }
    if let Some(n) = &noisy {
        let psnr = n.psnr.map_or("-".into(), |p| format!("{p:.2} dB"));
        outln!(
            "noisy input      mse {:.6}, psnr {psnr} (the corrupted input against the clean data)",
            n.mse
        );
    }
    match m.bce {
        Some(b) => outln!("bce              {b:.6}"),
        None => outln!("bce              - (data not in [0, 1])"),
    }
    if let Some(c) = &categorical {
        outln!(
            "categories       {:.2} % of {} positions given back (the most probable channel is the input's); cross-entropy {:.4} nats per position",
            100.0 * c.accuracy,
            c.positions,
            c.cross_entropy
        );
    }
    outln!(
        "code L0          {:.2} of {} units active per sample",
        c.l0,
        file.model.code_dim()
    );
    outln!("dead units       {:.2} %", 100.0 * c.dead_fraction);
    outln!("firing           {}", firing_line(&c.firing_histogram));
    outln!("mean activation  {:.4}", c.mean_activation);
    if let Some(e) = &vae {
        outln!(
            "elbo             {:.2} nats per row (reconstruction {:.2}, KL {:.2})",
            e.elbo,
            -e.reconstruction,
            e.kl
        );
        outln!(
            "log-likelihood   {:.2} nats per row (importance-weighted, {} samples)",
            e.log_likelihood,
            e.samples
        );
    }
    Ok(())
}

/// The firing histogram as JSON: `[{"from", "to", "units"}, …]`, frequencies as fractions of
/// rows (`from = to = 0`: never).
fn firing_json(h: &[usize]) -> serde_json::Value {
    h.iter()
        .enumerate()
        .map(|(i, &n)| {
            let (from, to) = hourglass::metrics::firing_bucket_range(i);
            serde_json::json!({ "from": from, "to": to, "units": n })
        })
        .collect()
}

/// The firing histogram in one line: `never 3 · <1e-6 0 · … · ≥1e-1 12` (units per decade of
/// firing frequency).
pub(crate) fn firing_line(h: &[usize]) -> String {
    let parts: Vec<String> = h
        .iter()
        .enumerate()
        .map(|(i, &n)| match hourglass::metrics::firing_bucket_range(i) {
            (0.0, 0.0) => format!("never {n}"),
            (0.0, hi) => format!("<{hi:.0e} {n}"),
            (lo, _) => format!(">={lo:.0e} {n}"),
        })
        .collect();
    format!("{} (units by the fraction of rows they fire on)", parts.join(" · "))
}

/// `eval --target`: outputs against paired targets; pixel accuracy and IoU for 0/1 masks.
fn paired(file: &ModelFile, ds: &hourglass::data::Dataset, target: &std::path::Path, json: bool) -> Result<()> {
    let t = read(target, &Default::default(), None)?.data;
    let out_width = file.model.output_dim();
    anyhow::ensure!(
        t.x.rows() == ds.x.rows() && t.x.cols() == out_width,
        "{}: {} rows x {} columns of targets; expected {} rows (the inputs) x {out_width} columns (the model's output)",
        target.display(),
        t.x.rows(),
        t.x.cols(),
        ds.x.rows()
    );
    let out = file.model.reconstruct(&ds.x)?;
    let m = hourglass::metrics::reconstruction(&t.x, &out);
    let seg = hourglass::metrics::segmentation(&t.x, &out);
    if json {
        let mut v = serde_json::to_value(&m)?;
        if let Some(s) = &seg {
            v["pixel_accuracy"] = s.pixel_accuracy.into();
            v["iou"] = s.iou.into();
            v["mean_iou"] = s.mean_iou.into();
        }
        outln!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    outln!("rows             {}", m.n);
    outln!("mse              {:.6} (outputs against the targets)", m.mse);
    if let Some(p) = m.psnr {
        outln!("psnr             {p:.2} dB");
    }
    if let Some(b) = m.bce {
        outln!("bce              {b:.6}");
    }
    match &seg {
        Some(s) => {
            outln!(
                "pixel accuracy   {:.4} (output > 0.5 against the 0/1 targets)",
                s.pixel_accuracy
            );
            outln!(
                "IoU              {:.4} (foreground: pixels with target 1, over all images)",
                s.iou
            );
            outln!(
                "mean IoU         {:.4} (foreground and background averaged)",
                s.mean_iou
            );
        }
        None => outln!("pixel accuracy   - (targets are not all 0 or 1)"),
    }
    Ok(())
}
