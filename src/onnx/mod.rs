//! ONNX export: one portable file that computes what the CLI computes, preprocessing included.
//!
//! The graph (opset 17, IR version 8) takes rows in the user's units — the stored scaler is
//! inside it — and gives named outputs ([`Output`]): the code (with the encode-time rules:
//! top-k, binary threshold), the reconstruction, the anomaly score (the reconstruction error in
//! the model's units, as `hourglass score`), the calibrated anomaly flag and each feature's
//! share of the error; a classifier gives class probabilities and the most probable class.
//! The batch dimension is dynamic. The model's format version, provenance, threshold and
//! classes are in the metadata properties (keys `hourglass.*`).
//!
//! A model trained on an encoded table takes one input per table column (named by it): numbers
//! as float `[N, 1]` with NaN for a missing value (imputed and flagged inside the graph as in
//! training), categories as string `[N, 1]` (one-hot inside the graph through `ai.onnx.ml`'s
//! `LabelEncoder`). Feature hashing (FNV-1a) has no ONNX operator: a hashed column's input is
//! the bucket index, int64 `[N, 1]`, that the caller computes (see [`Exported::notes`]).
//!
//! The messages are a hand-kept subset of `onnx.proto` ([`proto`]); nothing here parses ONNX.

mod graph;
pub mod proto;

use crate::classifier::Classifier;
use crate::error::{Error, Result};
use crate::format::ModelFile;
use crate::score::ScoreMetric;
use graph::{Graph, attr_i};
use proto::DataType;
use std::fmt;

/// The ONNX operator set the graph uses.
pub const OPSET: i64 = 17;
/// The ONNX IR version of the file.
pub const IR_VERSION: i64 = 8;
/// The `ai.onnx.ml` operator set (for `LabelEncoder`), imported only when a table needs it.
pub const ML_OPSET: i64 = 3;

/// A named output of an exported graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// The code, float `[N, code]` (encode-time rules applied), as `hourglass encode`.
    Code,
    /// The reconstruction in the input's units, float `[N, d]`, as `hourglass reconstruct`.
    Reconstruction,
    /// The anomaly score, double `[N]`, as `hourglass score`.
    Score,
    /// Score above the calibrated threshold, bool `[N]` (calibrated models only).
    Anomaly,
    /// Each feature's share of its row's score, float `[N, d]` (rows sum to 1), as
    /// `hourglass score --per-feature`.
    PerFeature,
    /// Class probabilities, float `[N, classes]` (classifiers only).
    Probabilities,
    /// The most probable class index, int64 `[N]` (classifiers only).
    Class,
}

impl Output {
    /// Every output, in the order a graph lists them.
    pub const ALL: [Output; 7] = [
        Output::Code,
        Output::Reconstruction,
        Output::Score,
        Output::Anomaly,
        Output::PerFeature,
        Output::Probabilities,
        Output::Class,
    ];

    /// The graph output's name (also how `--outputs` spells it).
    pub fn name(self) -> &'static str {
        match self {
            Output::Code => "code",
            Output::Reconstruction => "reconstruction",
            Output::Score => "score",
            Output::Anomaly => "anomaly",
            Output::PerFeature => "per_feature",
            Output::Probabilities => "probabilities",
            Output::Class => "class",
        }
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Output {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Output::ALL.into_iter().find(|o| o.name() == s).ok_or_else(|| {
            format!(
                "unknown output `{s}`; expected {}",
                Output::ALL.map(Output::name).join(", ")
            )
        })
    }
}

/// An exported model: the `.onnx` bytes and what a caller must know to use them.
#[derive(Clone, Debug)]
pub struct Exported {
    /// The serialized `ModelProto`.
    pub bytes: Vec<u8>,
    /// The graph's inputs: name, element type and shape, as `name: float[N, 784]`.
    pub inputs: Vec<String>,
    /// The graph's outputs, in order.
    pub outputs: Vec<Output>,
    /// What the caller must do that the graph cannot (e.g. hashing a column), for the user.
    pub notes: Vec<String>,
}

