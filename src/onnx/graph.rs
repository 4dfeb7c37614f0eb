//! The ONNX graph under construction: nodes, constants and inputs, and the pieces an export is
//! made of — the scaler, each kind of layer, the encode-time rules, the score and its shares,
//! a table's per-column inputs — each as the nodes that compute what the engine computes.

use super::proto::{
    AttributeProto, AttributeType, DataType, Dimension, DimensionValue, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TensorTypeProto, TypeProto,
    ValueInfoProto,
};
use super::{Exported, IR_VERSION, ML_OPSET, OPSET, Output};
use crate::activation::{Activation, LEAKY_SLOPE};
use crate::data::scale::Scaler;
use crate::data::tabular::{Column, Tabular};
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::regularize::Regularizer;
use crate::score::ScoreMetric;
use prost::Message;

/// The graph under construction: nodes in order, constants, inputs; every intermediate value
/// gets a fresh name under `hg/`, so no name can collide with an input or output.
#[derive(Default)]
pub(super) struct Graph {
    nodes: Vec<NodeProto>,
    constants: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    uses_ml: bool,
    next: usize,
}

pub(super) fn attr_i(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

pub(super) fn attr_f(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f,
        ..Default::default()
    }
}

pub(super) fn attr_s(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: s.as_bytes().to_vec(),
        ..Default::default()
    }
}

pub(super) fn attr_ints(name: &str, ints: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: ints.iter().map(|&v| v as i64).collect(),
        ..Default::default()
    }
}

pub(super) fn attr_strings(name: &str, strings: impl IntoIterator<Item = String>) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Strings as i32,
        strings: strings.into_iter().map(String::into_bytes).collect(),
        ..Default::default()
    }
}

pub(super) fn value_info(name: &str, ty: DataType, dims: &[Option<usize>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(n) => DimensionValue::DimValue(*n as i64),
                None => DimensionValue::DimParam("N".into()),
            }),
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: ty as i32,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
        doc_string: String::new(),
    }
}

pub(super) fn tensor(name: String, ty: DataType, dims: &[usize], raw_data: Vec<u8>) -> TensorProto {
    TensorProto {
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: ty as i32,
        name,
        raw_data,
    }
}

impl Graph {
    fn fresh(&mut self, what: &str) -> String {
        self.next += 1;
        format!("hg/{what}{}", self.next)
    }

    pub(super) fn input(&mut self, name: &str, ty: DataType, dims: &[Option<usize>]) {
        self.inputs.push(value_info(name, ty, dims));
    }

    /// Adds a node of the default domain with one output; returns the output's name.
    pub(super) fn op(&mut self, op: &str, inputs: &[&str], attribute: Vec<AttributeProto>) -> String {
        self.op_in("", op, inputs, attribute)
    }

