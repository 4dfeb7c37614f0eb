//! What the exported file holds, read back with the same messages. That onnxruntime computes
//! what the engine computes is checked from Python (`python/tests/test_onnx.py`).

use super::proto::{DimensionValue, ModelProto, TensorTypeProto, ValueInfoProto};
use super::*;
use crate::data::scale::Scaler;
use crate::data::scale::Scaling;
use crate::data::tabular::{Column, Tabular};
use crate::model::Mlp;
use crate::score::{Threshold, ThresholdRule};
use prost::Message;

fn decode(e: &Exported) -> ModelProto {
    ModelProto::decode(e.bytes.as_slice()).expect("the export decodes")
}

/// The tensor type of a graph input or output.
fn tensor_type(v: &ValueInfoProto) -> &TensorTypeProto {
    v.r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .expect("a tensor type")
}

fn names(v: &[ValueInfoProto]) -> Vec<&str> {
    v.iter().map(|i| i.name.as_str()).collect()
}

fn model() -> ModelFile {
    let mut m = Mlp::new(6, 2).with_hidden(&[4]).config().init(3).unwrap();
    let x = crate::tensor::Matrix::from_vec(2, 6, (0..12).map(|v| v as f32).collect()).unwrap();
    m.set_scaler(Scaler::fit(Scaling::Standard, &x)).unwrap();
    ModelFile::new(m)
}

#[test]
fn weights_scaler_and_metadata_are_in_the_file() {
    let file = model();
    let e = autoencoder(&file, None).unwrap();
    let m = decode(&e);
    assert_eq!(
        (m.ir_version, m.opset_import.len(), m.opset_import[0].version),
        (8, 1, 17)
    );
    let g = m.graph.unwrap();
    assert_eq!(names(&g.input), ["input"]);
    assert_eq!(names(&g.output), ["code", "reconstruction", "score"]);
    // The batch dimension is named (dynamic); the width is fixed.
    let dims = &tensor_type(&g.input[0]).shape.as_ref().unwrap().dim;
    assert_eq!(dims[0].value, Some(DimensionValue::DimParam("N".into())));
    assert_eq!(dims[1].value, Some(DimensionValue::DimValue(6)));
    // Every weight is an initializer, bit for bit.
    let raw = |values: &[f32]| values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
    for l in file.model.layers() {
        let (w, b) = l.params();
        for t in [raw(w), raw(b)] {
            assert!(
                g.initializer.iter().any(|i| i.raw_data == t),
                "a layer's tensor is missing"
            );
        }
    }
    let offset = raw(&file.model.scaler().offset);
    assert!(g.initializer.iter().any(|i| i.raw_data == offset));
    let meta: std::collections::HashMap<_, _> = m
        .metadata_props
        .iter()
        .map(|p| (p.key.as_str(), p.value.as_str()))
        .collect();
    assert_eq!(
        meta["hourglass.format_version"],
        crate::format::FORMAT_VERSION.to_string()
    );
    assert_eq!(meta["hourglass.kind"], "autoencoder");
    assert_eq!(meta["hourglass.inputs"], "input: float[N, 6]");
    // Every node's inputs exist before it: graph inputs, initializers or earlier outputs.
    let mut known: Vec<&str> = names(&g.input)
        .into_iter()
        .chain(g.initializer.iter().map(|i| i.name.as_str()))
        .collect();
    known.push("");
    for n in &g.node {
        for i in &n.input {
            assert!(known.contains(&i.as_str()), "{} reads {i} before it exists", n.name);
        }
        known.extend(n.output.iter().map(String::as_str));
    }
}

#[test]
fn outputs_are_chosen_and_checked() {
    let mut file = model();
    let only_code = autoencoder(&file, Some(&[Output::Code])).unwrap();
    let g = decode(&only_code).graph.unwrap();
    assert_eq!(names(&g.output), ["code"]);
    // The decoder is not in a graph that only encodes.
    assert_eq!(g.node.iter().filter(|n| n.op_type == "Gemm").count(), 2);
    let refused = |f: &ModelFile, o: &[Output]| autoencoder(f, Some(o)).unwrap_err().to_string();
    assert!(refused(&file, &[Output::Anomaly]).contains("calibrate"));
    assert!(refused(&file, &[Output::Class]).contains("classifiers"));
    assert!(refused(&file, &[Output::Code, Output::Code]).contains("twice"));
    assert!(refused(&file, &[]).contains("at least one"));
    file.anomaly = Some(Threshold {
        metric: ScoreMetric::Mae,
        value: 0.25,
        rule: ThresholdRule::Contamination(0.1),
        calibration_rows: 10,
        flagged_fraction: 0.1,
        data_path: None,
    });
    let e = autoencoder(&file, None).unwrap();
    let m = decode(&e);
    assert_eq!(
        names(&m.graph.as_ref().unwrap().output),
        ["code", "reconstruction", "score", "anomaly"]
    );
    assert!(
        m.graph.unwrap().node.iter().any(|n| n.op_type == "Abs"),
        "the MAE metric"
    );
    assert!(
        "codes"
            .parse::<Output>()
            .unwrap_err()
            .contains("expected code, reconstruction")
    );
}

#[test]
fn a_table_takes_one_input_per_column() {
    let mut file = model();
    file.tabular = Some(Tabular {
        columns: vec![
            Column::Numeric {
                name: "amount".into(),
                fill: Some(2.5),
                indicator: true,
            },
            Column::Categorical {
                name: "region".into(),
                categories: vec!["north".into(), String::new()],
            },
        ],
        dropped: vec!["constant".into()],
        text: None,
    });
    let e = autoencoder(&file, None).unwrap();
    let m = decode(&e);
    assert_eq!(m.opset_import[1].domain, "ai.onnx.ml");
    let g = m.graph.unwrap();
    assert_eq!(names(&g.input), ["amount", "region"]);
    let ty = |i: usize| tensor_type(&g.input[i]).elem_type;
    assert_eq!((ty(0), ty(1)), (DataType::Float as i32, DataType::String as i32));
    let encoder = g.node.iter().find(|n| n.op_type == "LabelEncoder").unwrap();
    let keys = &encoder
        .attribute
        .iter()
        .find(|a| a.name == "keys_strings")
        .unwrap()
        .strings;
    // The known categories, then every other spelling of a missing value for the empty one.
    assert_eq!(keys.len(), 2 + crate::data::csv::MISSING.len() - 1);
    assert!(e.notes.iter().any(|n| n.contains("constant")));
    // A column named like an output is refused.
    if let Some(Column::Numeric { name, .. }) = file.tabular.as_mut().map(|t| &mut t.columns[0]) {
        *name = "score".into();
    }
    assert!(autoencoder(&file, None).unwrap_err().to_string().contains("`score`"));
}
