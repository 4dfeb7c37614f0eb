//! `hourglass eval`.

use super::{load_data_for, load_model};
use crate::args::EvalArgs;
use anyhow::Result;

pub fn run(a: EvalArgs) -> Result<()> {
    if super::pretrain::is_classifier(&a.model) {
        return super::pretrain::eval(a);
    }
    let file = load_model(&a.model)?;
    let ds = load_data_for(&file, &a.data, &a.columns)?;
    // The data is copied only when it is to be corrupted.
    let mut input = std::borrow::Cow::Borrowed(&ds.x);
    if !a.noise.is_empty() {
        let image = a.image_shape.or(ds.image_shape).or(file.provenance.image_shape);
        for n in &a.noise {
            n.check(ds.x.cols(), image).map_err(anyhow::Error::msg)?;
        }
        let mut rng = hourglass::Rng::new(a.seed);
        hourglass::noise::corrupt(&a.noise, input.to_mut().as_mut_slice(), ds.x.cols(), image, &mut rng);
    }
    if let Some(t) = &a.target {
        return paired(&file, &ds, t, a.json);
    }
    file.model.check_reconstructs()?;
    let x_hat = file.model.reconstruct(&input)?;
    // With noise: how far the corrupted input itself is from the clean data, for comparison.
    let noisy = (!a.noise.is_empty()).then(|| hourglass::metrics::reconstruction(&ds.x, &input));
    let m = hourglass::metrics::reconstruction(&ds.x, &x_hat);
    let codes = file.model.encode(&input)?;
    let c = hourglass::metrics::code(&codes, file.model.config().code_activation);
    if a.json {
        let mut v = serde_json::to_value(&m)?;
        v["l0"] = c.l0.into();
        v["dead_fraction"] = c.dead_fraction.into();
        v["mean_activation"] = c.mean_activation.into();
        if let Some(n) = &noisy {
            v["noisy_mse"] = n.mse.into();
            v["noisy_psnr"] = n.psnr.into();
        }
        println!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    println!("rows             {}", m.n);
    println!("mse              {:.6}", m.mse);
    println!("sse per sample   {:.4}", m.sse_per_sample);
    match m.psnr {
        Some(p) => println!("psnr             {p:.2} dB"),
        None => println!("psnr             - (data not in [0, 1])"),
    }
    if let Some(n) = &noisy {
        let psnr = n.psnr.map_or("-".into(), |p| format!("{p:.2} dB"));
        println!(
            "noisy input      mse {:.6}, psnr {psnr} (the corrupted input against the clean data)",
            n.mse
        );
    }
    match m.bce {
        Some(b) => println!("bce              {b:.6}"),
        None => println!("bce              - (data not in [0, 1])"),
    }
    println!(
        "code L0          {:.2} of {} units active per sample",
        c.l0,
        codes.cols()
    );
    println!("dead units       {:.2} %", 100.0 * c.dead_fraction);
    println!("mean activation  {:.4}", c.mean_activation);
    Ok(())
}

/// `eval --target`: outputs against paired targets; pixel accuracy and IoU for 0/1 masks.
fn paired(
    file: &hourglass::ModelFile,
    ds: &hourglass::data::Dataset,
    target: &std::path::Path,
    json: bool,
) -> Result<()> {
    let t = super::load_data(target, &Default::default())?;
    let out_width = file.model.config().output_width();
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
        println!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    println!("rows             {}", m.n);
    println!("mse              {:.6} (outputs against the targets)", m.mse);
    if let Some(p) = m.psnr {
        println!("psnr             {p:.2} dB");
    }
    if let Some(b) = m.bce {
        println!("bce              {b:.6}");
    }
    match &seg {
        Some(s) => {
            println!(
                "pixel accuracy   {:.4} (output > 0.5 against the 0/1 targets)",
                s.pixel_accuracy
            );
            println!(
                "IoU              {:.4} (foreground: pixels with target 1, over all images)",
                s.iou
            );
            println!(
                "mean IoU         {:.4} (foreground and background averaged)",
                s.mean_iou
            );
        }
        None => println!("pixel accuracy   - (targets are not all 0 or 1)"),
    }
    Ok(())
}