    fn op_in(&mut self, domain: &str, op: &str, inputs: &[&str], attribute: Vec<AttributeProto>) -> String {
        let out = self.fresh(&op.to_lowercase());
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name: out.clone(),
            op_type: op.into(),
            domain: domain.into(),
            attribute,
        });
        out
    }

    /// A node with two outputs (TopK).
    fn op2(&mut self, op: &str, inputs: &[&str], attribute: Vec<AttributeProto>) -> (String, String) {
        let (a, b) = (self.fresh(&op.to_lowercase()), self.fresh(&op.to_lowercase()));
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![a.clone(), b.clone()],
            name: a.clone(),
            op_type: op.into(),
            domain: String::new(),
            attribute,
        });
        (a, b)
    }

    fn constant_f32(&mut self, dims: &[usize], values: &[f32]) -> String {
        let name = self.fresh("const");
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constants.push(tensor(name.clone(), DataType::Float, dims, raw));
        name
    }

    pub(super) fn constant_f64(&mut self, dims: &[usize], values: &[f64]) -> String {
        let name = self.fresh("const");
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constants.push(tensor(name.clone(), DataType::Double, dims, raw));
        name
    }

    fn constant_i64(&mut self, dims: &[usize], values: &[i64]) -> String {
        let name = self.fresh("const");
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constants.push(tensor(name.clone(), DataType::Int64, dims, raw));
        name
    }

    /// `x` as rows of `width` values (a no-op shape change for rows already flat).
    pub(super) fn flat(&mut self, x: &str, width: usize) -> String {
        let shape = self.constant_i64(&[2], &[-1, width as i64]);
        self.op("Reshape", &[x, &shape], vec![])
    }

    /// `x` as `(c, h, w)` images.
    fn images(&mut self, x: &str, (c, h, w): (usize, usize, usize)) -> String {
        let shape = self.constant_i64(&[4], &[-1, c as i64, h as i64, w as i64]);
        self.op("Reshape", &[x, &shape], vec![])
    }

    /// `(x - offset) * (1 / scale)`, computed as [`Scaler::transform`] does.
    pub(super) fn scale(&mut self, x: &str, s: &Scaler) -> String {
        if s.is_identity() {
            return x.to_string();
        }
        let d = s.offset.len();
        let offset = self.constant_f32(&[d], &s.offset);
        let inv: Vec<f32> = s.scale.iter().map(|v| 1.0 / v).collect();
        let inv = self.constant_f32(&[d], &inv);
        let centred = self.op("Sub", &[x, &offset], vec![]);
        self.op("Mul", &[&centred, &inv], vec![])
    }

    /// `x * scale + offset`, as [`Scaler::inverse`].
    pub(super) fn unscale(&mut self, x: &str, s: &Scaler) -> String {
        if s.is_identity() {
            return x.to_string();
        }
        let d = s.offset.len();
        let scale = self.constant_f32(&[d], &s.scale);
        let offset = self.constant_f32(&[d], &s.offset);
        let scaled = self.op("Mul", &[x, &scale], vec![]);
        self.op("Add", &[&scaled, &offset], vec![])
    }

    fn activation(&mut self, x: &str, a: Activation) -> String {
        match a {
            Activation::Identity => x.to_string(),
            Activation::Relu => self.op("Relu", &[x], vec![]),
            Activation::LeakyRelu => self.op("LeakyRelu", &[x], vec![attr_f("alpha", LEAKY_SLOPE)]),
            Activation::Elu => self.op("Elu", &[x], vec![attr_f("alpha", 1.0)]),
            Activation::Sigmoid => self.op("Sigmoid", &[x], vec![]),
            Activation::Tanh => self.op("Tanh", &[x], vec![]),
            Activation::Gelu => {
                // 0.5 z (1 + tanh(c (z + k z^3))), the tanh form the engine computes (opset 17
                // has no Gelu).
                let (c, k) = (crate::activation::GELU_C, crate::activation::GELU_K);
                let z2 = self.op("Mul", &[x, x], vec![]);
                let z3 = self.op("Mul", &[&z2, x], vec![]);
                let kc = self.constant_f32(&[], &[k]);
                let kz3 = self.op("Mul", &[&z3, &kc], vec![]);
                let inner = self.op("Add", &[x, &kz3], vec![]);
                let cc = self.constant_f32(&[], &[c]);
                let arg = self.op("Mul", &[&inner, &cc], vec![]);
                let t = self.op("Tanh", &[&arg], vec![]);
                let one = self.constant_f32(&[], &[1.0]);
                let t1 = self.op("Add", &[&t, &one], vec![]);
                let zt = self.op("Mul", &[x, &t1], vec![]);
                let half = self.constant_f32(&[], &[0.5]);
                self.op("Mul", &[&zt, &half], vec![])
            }
        }
    }

    /// Runs `layers[range]` on `x` (flat rows in the network's units), each layer's
    /// encode-time rule applied to its output. Returns the last output (flat or images).
    pub(super) fn layers<'r>(
        &mut self,
        layers: &[Layer],
        range: std::ops::Range<usize>,
        x: &str,
        rule: impl Fn(usize) -> Option<&'r Regularizer>,
    ) -> String {
        let mut cur = x.to_string();
        for i in range {
            let l = &layers[i];
            cur = match l {
                Layer::Dense(d) => {
                    let x = self.flat(&cur, d.n_in);
                    let w = self.constant_f32(&[d.n_out, d.n_in], &d.weight);
                    let b = self.constant_f32(&[d.n_out], &d.bias);
                    let y = self.op("Gemm", &[&x, &w, &b], vec![attr_i("transB", 1)]);
                    self.activation(&y, d.activation)
                }
                Layer::Conv2d(c) => {
                    let g = &c.geometry;
                    let x = self.images(&cur, g.input);
                    let w = self.constant_f32(&[c.c_out, g.input.0, g.kernel.0, g.kernel.1], &c.weight);
                    let b = self.constant_f32(&[c.c_out], &c.bias);
                    let y = self.op(
                        "Conv",
                        &[&x, &w, &b],
                        vec![
                            attr_ints("kernel_shape", &[g.kernel.0, g.kernel.1]),
                            attr_ints("strides", &[g.stride.0, g.stride.1]),
                            attr_ints("pads", &[g.padding.0, g.padding.1, g.padding.0, g.padding.1]),
                        ],
                    );
                    self.activation(&y, c.activation)
                }
                Layer::ConvTranspose2d(c) => {
                    let g = &c.geometry;
                    let x = self.images(&cur, c.input);
                    let w = self.constant_f32(&[c.input.0, g.input.0, g.kernel.0, g.kernel.1], &c.weight);
                    let b = self.constant_f32(&[g.input.0], &c.bias);
                    let y = self.op(
                        "ConvTranspose",
                        &[&x, &w, &b],
                        vec![
                            attr_ints("kernel_shape", &[g.kernel.0, g.kernel.1]),
                            attr_ints("strides", &[g.stride.0, g.stride.1]),
                            attr_ints("pads", &[g.padding.0, g.padding.1, g.padding.0, g.padding.1]),
                            attr_ints("output_padding", &[c.output_padding.0, c.output_padding.1]),
                        ],
                    );
                    self.activation(&y, c.activation)
                }
                Layer::MaxPool2d(p) => {
                    let x = self.images(&cur, p.input);
                    self.op(
                        "MaxPool",
                        &[&x],
                        vec![
                            attr_ints("kernel_shape", &[p.k, p.k]),
                            attr_ints("strides", &[p.k, p.k]),
                        ],
                    )
                }
                Layer::Upsample(u) => {
                    let x = self.images(&cur, u.input);
                    let f = u.factor as f32;
                    let scales = self.constant_f32(&[4], &[1.0, 1.0, f, f]);
                    self.op(
                        "Resize",
                        &[&x, "", &scales],
                        vec![
                            attr_s("mode", "nearest"),
                            attr_s("coordinate_transformation_mode", "asymmetric"),
                            attr_s("nearest_mode", "floor"),
                        ],
                    )
                }
                // ONNX orders an LSTM's gates (i, o, f, c), the engine (i, f, c, o); a GRU's
                // (z, r, h), the engine (r, z, n).
                Layer::Lstm(r) => self.recurrent(
                    &cur,
                    Recurrent::new("LSTM", (r.n_in, r.hidden, r.steps, r.last), &[0, 3, 1, 2]),
                    &r.weight,
                    &r.bias,
                ),
                Layer::Gru(r) => self.recurrent(
                    &cur,
                    Recurrent::new("GRU", (r.n_in, r.hidden, r.steps, r.last), &[1, 0, 2]),
                    &r.weight,
                    &r.bias,
                ),
                Layer::Repeat(r) => {
                    let x = self.flat(&cur, r.width);
                    let column = self.constant_i64(&[3], &[-1, r.width as i64, 1]);
                    let x = self.op("Reshape", &[&x, &column], vec![]);
                    let to = self.constant_i64(&[3], &[1, r.width as i64, r.steps as i64]);
                    self.op("Expand", &[&x, &to], vec![])
                }
                Layer::Softmax(sm) => {
                    let x = self.images(&cur, (sm.channels, 1, sm.positions));
                    self.op("Softmax", &[&x], vec![attr_i("axis", 1)])
                }
                Layer::Gaussian(g) => {
                    // Inference passes the mean: the first half of each row.
                    let x = self.flat(&cur, g.n_in());
                    let starts = self.constant_i64(&[1], &[0]);
                    let ends = self.constant_i64(&[1], &[g.width as i64]);
                    let axes = self.constant_i64(&[1], &[1]);
                    self.op("Slice", &[&x, &starts, &ends, &axes], vec![])
                }
            };
            if let Some(r) = rule(i).filter(|r| r.acts_at_encode()) {
                cur = self.encode_rule(&cur, l.n_out(), r);
            }
        }
        cur
    }

    /// A recurrent layer (ONNX `LSTM` or `GRU`) on channel-major sequences `(n_in, 1, steps)`:
    /// the rows become `[steps, batch, n_in]`, the engine's weight `[x ; h]` side by side is
    /// split into ONNX's `W` and `R` with the gates in ONNX's order, the bias goes to `Wb`
    /// (`Rb` zero), and the output is every step's state back channel-major, or the last.
    fn recurrent(&mut self, x: &str, cell: Recurrent<'_>, weight: &[f32], bias: &[f32]) -> String {
        let (n_in, h, t) = (cell.n_in, cell.hidden, cell.steps);
        let cols = n_in + h;
        let (mut w, mut r, mut b) = (Vec::new(), Vec::new(), Vec::new());
        for &g in cell.gates {
            for row in weight[g * h * cols..(g + 1) * h * cols].chunks_exact(cols) {
                w.extend_from_slice(&row[..n_in]);
                r.extend_from_slice(&row[n_in..]);
            }
            b.extend_from_slice(&bias[g * h..(g + 1) * h]);
        }
        b.resize(2 * b.len(), 0.0);
        let gates = cell.gates.len();
        let w = self.constant_f32(&[1, gates * h, n_in], &w);
        let r = self.constant_f32(&[1, gates * h, h], &r);
        let b = self.constant_f32(&[1, 2 * gates * h], &b);
        let x = self.flat(x, n_in * t);
        let seq = self.constant_i64(&[3], &[-1, n_in as i64, t as i64]);
        let x = self.op("Reshape", &[&x, &seq], vec![]);
        let x = self.op("Transpose", &[&x], vec![attr_ints("perm", &[2, 0, 1])]);
        let (y, y_last) = self.op2(cell.op, &[&x, &w, &r, &b], vec![attr_i("hidden_size", h as i64)]);
        if cell.last {
            return self.flat(&y_last, h);
        }
        // Y is [steps, 1, batch, hidden].
        let steps_first = self.constant_i64(&[3], &[t as i64, -1, h as i64]);
        let y = self.op("Reshape", &[&y, &steps_first], vec![]);
        let y = self.op("Transpose", &[&y], vec![attr_ints("perm", &[1, 2, 0])]);
        self.flat(&y, h * t)
    }

    /// The encode-time rule of a layer on its output (flattened, as the engine applies it).
    fn encode_rule(&mut self, x: &str, width: usize, r: &Regularizer) -> String {
        let mut cur = self.flat(x, width);
        if let Some(t) = r.topk
            && let (true, None, Some(theta)) = (t.batch, t.encode_k, t.threshold)
        {
            // BatchTopK at inference: the values at or above the threshold.
            let at = self.constant_f32(&[], &[theta]);
            let keep = self.op("GreaterOrEqual", &[&cur, &at], vec![]);
            let keep = self.op("Cast", &[&keep], vec![attr_i("to", DataType::Float as i64)]);
            cur = self.op("Mul", &[&cur, &keep], vec![]);
        } else if let Some(t) = r.topk {
            let k = t.encode_k.unwrap_or(t.k);
            if k < width {
                // Keep the k largest of each row (ties: the lower index, as TopK orders them),
                // zeros elsewhere.
                let kk = self.constant_i64(&[1], &[k as i64]);
                let (vals, idx) = self.op2(
                    "TopK",
                    &[&cur, &kk],
                    vec![attr_i("axis", 1), attr_i("largest", 1), attr_i("sorted", 1)],
                );
                let shape = self.op("Shape", &[&cur], vec![]);
                let zero = AttributeProto {
                    name: "value".into(),
                    r#type: AttributeType::Tensor as i32,
                    t: Some(tensor(
                        String::new(),
                        DataType::Float,
                        &[1],
                        0f32.to_le_bytes().to_vec(),
                    )),
                    ..Default::default()
                };
                let zeros = self.op("ConstantOfShape", &[&shape], vec![zero]);
                cur = self.op("ScatterElements", &[&zeros, &idx, &vals], vec![attr_i("axis", 1)]);
            }
        }
        if r.binary.is_some() {
            let half = self.constant_f32(&[], &[0.5]);
            let on = self.op("Greater", &[&cur, &half], vec![]);
            cur = self.op("Cast", &[&on], vec![attr_i("to", DataType::Float as i64)]);
        }
        cur
    }

    /// The score of each row (double `[N]`) and the per-feature error terms (double `[N, d]`):
    /// differences in f32, terms and their mean in f64, as [`crate::score::row_scores`].
    pub(super) fn score(&mut self, xs: &str, out: &str, metric: ScoreMetric, d: usize) -> (String, String) {
        let diff = self.op("Sub", &[xs, out], vec![]);
        let diff = self.op("Cast", &[&diff], vec![attr_i("to", DataType::Double as i64)]);
        let terms = match metric {
            ScoreMetric::Mse => self.op("Mul", &[&diff, &diff], vec![]),
            ScoreMetric::Mae => self.op("Abs", &[&diff], vec![]),
            ScoreMetric::Nll | ScoreMetric::MseLof | ScoreMetric::MseKnn => {
                unreachable!("the exporter refuses these scores first")
            }
        };
        let axes = self.constant_i64(&[1], &[1]);
        let sum = self.op("ReduceSum", &[&terms, &axes], vec![attr_i("keepdims", 0)]);
        let dd = self.constant_f64(&[], &[d.max(1) as f64]);
        (self.op("Div", &[&sum, &dd], vec![]), terms)
    }

    /// The `mse+lof` or `mse+knn` score (double `[N]`, by `part`) from the rows' mean squared
    /// errors `mse` (double `[N]`) and codes `code` (float `[N, c]`), as
    /// [`crate::neighbours::CodeNeighbours::scores`]: distances to the stored codes in double
    /// (`|q|² + |r|² − 2 q·r`), the k nearest by `TopK`; for the LOF their k-distances and
    /// densities gathered from constants, for the distance the k-th of them.
    ///
    /// # Errors
    /// [`Error::Setting`] for the distance of a neighbourhood from before it.
    pub(super) fn mse_neighbours(
        &mut self,
        mse: &str,
        code: &str,
        n: &crate::neighbours::CodeNeighbours,
        part: crate::neighbours::Part,
    ) -> Result<String> {
        let s = n.settings;
        let (rows, c) = (s.rows, n.codes.cols());
        let q = self.op("Cast", &[code], vec![attr_i("to", DataType::Double as i64)]);
        let mut rt = vec![0.0f64; c * rows];
        let mut rr = vec![0.0f64; rows];
        for j in 0..rows {
            for (i, &v) in n.codes.row(j).iter().enumerate() {
                rt[i * rows + j] = f64::from(v);
                rr[j] += f64::from(v) * f64::from(v);
            }
        }
        let rt = self.constant_f64(&[c, rows], &rt);
        let rr = self.constant_f64(&[1, rows], &rr);
        let dot = self.op("MatMul", &[&q, &rt], vec![]);
        let qq = self.op("Mul", &[&q, &q], vec![]);
        let axes = self.constant_i64(&[1], &[1]);
        let qq = self.op("ReduceSum", &[&qq, &axes], vec![attr_i("keepdims", 1)]);
        let two = self.constant_f64(&[], &[2.0]);
        let dot2 = self.op("Mul", &[&dot, &two], vec![]);
        let d2 = self.op("Sub", &[&qq, &dot2], vec![]);
        let d2 = self.op("Add", &[&d2, &rr], vec![]);
        let zero = self.constant_f64(&[], &[0.0]);
        let d2 = self.op("Max", &[&d2, &zero], vec![]);
        let d = self.op("Sqrt", &[&d2], vec![]);
        let k = self.constant_i64(&[1], &[s.k as i64]);
        let (near, idx) = self.op2("TopK", &[&d, &k], vec![attr_i("largest", 0), attr_i("sorted", 1)]);
        let part_of = |g: &mut Self, x: &str, r: crate::neighbours::Robust| {
            let m = g.constant_f64(&[], &[r.median]);
            let i = g.constant_f64(&[], &[r.iqr]);
            let centred = g.op("Sub", &[x, &m], vec![]);
            g.op("Div", &[&centred, &i], vec![])
        };
        if part == crate::neighbours::Part::Distance {
            let spread = s.distance.ok_or_else(|| {
                Error::setting(
                    "metric",
                    "mse+knn",
                    "this model's code neighbourhood predates mse+knn: export by mse+lof, or refit the neighbourhood",
                )
            })?;
            let last = self.constant_i64(&[], &[s.k as i64 - 1]);
            let kth = self.op("Gather", &[&near, &last], vec![attr_i("axis", 1)]);
            let (e, p) = (part_of(self, mse, s.error), part_of(self, &kth, spread));
            return Ok(self.op("Add", &[&e, &p], vec![]));
        }
        let as_f64 = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<_>>();
        let kdist = self.constant_f64(&[rows], &as_f64(&n.kdist));
        let lrd = self.constant_f64(&[rows], &as_f64(&n.lrd));
        let kd = self.op("Gather", &[&kdist, &idx], vec![attr_i("axis", 0)]);
        let reach = self.op("Max", &[&near, &kd], vec![]);
        let kk = self.constant_f64(&[], &[s.k as f64]);
        let reach = self.op("ReduceSum", &[&reach, &axes], vec![attr_i("keepdims", 0)]);
        let reach = self.op("Div", &[&reach, &kk], vec![]);
        let tiny = self.constant_f64(&[], &[1e-10]);
        let reach = self.op("Add", &[&reach, &tiny], vec![]);
        let dens = self.op("Gather", &[&lrd, &idx], vec![attr_i("axis", 0)]);
        let dens = self.op("ReduceSum", &[&dens, &axes], vec![attr_i("keepdims", 0)]);
        let dens = self.op("Div", &[&dens, &kk], vec![]);
        let lof = self.op("Mul", &[&dens, &reach], vec![]);
        let (e, l) = (part_of(self, mse, s.error), part_of(self, &lof, s.lof));
        Ok(self.op("Add", &[&e, &l], vec![]))
    }

    /// Each term's share of its row's total (0 where the total is 0), float `[N, d]`.
    pub(super) fn share(&mut self, terms: &str, score: &str, d: usize) -> String {
        let dd = self.constant_f64(&[], &[d.max(1) as f64]);
        let total = self.op("Mul", &[score, &dd], vec![]);
        let axes = self.constant_i64(&[1], &[1]);
        let total = self.op("Unsqueeze", &[&total, &axes], vec![]);
        let zero = self.constant_f64(&[], &[0.0]);
        let positive = self.op("Greater", &[&total, &zero], vec![]);
        let one = self.constant_f64(&[], &[1.0]);
        let safe = self.op("Where", &[&positive, &total, &one], vec![]);
        let ratio = self.op("Div", &[terms, &safe], vec![]);
        let ratio = self.op("Where", &[&positive, &ratio, &zero], vec![]);
        self.op("Cast", &[&ratio], vec![attr_i("to", DataType::Float as i64)])
    }

    /// One input per table column and the encoded features concatenated, as
    /// [`Tabular::transform`] makes them.
    pub(super) fn table_inputs(&mut self, t: &Tabular, notes: &mut Vec<String>) -> Result<(String, Vec<String>)> {
        let mut parts = Vec::new();
        let mut docs = Vec::new();
        for c in &t.columns {
            let name = match c {
                Column::Numeric { name, .. } | Column::Categorical { name, .. } | Column::Hashed { name, .. } => name,
            };
            if let Some(o) = Output::ALL.iter().find(|o| o.name() == name) {
                return Err(Error::Config(format!(
                    "the table column `{name}` has the name of the graph output `{o}`; ask for other outputs with --outputs, or rename the column and train again"
                )));
            }
            match c {
                Column::Numeric { fill, indicator, .. } => {
                    self.input(name, DataType::Float, &[None, Some(1)]);
                    docs.push(format!(
                        "{name}: float[N, 1]{}",
                        if fill.is_some() { " (NaN = missing)" } else { "" }
                    ));
                    match fill {
                        Some(f) => {
                            let missing = self.op("IsNaN", &[name], vec![]);
                            let fc = self.constant_f32(&[], &[*f]);
                            parts.push(self.op("Where", &[&missing, &fc, name], vec![]));
                            if *indicator {
                                parts.push(self.op("Cast", &[&missing], vec![attr_i("to", DataType::Float as i64)]));
                            }
                        }
                        None => parts.push(name.clone()),
                    }
                }
                Column::Categorical { categories, .. } => {
                    self.input(name, DataType::String, &[None, Some(1)]);
                    docs.push(format!("{name}: string[N, 1]"));
                    self.uses_ml = true;
                    // Every spelling of a missing field is the empty category, as in training.
                    let mut keys: Vec<String> = categories.clone();
                    let mut values: Vec<usize> = (0..categories.len()).collect();
                    if let Some(empty) = categories.iter().position(String::is_empty) {
                        for m in crate::data::csv::MISSING.iter().filter(|m| !m.is_empty()) {
                            if !categories.iter().any(|c| c == m) {
                                keys.push((*m).to_string());
                                values.push(empty);
                            }
                        }
                    }
                    let index = self.op_in(
                        "ai.onnx.ml",
                        "LabelEncoder",
                        &[name],
                        vec![
                            attr_strings("keys_strings", keys),
                            attr_ints("values_int64s", &values),
                            attr_i("default_int64", categories.len() as i64),
                        ],
                    );
                    parts.push(self.one_hot(&index, categories.len() + 1));
                }
                Column::Hashed { buckets, .. } => {
                    self.input(name, DataType::Int64, &[None, Some(1)]);
                    docs.push(format!("{name}: int64[N, 1] (bucket index)"));
                    notes.push(format!(
                        "column `{name}` is hashed into {buckets} buckets, which ONNX cannot compute: feed its bucket index, FNV-1a 64 of the value's UTF-8 bytes (the empty string for a missing value) modulo {buckets}, as int64"
                    ));
                    parts.push(self.one_hot(name, *buckets));
                }
            }
        }
        if !t.dropped.is_empty() {
            notes.push(format!(
                "constant columns left out in training are not inputs: {}",
                t.dropped.join(", ")
            ));
        }
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        let x = self.op("Concat", &refs, vec![attr_i("axis", 1)]);
        Ok((x, docs))
    }

    /// Float one-hot rows `[N, depth]` of int64 indices `[N, 1]`.
    fn one_hot(&mut self, index: &str, depth: usize) -> String {
        let depth_c = self.constant_i64(&[], &[depth as i64]);
        let values = self.constant_f32(&[2], &[0.0, 1.0]);
        let hot = self.op("OneHot", &[index, &depth_c, &values], vec![attr_i("axis", -1)]);
        self.flat(&hot, depth)
    }

    /// The model: named outputs (an Identity node gives each its public name), metadata.
    pub(super) fn finish(
        mut self,
        values: Vec<(Output, String, DataType, Vec<Option<usize>>)>,
        inputs: Vec<String>,
        props: Vec<(&str, String)>,
        notes: Vec<String>,
        outputs: &[Output],
    ) -> Exported {
        let mut graph_outputs = Vec::new();
        for o in outputs {
            let (_, value, ty, dims) = values.iter().find(|v| v.0 == *o).expect("every chosen output is built");
            self.nodes.push(NodeProto {
                input: vec![value.clone()],
                output: vec![o.name().into()],
                name: format!("output/{o}"),
                op_type: "Identity".into(),
                ..Default::default()
            });
            graph_outputs.push(value_info(o.name(), *ty, dims));
        }
        let mut opset_import = vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }];
        if self.uses_ml {
            opset_import.push(OperatorSetIdProto {
                domain: "ai.onnx.ml".into(),
                version: ML_OPSET,
            });
        }
        let mut metadata_props: Vec<StringStringEntryProto> = vec![
            ("hourglass.format", crate::format::FORMAT_NAME.to_string()),
            ("hourglass.format_version", crate::format::FORMAT_VERSION.to_string()),
            ("hourglass.crate_version", env!("CARGO_PKG_VERSION").to_string()),
            ("hourglass.inputs", inputs.join("; ")),
        ]
        .into_iter()
        .chain(props)
        .map(|(k, v)| StringStringEntryProto {
            key: k.into(),
            value: v,
        })
        .collect();
        if !notes.is_empty() {
            metadata_props.push(StringStringEntryProto {
                key: "hourglass.notes".into(),
                value: notes.join("\n"),
            });
        }
        let model = ModelProto {
            ir_version: IR_VERSION,
            opset_import,
            producer_name: "hourglass".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            domain: String::new(),
            model_version: 1,
            doc_string:
                "Exported by hourglass: rows in the data's units in, the model's outputs out (preprocessing inside)."
                    .into(),
            graph: Some(GraphProto {
                node: self.nodes,
                name: "hourglass".into(),
                initializer: self.constants,
                doc_string: String::new(),
                input: self.inputs,
                output: graph_outputs,
            }),
            metadata_props,
        };
        Exported {
            bytes: model.encode_to_vec(),
            inputs,
            outputs: outputs.to_vec(),
            notes,
        }
    }
}

/// What [`Graph::recurrent`] needs to know of a recurrent layer besides its weights.
struct Recurrent<'a> {
    /// `LSTM` or `GRU`.
    op: &'static str,
    n_in: usize,
    hidden: usize,
    steps: usize,
    /// Only the last step's state.
    last: bool,
    /// The engine's gate block at each of ONNX's gate positions.
    gates: &'a [usize],
}

impl<'a> Recurrent<'a> {
    /// `op` over `(n_in, hidden, steps, last)` with the engine's gate block at each of ONNX's
    /// gate positions.
    fn new(op: &'static str, (n_in, hidden, steps, last): (usize, usize, usize, bool), gates: &'a [usize]) -> Self {
        Recurrent {
            op,
            n_in,
            hidden,
            steps,
            last,
            gates,
        }
    }
}
