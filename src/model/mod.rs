//! The autoencoder: [`AutoencoderConfig`] (a layer stack, [`Arch`]) → [`AutoencoderConfig::init`]
//! → [`Autoencoder`]. [`Mlp`] is the shorthand for dense stacks; [`toml`] reads architecture
//! files.

pub mod arch;
pub mod config;
pub mod design;
pub mod toml;

pub use arch::{Arch, Dims, LayerSpec, Planned};
pub use config::{AutoencoderConfig, Mlp};
pub use design::{ArchSource, Design};

use crate::data::scale::Scaler;
use crate::error::{Error, Result};
use crate::infer::InferPrecision;
use crate::layer::{Dense, Int8Layers, Layer};
use crate::noise::Noise;
use crate::regularize::Regularizer;
use crate::rng::Rng;
use crate::tensor::{Matrix, MatrixRef, Rows};

/// A multilayer autoencoder `x -> code -> x̂`, with the scaler fitted on its training data.
///
/// `encode`, `decode` and `reconstruct` take and return data in the user's units; the scaler
/// is applied and inverted inside.
#[derive(Clone, Debug, PartialEq)]
pub struct Autoencoder {
    pub(crate) config: AutoencoderConfig,
    pub(crate) layers: Vec<Layer>,
    pub(crate) scaler: Scaler,
    /// The int8 forms of the dense layers and convolutions, when inference runs in int8
    /// ([`Autoencoder::set_precision`]); never stored in a file.
    pub(crate) int8: Option<std::sync::Arc<Int8Layers>>,
}

impl Autoencoder {
    /// Assembles a model of dense layers from its parts.
    ///
    /// # Errors
    /// [`Error::Config`] when the layers do not match the config.
    pub fn from_parts(config: AutoencoderConfig, layers: Vec<Dense>, scaler: Scaler) -> Result<Self> {
        Self::from_layers(config, layers.into_iter().map(Layer::Dense).collect(), scaler)
    }

    /// Assembles a model of any architecture from its layers (used by the file loader).
    ///
    /// # Errors
    /// [`Error::Config`] when the layers do not match the config, the scaler does not match
    /// the input width, or tied weights are not transposes of each other.
    pub fn from_layers(config: AutoencoderConfig, layers: Vec<Layer>, scaler: Scaler) -> Result<Self> {
        config.validate()?;
        config::check_layers(&config, &layers)?;
        let d = config.input_dim();
        scaler.check(d)?;
        let model = Autoencoder {
            config,
            layers,
            scaler,
            int8: None,
        };
        let mut synced = model.clone();
        synced.sync_tied();
        if synced != model {
            return Err(Error::Config(
                "tied model: a decoder weight is not the transpose of its encoder weight".into(),
            ));
        }
        Ok(model)
    }

    /// Copies each tied encoder weight, transposed, into its decoder layer.
    pub(crate) fn sync_tied(&mut self) {
        sync_tied(&mut self.layers, &self.config.tied_pairs());
    }

    /// The architecture.
    pub fn config(&self) -> &AutoencoderConfig {
        &self.config
    }

    /// All layers that compute, encoder first.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The layers as dense layers, when they all are (MLP autoencoders).
    pub fn dense_layers(&self) -> Option<Vec<&Dense>> {
        self.layers.iter().map(Layer::as_dense).collect()
    }

    /// Number of encoder layers that compute (the code layer included).
    pub fn encoder_layers(&self) -> usize {
        self.config.encoder_layers()
    }

    /// Sets how many code units top-k keeps at encode time (e.g. 3k, as Makhzani & Frey do for
    /// classification features).
    ///
    /// # Errors
    /// [`Error::Setting`] when the code has no top-k or `k` is 0 or wider than the code.
    pub fn set_encode_k(&mut self, k: usize) -> Result<()> {
        let width = self.code_dim();
        let code = self.config.code_layer();
        match self.config.regularizers.get_mut(&code) {
            Some(r) => r.set_encode_k(k, width),
            None => Regularizer::default().set_encode_k(k, width),
        }
    }

    /// Replaces the scaler (e.g. one fitted for a model that is not trained as an autoencoder).
    ///
    /// # Errors
    /// [`Error::Config`] when it does not have the input's width.
    pub fn set_scaler(&mut self, scaler: Scaler) -> Result<()> {
        let d = self.input_dim();
        scaler.check(d)?;
        self.scaler = scaler;
        Ok(())
    }

