//! `hourglass pretrain`, `finetune`, `predict`, and `eval` of a classifier.

use super::{load_data, load_model, write_output};
use crate::args::{ColumnArgs, EvalArgs, FinetuneArgs, PredictArgs, PretrainArgs};
use anyhow::{Context, Result, bail};
use hourglass::classifier::{self, Classifier, FinetuneConfig};
use hourglass::format::{self, ModelFile, Provenance};
use hourglass::{Matrix, TrainConfig};
use std::path::Path;

/// Whether `path` is a classifier file. Reads only the safetensors header: the 8-byte length,
/// then the JSON header with its `__metadata__`.
pub fn is_classifier(path: &Path) -> bool {
    use std::io::Read;
    let header = || -> Option<serde_json::Value> {
        let mut f = std::fs::File::open(path).ok()?;
        let mut len = [0u8; 8];
        f.read_exact(&mut len).ok()?;
        let len = u64::from_le_bytes(len);
        // A header larger than the file is not a model file; never allocate for it.
        if len > f.metadata().ok()?.len() {
            return None;
        }
        let mut text = vec![0u8; len as usize];
        f.read_exact(&mut text).ok()?;
        serde_json::from_slice(&text).ok()
    };
    header().is_some_and(|h| {
        h["__metadata__"]["format"] == format::FORMAT_NAME && h["__metadata__"]["kind"] == "classifier"
    })
}

pub fn pretrain(a: PretrainArgs) -> Result<()> {
    let ds = load_data(&a.data, &a.columns.selection())?;
    let train = TrainConfig {
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        seed: a.seed,
        scaling: a.scale,
        precision: a.precision,
        noise: a.noise.clone(),
        image_shape: ds.image_shape,
        ..TrainConfig::default()
    };
    let t0 = std::time::Instant::now();
    let ae = classifier::pretrain(
        &ds.x,
        &a.hidden,
        a.activation,
        a.output_activation,
        a.loss,
        &train,
        |i, r| {
            let last = r.history.last().map_or(f64::NAN, |e| e.train_loss);
            eprintln!(
                "layer {} ({} units): {} epochs, train loss {last:.6}, {:.1} s",
                i + 1,
                a.hidden[i],
                r.history.len(),
                r.seconds
            );
        },
    )?;
    let file = ModelFile {
        model: ae,
        provenance: Provenance {
            train: Some(train),
            data_path: Some(a.data.display().to_string()),
            data_shape: Some(ds.x.shape()),
            image_shape: ds.image_shape,
            feature_names: Some(ds.names.clone()),
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
            ..Provenance::default()
        },
        anomaly: None,
        tabular: None,
    };
    format::save(&a.output, &file).with_context(|| format!("cannot write {}", a.output.display()))?;
    println!(
        "pretrained {} layers in {:.1} s; model: {} ({} parameters)",
        a.hidden.len(),
        t0.elapsed().as_secs_f64(),
        a.output.display(),
        file.model.num_params()
    );
    Ok(())
}

/// Rows and labels of a labelled file.
fn labelled(path: &Path, labels: Option<&Path>, cols: &ColumnArgs, width: usize) -> Result<(Matrix, Vec<String>)> {
    let ds = load_data(path, &cols.selection())?;
    if ds.x.cols() != width {
        bail!(
            "{}: has {} feature columns, the model expects {width}",
            path.display(),
            ds.x.cols()
        );
    }
    let l = match (labels, ds.labels) {
        (Some(p), _) => hourglass::data::load_labels(p)?,
        (None, Some(l)) => l,
        (None, None) => bail!("{}: no labels; give --labels FILE or --label-column", path.display()),
    };
    if l.len() != ds.x.rows() {
        bail!("{}: {} labels for {} rows", path.display(), l.len(), ds.x.rows());
    }
    Ok((ds.x, l))
}

/// What `finetune` starts from.
enum Start {
    /// A classifier, trained further.
    Trained(Classifier),
    /// An autoencoder, whose encoder gets a new head.
    Encoder(Box<hourglass::Autoencoder>),
}