impl Exported {
    /// Writes the `.onnx` file atomically (temporary file, then rename).
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        crate::fsutil::write_bytes(path, &self.bytes)
    }
}

/// The outputs an autoencoder's export gives by default: the code, and for a model that
/// reconstructs its input the reconstruction and the score (and the flag once calibrated);
/// a model of paired targets gives its prediction as `reconstruction`.
pub fn default_outputs(file: &ModelFile) -> Vec<Output> {
    let mut out = vec![Output::Code, Output::Reconstruction];
    if file.model.check_reconstructs().is_ok() {
        out.push(Output::Score);
        if file.anomaly.is_some() {
            out.push(Output::Anomaly);
        }
    }
    out
}

/// Exports an autoencoder (with its scaler, table encoding and threshold) with `outputs`
/// (`None`: [`default_outputs`]).
///
/// # Errors
/// [`Error::Setting`] (`outputs`) for an output the model does not have (a score without a
/// reconstruction of the input, a flag without a calibrated threshold, classifier outputs);
/// [`Error::Config`] when a table column's name is also an output's name.
pub fn autoencoder(file: &ModelFile, outputs: Option<&[Output]>) -> Result<Exported> {
    let model = &file.model;
    let outputs = choose(outputs, default_outputs(file))?;
    let reconstructs = model.check_reconstructs().is_ok();
    for &o in &outputs {
        let why = match o {
            Output::Score | Output::PerFeature | Output::Anomaly if !reconstructs => {
                Some("this model does not reconstruct its input (it was trained on paired targets)")
            }
            Output::Anomaly if file.anomaly.is_none() => {
                Some("the model has no threshold; run `hourglass calibrate` first")
            }
            Output::Probabilities | Output::Class => Some("only classifiers have it"),
            _ => None,
        };
        if let Some(why) = why {
            return Err(Error::setting("outputs", o, why));
        }
    }
    let mut g = Graph::default();
    let mut notes = Vec::new();
    let (x, inputs) = match &file.tabular {
        Some(t) => g.table_inputs(t, &mut notes)?,
        None => {
            let d = model.input_dim();
            let name = "input";
            g.input(name, DataType::Float, &[None, Some(d)]);
            (name.to_string(), vec![format!("{name}: float[N, {d}]")])
        }
    };
    let xs = g.scale(&x, model.scaler());
    let cfg = model.config();
    let enc = model.encoder_layers();
    let rule = |i: usize| cfg.regularizer_at(i);
    let code = g.layers(model.layers(), 0..enc, &xs, rule);
    let code = g.flat(&code, model.code_dim());
    let mut values: Vec<(Output, String, DataType, Vec<Option<usize>>)> = Vec::new();
    let d = model.input_dim();
    let want = |o: Output| outputs.contains(&o);
    if want(Output::Code) {
        values.push((
            Output::Code,
            code.clone(),
            DataType::Float,
            vec![None, Some(model.code_dim())],
        ));
    }
    if outputs.iter().any(|o| o != &Output::Code) {
        let out = g.layers(model.layers(), enc..model.layers().len(), &code, rule);
        let out = g.flat(&out, model.output_dim());
        if want(Output::Reconstruction) {
            let r = if reconstructs {
                g.unscale(&out, model.scaler())
            } else {
                out.clone()
            };
            values.push((
                Output::Reconstruction,
                r,
                DataType::Float,
                vec![None, Some(model.output_dim())],
            ));
        }
        if reconstructs && (want(Output::Score) || want(Output::PerFeature) || want(Output::Anomaly)) {
            let metric = file.default_metric();
            if metric == ScoreMetric::Nll {
                return Err(Error::Config(format!(
                    "the model is calibrated on {} scores (a VAE's likelihood, estimated by drawing codes), which an ONNX graph cannot compute; export code and reconstruction",
                    metric.name()
                )));
            }
            let (error, terms) = g.score(&xs, &out, metric.error_part(), d);
            let score = match (&file.neighbours, crate::neighbours::Part::of(metric)) {
                (Some(n), Some(part)) => g.mse_neighbours(&error, &code, n, part)?,
                _ => error.clone(),
            };
            if want(Output::Score) {
                values.push((Output::Score, score.clone(), DataType::Double, vec![None]));
            }
            if let Some(t) = file.anomaly.as_ref().filter(|_| want(Output::Anomaly)) {
                let v = g.constant_f64(&[], &[t.value]);
                let flag = g.op("Greater", &[&score, &v], vec![]);
                values.push((Output::Anomaly, flag, DataType::Bool, vec![None]));
            }
            if want(Output::PerFeature) {
                let share = g.share(&terms, &error, d);
                values.push((Output::PerFeature, share, DataType::Float, vec![None, Some(d)]));
            }
        }
    }
    let mut props = vec![
        ("hourglass.kind", "autoencoder".to_string()),
        ("hourglass.score_metric", file.default_metric().name().into()),
        ("hourglass.provenance", json(&file.provenance)),
        ("hourglass.config", json(model.config())),
    ];
    if let Some(t) = &file.anomaly {
        props.push(("hourglass.threshold", json(t)));
    }
    if let Some(t) = &file.tabular {
        props.push(("hourglass.tabular", json(t)));
    }
    if let Some(w) = &file.windows {
        props.push(("hourglass.windows", json(w)));
        notes.push(format!(
            "the graph reads windows of {} steps (rows of {} values, channel-major); cutting a series into them and each step's score (the mean over its windows) are the caller's",
            w.length,
            model.input_dim()
        ));
    }
    Ok(g.finish(values, inputs, props, notes, &outputs))
}