    /// The fitted scaler.
    pub fn scaler(&self) -> &Scaler {
        &self.scaler
    }

    /// Width of the input.
    pub fn input_dim(&self) -> usize {
        self.layers[0].n_in()
    }

    /// Width of the code.
    pub fn code_dim(&self) -> usize {
        self.layers[self.config.code_layer()].n_out()
    }

    /// Width of the output.
    pub fn output_dim(&self) -> usize {
        self.layers[self.layers.len() - 1].n_out()
    }

    /// Total number of parameters.
    pub fn num_params(&self) -> usize {
        self.layers.iter().map(Layer::num_params).sum()
    }

    /// An error unless the output has the input's width (see
    /// [`AutoencoderConfig::reconstructs_input`]).
    ///
    /// # Errors
    /// [`Error::Config`] naming both widths.
    pub fn check_reconstructs(&self) -> Result<()> {
        if self.output_dim() == self.input_dim() {
            return Ok(());
        }
        Err(Error::Config(format!(
            "this model maps {} input values to {} output values (trained on paired targets): it has no reconstruction error",
            self.input_dim(),
            self.output_dim()
        ))
        .with_hint(crate::error::Hint::Target))
    }

    fn check_width(&self, x: MatrixRef<'_>, expected: usize, what: &str) -> Result<()> {
        if x.cols() != expected {
            return Err(Error::Shape {
                what: what.into(),
                expected: format!("{expected} columns"),
                got: format!("{} columns", x.cols()),
            });
        }
        Ok(())
    }