pub fn finetune(a: FinetuneArgs) -> Result<()> {
    // A classifier trains further; an autoencoder gets a head once the classes are known.
    let start = if is_classifier(&a.model) {
        Start::Trained(Classifier::load(&a.model)?)
    } else {
        Start::Encoder(Box::new(load_model(&a.model)?.model))
    };
    let input_dim = match &start {
        Start::Trained(c) => c.config.input_dim,
        Start::Encoder(e) => e.input_dim(),
    };
    let (x, labels) = labelled(&a.data, a.labels.as_deref(), &a.columns, input_dim)?;
    let names: Vec<String> = match (a.classes, &start) {
        (Some(n), _) => (0..n).map(|i| i.to_string()).collect(),
        (None, Start::Trained(c)) => c.config.classes.clone(),
        (None, Start::Encoder(_)) => hourglass::probe::encode_labels(&labels).0,
    };
    if let Some(bad) = labels.iter().find(|l| !names.contains(l)) {
        bail!(
            "{}: label `{bad}` is not one of the classes {}",
            a.data.display(),
            names.join(", ")
        );
    }
    let mut model = match start {
        Start::Trained(c) => c,
        Start::Encoder(e) => Classifier::from_encoder(&e, names.clone(), a.seed)?,
    };
    if a.from_scratch {
        model = model.reinit(a.seed);
    }
    let y: Vec<usize> = labels
        .iter()
        .map(|l| names.iter().position(|n| n == l).unwrap())
        .collect();
    let cfg = FinetuneConfig {
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        weight_decay: a.weight_decay,
        freeze_epochs: a.freeze_epochs,
        dropout: a.dropout,
        seed: a.seed,
        precision: a.precision,
    };
    let t0 = std::time::Instant::now();
    let quiet = a.quiet;
    let history = classifier::finetune(&mut model, &x, &y, &cfg, |e| {
        if !quiet {
            eprintln!(
                "epoch {:>3}  loss {:.5}  train accuracy {:.2} %{}",
                e.epoch,
                e.loss,
                100.0 * e.accuracy,
                if e.frozen { "  (encoder frozen)" } else { "" }
            );
        }
    })?;
    model
        .save(&a.output)
        .with_context(|| format!("cannot write {}", a.output.display()))?;
    let last = history.last().unwrap();
    println!(
        "{} {} epochs in {:.1} s on {} rows: loss {:.5}, train accuracy {:.2} %; classifier: {}",
        if a.from_scratch {
            "trained from scratch"
        } else {
            "fine-tuned"
        },
        history.len(),
        t0.elapsed().as_secs_f64(),
        x.rows(),
        last.loss,
        100.0 * last.accuracy,
        a.output.display()
    );
    Ok(())
}

pub fn predict(a: PredictArgs) -> Result<()> {
    let model = Classifier::load(&a.classifier)?;
    let ds = load_data(&a.data, &a.columns.selection())?;
    let p = model.predict_proba(&ds.x)?;
    let names = &model.config.classes;
    let pred: Vec<String> = (0..p.rows())
        .map(|i| names[hourglass::tensor::argmax(p.row(i))].clone())
        .collect();
    let cols: Vec<String> = names.iter().map(|n| format!("p_{n}")).collect();
    let mut leading = Vec::new();
    if let (Some(l), Some(name)) = (ds.labels, &a.columns.label_column) {
        leading.push((name.clone(), l));
    }
    leading.push(("predicted".to_string(), pred));
    write_output(&a.output, &p, &cols, &leading)
}

pub fn eval(a: EvalArgs) -> Result<()> {
    let model = Classifier::load(&a.model)?;
    let (x, labels) = labelled(&a.data, a.labels.as_deref(), &a.columns, model.config.input_dim)?;
    let pred = model.predict(&x)?;
    let names = &model.config.classes;
    let c = names.len();
    let mut confusion = vec![vec![0usize; c]; c];
    let mut unseen = 0;
    let mut hits = 0;
    for (l, &p) in labels.iter().zip(&pred) {
        match names.iter().position(|n| n == l) {
            Some(t) => {
                confusion[t][p] += 1;
                hits += usize::from(t == p);
            }
            None => unseen += 1,
        }
    }
    let acc = hits as f64 / labels.len() as f64;
    if a.json {
        let v = serde_json::json!({"n": labels.len(), "accuracy": acc, "error": 1.0 - acc, "classes": names, "confusion": confusion, "unknown_labels": unseen});
        println!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    println!("rows             {}", labels.len());
    println!(
        "accuracy         {:.2} %  (error {:.2} %)",
        100.0 * acc,
        100.0 * (1.0 - acc)
    );
    if unseen > 0 {
        println!("note             {unseen} rows have labels the classifier does not know (counted as errors)");
    }
    let w = names.iter().map(|n| n.len()).max().unwrap_or(1).max(5);
    println!("confusion (rows: true, columns: predicted)");
    print!("{:>w$}", "");
    for n in names {
        print!(" {n:>w$}");
    }
    println!();
    for (t, row) in confusion.iter().enumerate() {
        print!("{:>w$}", names[t]);
        for v in row {
            print!(" {v:>w$}");
        }
        println!();
    }
    Ok(())
}
