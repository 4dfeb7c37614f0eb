//! `hourglass eval`.

use super::{load_data_for, load_model};
use crate::args::EvalArgs;
use anyhow::Result;

pub fn run(a: EvalArgs) -> Result<()> {
    let file = load_model(&a.model)?;
    let ds = load_data_for(&file, &a.data, &a.columns)?;
    let x_hat = file.model.reconstruct(&ds.x)?;
    let m = hourglass::metrics::reconstruction(&ds.x, &x_hat);
    if a.json {
        println!("{}", serde_json::to_string(&m)?);
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
    Ok(())
}
