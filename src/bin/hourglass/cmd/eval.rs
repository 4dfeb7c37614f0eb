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
    let x_hat = file.model.reconstruct(&input)?;
    let m = hourglass::metrics::reconstruction(&ds.x, &x_hat);
    let codes = file.model.encode(&input)?;
    let c = hourglass::metrics::code(&codes, file.model.config().code_activation);
    if a.json {
        let mut v = serde_json::to_value(&m)?;
        v["l0"] = c.l0.into();
        v["dead_fraction"] = c.dead_fraction.into();
        v["mean_activation"] = c.mean_activation.into();
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