/// Exports a classifier (with its scaler): outputs `probabilities` and `class` by default.
///
/// # Errors
/// [`Error::Setting`] (`outputs`) for an autoencoder's output.
pub fn classifier(model: &Classifier, outputs: Option<&[Output]>) -> Result<Exported> {
    let outputs = choose(outputs, vec![Output::Probabilities, Output::Class])?;
    if let Some(&o) = outputs
        .iter()
        .find(|o| !matches!(o, Output::Probabilities | Output::Class))
    {
        return Err(Error::setting(
            "outputs",
            o,
            "a classifier gives probabilities and class",
        ));
    }
    let mut g = Graph::default();
    let d = model.input_dim();
    g.input("input", DataType::Float, &[None, Some(d)]);
    let xs = g.scale("input", &model.scaler);
    let n = model.layers.len();
    let logits = g.layers(&model.layers, 0..n, &xs, |_| None);
    let c = model.config.classes.len();
    let logits = g.flat(&logits, c);
    let p = g.op("Softmax", &[&logits], vec![attr_i("axis", -1)]);
    let mut values = Vec::new();
    if outputs.contains(&Output::Probabilities) {
        values.push((Output::Probabilities, p.clone(), DataType::Float, vec![None, Some(c)]));
    }
    if outputs.contains(&Output::Class) {
        let k = g.op("ArgMax", &[&p], vec![attr_i("axis", 1), attr_i("keepdims", 0)]);
        values.push((Output::Class, k, DataType::Int64, vec![None]));
    }
    let props = vec![
        ("hourglass.kind", "classifier".to_string()),
        ("hourglass.classes", json(&model.config.classes)),
        ("hourglass.config", json(&model.config)),
    ];
    Ok(g.finish(
        values,
        vec![format!("input: float[N, {d}]")],
        props,
        Vec::new(),
        &outputs,
    ))
}

/// The outputs asked for (at least one, none twice), or the defaults.
fn choose(asked: Option<&[Output]>, defaults: Vec<Output>) -> Result<Vec<Output>> {
    let Some(asked) = asked else { return Ok(defaults) };
    if asked.is_empty() {
        return Err(Error::setting("outputs", "", "name at least one output"));
    }
    if let Some((_, o)) = asked.iter().enumerate().find(|(i, o)| asked[..*i].contains(o)) {
        return Err(Error::setting("outputs", o, "named twice"));
    }
    Ok(asked.to_vec())
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serializes")
}

#[cfg(test)]
mod tests;