    /// The codes of `x` (rows in, rows out).
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` does not have `input_dim` columns.
    pub fn encode<'a>(&self, x: impl Into<MatrixRef<'a>>) -> Result<Matrix> {
        self.encode_layer(x, self.config.code_layer())
    }

    /// The activations of encoder layer `layer` (0-based; the last encoder layer is the code).
    ///
    /// # Errors
    /// [`Error::Shape`] for a wrong input width, [`Error::Setting`] for a layer out of range.
    pub fn encode_layer<'a>(&self, x: impl Into<MatrixRef<'a>>, layer: usize) -> Result<Matrix> {
        let x = x.into();
        self.check_width(x, self.input_dim(), "encoder input")?;
        if layer >= self.encoder_layers() {
            return Err(Error::setting(
                "layer",
                layer,
                format!("the encoder has layers 0..={}", self.encoder_layers() - 1),
            ));
        }
        Ok(self.forward_scaled(self.scaled(x).view(), 0..layer + 1))
    }

    /// Reconstructions of codes.
    ///
    /// # Errors
    /// [`Error::Shape`] if `codes` does not have `code_dim` columns.
    pub fn decode<'a>(&self, codes: impl Into<MatrixRef<'a>>) -> Result<Matrix> {
        let codes = codes.into();
        self.check_width(codes, self.code_dim(), "decoder input (codes)")?;
        let mut out = self.forward_scaled(codes, self.encoder_layers()..self.layers.len());
        self.unscale(&mut out);
        Ok(out)
    }

    /// `decode(encode(x))`.
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` does not have `input_dim` columns.
    pub fn reconstruct<'a>(&self, x: impl Into<MatrixRef<'a>>) -> Result<Matrix> {
        let x = x.into();
        self.check_width(x, self.input_dim(), "autoencoder input")?;
        let mut out = self.forward_scaled(self.scaled(x).view(), 0..self.layers.len());
        self.unscale(&mut out);
        Ok(out)
    }

    /// `x` in the network's units (scaled) and its reconstruction in the same units: what
    /// anomaly scores compare, so that no feature weighs more for being measured in larger units.
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` does not have `input_dim` columns.
    pub fn reconstruct_scaled<'a>(&self, x: impl Into<MatrixRef<'a>>) -> Result<(Rows<'a>, Matrix)> {
        let x = x.into();
        self.check_width(x, self.input_dim(), "autoencoder input")?;
        self.check_reconstructs()?;
        let xs = self.scaled(x);
        let out = self.forward_scaled(xs.view(), 0..self.layers.len());
        Ok((xs, out))
    }

    /// `x` in the network's units and the output of `layers` (a non-empty range from 0) on it.
    pub(crate) fn scaled_through<'a>(
        &self,
        x: MatrixRef<'a>,
        layers: std::ops::Range<usize>,
    ) -> Result<(Rows<'a>, Matrix)> {
        self.check_width(x, self.input_dim(), "autoencoder input")?;
        let xs = self.scaled(x);
        let out = self.forward_scaled(xs.view(), layers);
        Ok((xs, out))
    }

    /// `x` corrupted by `noise` (drawn from `rng`; `image` is the rows' image shape for
    /// image-shaped noise) and the reconstruction of the corrupted rows, both in the data's
    /// units. The noise is applied in the network's units — after the scaler, where training
    /// applies `TrainConfig::noise` — so `gaussian:0.5` means the same in training, evaluation
    /// and pictures.
    ///
    /// # Errors
    /// [`Error::Shape`] for a wrong width, [`Error::Config`] for a noise that does not fit the
    /// rows, or a model without a reconstruction.
    pub fn reconstruct_corrupted<'a>(
        &self,
        x: impl Into<MatrixRef<'a>>,
        noise: &[Noise],
        image: Option<(usize, usize, usize)>,
        rng: &mut Rng,
    ) -> Result<(Matrix, Matrix)> {
        let x = x.into();
        self.check_width(x, self.input_dim(), "autoencoder input")?;
        self.check_reconstructs()?;
        for n in noise {
            n.check(x.cols(), image)?;
        }
        let mut input = self.scaled(x).into_owned();
        crate::noise::corrupt(noise, input.as_mut_slice(), x.cols(), image, rng);
        let mut out = self.forward_scaled(input.view(), 0..self.layers.len());
        self.unscale(&mut out);
        self.unscale(&mut input);
        Ok((input, out))
    }

    /// `x` scaled for the network (borrowed when the scaler is the identity).
    fn scaled<'a>(&self, x: MatrixRef<'a>) -> Rows<'a> {
        let mut x = Rows::Borrowed(x);
        if !self.scaler.is_identity() {
            self.scaler.transform(x.to_mut());
        }
        x
    }

    /// Inverts the scaler on outputs of the input's width (outputs of another width, from
    /// paired targets, are in the targets' units already).
    fn unscale(&self, out: &mut Matrix) {
        if out.cols() == self.input_dim() {
            self.scaler.inverse(out);
        }
    }

    /// Runs `layers` on already-scaled rows, with the layers' encode-time rules.
    pub(crate) fn forward_scaled(&self, x: MatrixRef<'_>, layers: std::ops::Range<usize>) -> Matrix {
        crate::infer::forward_with(
            &self.layers,
            self.int8.as_deref(),
            |l| self.config.regularizer_at(l),
            x,
            layers,
        )
    }

    /// Sets the arithmetic of inference (`encode`, `decode`, `reconstruct`, scores): int8
    /// quantizes the weights of the dense layers and convolutions once, here. Training a model
    /// resets it to f32.
    ///
    /// # Errors
    /// As [`Int8Dense::new`](crate::layer::Int8Dense::new) for a layer too wide for int8.
    pub fn set_precision(&mut self, precision: InferPrecision) -> Result<()> {
        self.int8 = match precision {
            InferPrecision::F32 => None,
            InferPrecision::Int8 => Some(std::sync::Arc::new(Int8Layers::new(&self.layers)?)),
        };
        Ok(())
    }

    /// The arithmetic of inference ([`Autoencoder::set_precision`]).
    pub fn precision(&self) -> InferPrecision {
        if self.int8.is_some() {
            InferPrecision::Int8
        } else {
            InferPrecision::F32
        }
    }

    /// How many layers run in int8 (0 in f32): the dense ones and the convolutions.
    pub fn int8_layers(&self) -> usize {
        self.int8.as_ref().map_or(0, |q| q.count())
    }
}

/// Copies each tied encoder weight, transposed, into its decoder layer.
pub(crate) fn sync_tied(layers: &mut [Layer], pairs: &[(usize, usize)]) {
    for &(e, d) in pairs {
        let (n_in, n_out) = (layers[e].n_in(), layers[e].n_out());
        let (enc, dec) = layers.split_at_mut(d);
        let (w, wt) = (enc[e].params().0, dec[0].params_mut().0);
        for o in 0..n_out {
            for i in 0..n_in {
                wt[i * n_out + o] = w[o * n_in + i];
            }
        }
    }
}

#[cfg(test)]
mod tests;
