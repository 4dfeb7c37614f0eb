//! Cosines of the principal angles between the decoder column spaces of two models with the
//! same code width (e.g. a linear autoencoder and `hourglass pca`): 1 means the same subspace.
//!
//! Usage: cargo run --release --example subspace -- A.safetensors B.safetensors

#![allow(clippy::print_stdout, clippy::print_stderr)]

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    let [a, b] = paths.as_slice() else {
        eprintln!("usage: subspace A.safetensors B.safetensors");
        std::process::exit(2);
    };
    let load = |p: &str| hourglass::format::load(p.as_ref()).map(|f| f.model);
    let (a, b) = (load(a)?, load(b)?);
    let (la, lb) = (a.layers().last().unwrap(), b.layers().last().unwrap());
    if (la.n_out(), la.n_in()) != (lb.n_out(), lb.n_in()) {
        eprintln!("error: decoder shapes differ");
        std::process::exit(2);
    }
    let cos = hourglass::pca::subspace_cosines(la.params().0, lb.params().0, la.n_out(), la.n_in());
    println!(
        "largest cosine {:.6}, smallest cosine {:.6}",
        cos[0],
        cos[cos.len() - 1]
    );
    Ok(())
}
