//! `hourglass pretrain`, `finetune`, `predict`, and `eval` of a classifier.

use super::session::Session;
use super::{out, outln, read, write_output};
use crate::args::{EvalArgs, FinetuneArgs, PredictArgs, PretrainArgs};
use anyhow::{Context, Result, bail};
use hourglass::classifier::{self, Classifier};
use hourglass::format::{self, AnyModel, ModelFile, Provenance};
use hourglass::{Checkpoint, OptimizerConfig, TrainConfig};

pub fn pretrain(a: PretrainArgs) -> Result<()> {
    super::train::precision_note(a.precision);
    let ds = read(&a.data, &a.columns.selection(), None)?.data;
    let train = TrainConfig {
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        seed: a.seed,
        scaling: a.scale,
        precision: a.precision,
        noise: a.noise.noise.clone(),
        image_shape: ds.image_shape,
        ..TrainConfig::default()
    };
    let t0 = std::time::Instant::now();
    let ae = hourglass::pretrain::pretrain(
        &ds.x,
        &a.hidden,
        a.activation,
        a.output_activation,
        a.loss,
        &train,
        |i, r| {
            let last = r.history.last().map_or(f64::NAN, |e| e.train_loss);
            note!(
                "layer {} ({} units): {} epochs, train loss {last:.6}, {:.1} s",
                i + 1,
                a.hidden[i],
                r.history.len(),
                r.seconds
            );
        },
    )?;
    let file = ModelFile {
        provenance: Provenance::training(&train, None, &a.data, &ds),
        ..ModelFile::new(ae)
    };
    format::save(&a.output, &file).with_context(|| format!("cannot write {}", a.output.display()))?;
    outln!(
        "pretrained {} layers in {:.1} s; model: {} ({} parameters)",
        a.hidden.len(),
        t0.elapsed().as_secs_f64(),
        a.output.display(),
        file.model.num_params()
    );
    Ok(())
}

pub fn finetune(a: FinetuneArgs) -> Result<()> {
    super::train::precision_note(a.precision);
    // A classifier trains further; an autoencoder gets a head once the classes are known.
    let start = format::load_any(&a.model)?;
    let input_dim = match &start {
        AnyModel::Classifier(c) => c.input_dim(),
        AnyModel::Autoencoder(f) => f.model.input_dim(),
    };
    let (x, labels) = hourglass::load::labelled(&a.data, a.labels.as_deref(), &a.columns.selection(), input_dim)?;
    let names: Vec<String> = match (a.classes, &start) {
        (Some(n), _) => (0..n).map(|i| i.to_string()).collect(),
        (None, AnyModel::Classifier(c)) => c.config.classes.clone(),
        (None, AnyModel::Autoencoder(_)) => hourglass::probe::encode_labels(&labels).0,
    };
    if let Some(bad) = labels.iter().find(|l| !names.contains(l)) {
        bail!(
            "{}: label `{bad}` is not one of the classes {}",
            a.data.display(),
            names.join(", ")
        );
    }
    let mut model = match start {
        AnyModel::Classifier(c) => *c,
        AnyModel::Autoencoder(f) => Classifier::from_encoder(&f.model, names.clone(), a.seed)?,
    };
    if a.from_scratch {
        model = model.reinit(a.seed)?;
    }
    model.config.dropout = a.dropout;
    let y: Vec<usize> = labels
        .iter()
        .map(|l| {
            names
                .iter()
                .position(|n| n == l)
                .expect("checked: every label is a class")
        })
        .collect();
    let cfg = TrainConfig {
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        optimizer: OptimizerConfig::adam(a.weight_decay),
        freeze_epochs: a.freeze_epochs,
        seed: a.seed,
        precision: a.precision,
        ..TrainConfig::default()
    };
    let resume = a.checkpoints.resume.as_deref().map(Checkpoint::load).transpose()?;
    let mut session = Session::new("finetune", &a.checkpoints, &a.output, None, resume.as_ref())?;
    let mut progress = super::train::Progress::new(a.quiet, a.batch_size, a.epochs);
    let report = classifier::finetune_from(&mut model, &x, &y, None, &cfg, resume.as_ref(), |e| {
        progress.on(e);
        session.on(e)
    })?;
    progress.finish();
    if report.interrupted {
        let progress = (report.history.len(), report.best_epoch, a.epochs);
        return session.stopped(progress, "classifier", &a.output, || {
            format::save_classifier(&a.output, &model).with_context(|| format!("cannot write {}", a.output.display()))
        });
    }
    format::save_classifier(&a.output, &model).with_context(|| format!("cannot write {}", a.output.display()))?;
    session.finish(false)?;
    let last = report.history.last().expect("at least one epoch");
    outln!(
        "{} {} epochs in {:.1} s on {} rows: loss {:.5}, train accuracy {:.2} %; classifier: {}",
        if a.from_scratch {
            "trained from scratch"
        } else {
            "fine-tuned"
        },
        report.history.len(),
        report.seconds,
        x.rows(),
        last.train_loss,
        100.0 * last.train_accuracy.unwrap_or_default(),
        a.output.display()
    );
    Ok(())
}

pub fn predict(a: PredictArgs) -> Result<()> {
    let model = format::load_classifier(&a.classifier)?;
    let ds = read(&a.data, &a.columns.selection(), None)?.data;
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

pub fn eval(a: EvalArgs, model: &Classifier) -> Result<()> {
    let (x, labels) =
        hourglass::load::labelled(&a.data, a.labels.as_deref(), &a.columns.selection(), model.input_dim())?;
    let names = &model.config.classes;
    let c = hourglass::metrics::confusion(&labels, &model.predict(&x)?, names);
    if a.json {
        let v = serde_json::json!({"n": c.n, "accuracy": c.accuracy, "error": 1.0 - c.accuracy, "classes": names, "confusion": c.matrix, "unknown_labels": c.unknown_labels});
        outln!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    outln!("rows             {}", c.n);
    outln!(
        "accuracy         {:.2} %  (error {:.2} %)",
        100.0 * c.accuracy,
        100.0 * (1.0 - c.accuracy)
    );
    if c.unknown_labels > 0 {
        outln!(
            "note             {} rows have labels the classifier does not know (counted as errors)",
            c.unknown_labels
        );
    }
    let w = names.iter().map(|n| n.len()).max().unwrap_or(1).max(5);
    outln!("confusion (rows: true, columns: predicted)");
    out!("{:>w$}", "");
    for n in names {
        out!(" {n:>w$}");
    }
    outln!();
    for (t, row) in c.matrix.iter().enumerate() {
        out!("{:>w$}", names[t]);
        for v in row {
            out!(" {v:>w$}");
        }
        outln!();
    }
    Ok(())
}
