//! `hourglass eval`.

use super::{outln, read, read_for};
use crate::args::EvalArgs;
use anyhow::Result;
use hourglass::format::{self, AnyModel, ModelFile};

pub fn run(a: EvalArgs) -> Result<()> {
    let file = match format::load_any(&a.model)? {
        AnyModel::Classifier(c) => return super::pretrain::eval(a, &c),
        AnyModel::Autoencoder(f) => f,
    };
    let ds = read_for(&file, &a.data, &a.columns.selection())?.data;
    if let Some(t) = &a.target {
        return paired(&file, &ds, t, a.json);
    }
    file.model.check_reconstructs()?;
    let noise = &a.noise.noise;
    // With noise: the inputs are corrupted in the network's units (as in training), and the
    // corrupted inputs are measured against the clean data too, for comparison.
    let (input, x_hat) = if noise.is_empty() {
        (None, file.model.reconstruct(&ds.x)?)
    } else {
        let image = a.image.image_shape.or(ds.image_shape).or(file.provenance.image_shape);
        let mut rng = hourglass::Rng::new(a.seed);
        let (noisy, x_hat) = file.model.reconstruct_corrupted(&ds.x, noise, image, &mut rng)?;
        (Some(noisy), x_hat)
    };
    let noisy = input.as_ref().map(|n| hourglass::metrics::reconstruction(&ds.x, n));
    let m = hourglass::metrics::reconstruction(&ds.x, &x_hat);
    let codes = file.model.encode(input.as_ref().unwrap_or(&ds.x))?;
    let c = hourglass::metrics::code(&codes, file.model.config().code_activation());
    if a.json {
        let mut v = serde_json::to_value(&m)?;
        v["l0"] = c.l0.into();
        v["dead_fraction"] = c.dead_fraction.into();
        v["mean_activation"] = c.mean_activation.into();
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
    outln!(
        "code L0          {:.2} of {} units active per sample",
        c.l0,
        codes.cols()
    );
    outln!("dead units       {:.2} %", 100.0 * c.dead_fraction);
    outln!("mean activation  {:.4}", c.mean_activation);
    Ok(())
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
