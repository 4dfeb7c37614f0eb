//! Model files (safetensors with JSON metadata): autoencoders of every format version and
//! classifiers, then one forward pass on a row of zeros for what loads.
#![no_main]
use hourglass::format::{self, AnyModel};
use hourglass::Matrix;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = hourglass_fuzz::file("m.safetensors", data);
    let _ = format::kind(&path);
    if let Ok(model) = format::load_any(&path) {
        match model {
            AnyModel::Autoencoder(file) => {
                let width = file.model.input_dim();
                if width <= 1 << 16 {
                    let x = Matrix::zeros(1, width);
                    let _ = file.model.encode(&x);
                    let _ = file.model.reconstruct(&x);
                }
                let _ = file.feature_names();
            }
            AnyModel::Classifier(c) => {
                let width = c.input_dim();
                if width <= 1 << 16 {
                    let _ = c.predict_proba(&Matrix::zeros(1, width));
                }
            }
        }
    }
});
