//! `hourglass train`: args → configs → `hourglass::fit` → model file. Draws the progress.

use super::load_data;
use crate::args::TrainArgs;
use anyhow::{Context, Result};
use hourglass::arch::Dims;
use hourglass::format::{self, ModelFile, Provenance};
use hourglass::model::{CodeRegularizer, KlSparsity, TopK};
use hourglass::{AutoencoderConfig, EpochStats, Event, OptimizerConfig, TrainConfig};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Instant;

/// The paired targets' width and image shape.
type TargetShape = (usize, Option<(usize, usize, usize)>);

/// The model and training configs; `target` is the paired targets' width and image shape.
fn configs(
    a: &TrainArgs,
    input_dim: usize,
    image: Option<(usize, usize, usize)>,
    target: Option<TargetShape>,
) -> Result<(AutoencoderConfig, TrainConfig)> {
    let mut model = AutoencoderConfig {
        input_dim,
        hidden: a.hidden.clone(),
        code: a.code.unwrap_or(0),
        decoder_hidden: a.decoder_hidden.clone(),
        activation: a.activation,
        code_activation: a.code_activation,
        output_activation: a.output_activation,
        loss: a.loss,
        init: a.init,
        regularizer: CodeRegularizer {
            l1: a.l1,
            kl: a.kl.map(|(rho, beta)| KlSparsity { rho, beta }),
            topk: a.topk.map(|k| TopK {
                k,
                encode_k: a.topk_encode,
                start_k: a.topk_start,
                anneal_epochs: a.topk_anneal,
            }),
            dropout: a.code_dropout,
            binary: a.binary_code,
        },
        tied: a.tied,
        hidden_regularizers: a.hidden_reg.iter().cloned().collect(),
        arch: None,
        output_dim: target.map(|(w, _)| w).filter(|&w| w != input_dim),
    };
    if let Some(path) = &a.arch {
        let dims = match a.image_shape.or(image) {
            Some((h, w, c)) if h * w * c == input_dim => Dims::Image((c, h, w)),
            _ => Dims::Flat(input_dim),
        };
        let target_dims = target.map(|(w, img)| match img {
            Some((h, iw, c)) if h * iw * c == w => Dims::Image((c, h, iw)),
            _ => Dims::Flat(w),
        });
        let mut from_file = hourglass::arch::read_paired(path, dims, target_dims)?;
        let (flags, file) = (&model.regularizer, &mut from_file.regularizer);
        if flags.l1 > 0.0 {
            file.l1 = flags.l1;
        }
        file.kl = flags.kl.or(file.kl);
        file.topk = flags.topk.or(file.topk);
        file.binary = flags.binary.or(file.binary);
        if flags.dropout > 0.0 {
            file.dropout = flags.dropout;
        }
        from_file.hidden_regularizers = model.hidden_regularizers;
        model = from_file;
    }
    let optimizer = match a.optimizer.as_str() {
        "sgd" => OptimizerConfig::sgd(a.momentum, a.nesterov, a.weight_decay),
        _ => OptimizerConfig::adam(a.weight_decay),
    };
    let train = TrainConfig {
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        optimizer,
        schedule: a.schedule,
        warmup_epochs: a.warmup,
        clip_norm: a.clip_norm,
        valid_fraction: a.valid_fraction.unwrap_or(0.0),
        patience: a.patience,
        seed: a.seed,
        scaling: a.scale,
        precision: a.precision,
        noise: a.noise.clone(),
        image_shape: a.image_shape.or(image),
        max_norm: a.max_norm,
    };
    Ok((model, train))
}

fn epoch_line(s: &EpochStats, epochs: usize) -> String {
    let valid = s
        .valid_loss
        .map(|v| format!("  valid {v:.6}{}", if s.best { " *" } else { "" }))
        .unwrap_or_default();
    let code = s
        .code
        .as_ref()
        .map(|c| format!("  L0 {:.1}  dead {:.0}%", c.l0, 100.0 * c.dead_fraction))
        .unwrap_or_default();
    format!(
        "epoch {:>width$}/{epochs}  train {:.6}{valid}{code}  lr {:.2e}  {:.0} samples/s  {:.1} s",
        s.epoch,
        s.train_loss,
        s.lr,
        s.samples_per_sec,
        s.seconds,
        width = epochs.to_string().len()
    )
}

pub fn run(a: TrainArgs) -> Result<()> {
    let sel = a.columns.selection();
    let (ds, tabular) = super::load_training_table(&a.data, &sel, &a.tabular, a.image_shape)?;
    let valid = match &a.valid {
        Some(p) => {
            let v = match &tabular {
                Some(t) => super::encode_table(t, p, &sel)?,
                None => load_data(p, &sel)?,
            };
            if v.x.cols() != ds.x.cols() {
                anyhow::bail!(
                    "{}: has {} feature columns, the training data has {}",
                    p.display(),
                    v.x.cols(),
                    ds.x.cols()
                );
            }
            Some(v)
        }
        None => None,
    };
    // Targets are read as they are (a folder of masks stays one channel beside RGB images).
    let read_target = |p: &std::path::PathBuf| super::load_data(p, &Default::default());
    let target = a.target.as_ref().map(read_target).transpose()?;
    let target_shape = target.as_ref().map(|t| (t.x.cols(), t.image_shape));
    let (model_cfg, train_cfg) = configs(&a, ds.x.cols(), ds.image_shape, target_shape)?;
    anyhow::ensure!(
        a.valid.is_none() || a.target.is_none() || a.valid_target.is_some(),
        "--valid with --target needs --valid-target (the validation rows' targets)"
    );
    let valid_target = a.valid_target.as_ref().map(read_target).transpose()?;
    let mut model = model_cfg.init(a.seed)?;
    // Fail on an unwritable output before spending time on training.
    let out_dir = a
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    anyhow::ensure!(
        out_dir.is_dir(),
        "cannot write {}: folder {} does not exist",
        a.output.display(),
        out_dir.display()
    );

    let bar = (!a.quiet && std::io::stderr().is_terminal()).then(|| {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} batches  {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        b
    });
    let mut epoch_start = Instant::now();
    let mut rows_done = 0usize;
    let mut loss_sum = 0.0f64;
    let mut log_lines = Vec::new();
    let batch = a.batch_size.max(1);
    let on_event = |e: &Event<'_>| match e {
        Event::EpochStart { epoch, epochs, batches } => {
            epoch_start = Instant::now();
            rows_done = 0;
            loss_sum = 0.0;
            if let Some(b) = &bar {
                b.set_length(*batches as u64);
                b.set_position(0);
                b.set_prefix(format!("{epoch}/{epochs}"));
            }
        }
        Event::Batch { batch: i, loss } => {
            rows_done += batch;
            loss_sum += loss;
            if let Some(b) = &bar {
                let rate = rows_done as f64 / epoch_start.elapsed().as_secs_f64().max(1e-9);
                b.set_position(*i as u64);
                b.set_message(format!("loss {:.6}  {rate:.0} samples/s", loss_sum / *i as f64));
            }
        }
        Event::EpochEnd(s) => {
            let line = epoch_line(s, train_cfg.epochs);
            match &bar {
                Some(b) => b.println(line),
                None if !a.quiet => eprintln!("{line}"),
                None => {}
            }
            if a.log.is_some() {
                log_lines.push(serde_json::to_string(s).expect("stats serialize"));
            }
        }
        _ => {}
    };
    let result = match &target {
        Some(t) => hourglass::fit_paired(
            &mut model,
            &ds.x,
            &t.x,
            valid.as_ref().zip(valid_target.as_ref()).map(|(v, vt)| (&v.x, &vt.x)),
            &train_cfg,
            on_event,
        ),
        None => hourglass::fit(&mut model, &ds.x, valid.as_ref().map(|v| &v.x), &train_cfg, on_event),
    };
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let provenance = |report| Provenance {
        train: Some(train_cfg.clone()),
        report,
        data_path: Some(a.data.display().to_string()),
        data_shape: Some(ds.x.shape()),
        image_shape: train_cfg.image_shape,
        feature_names: Some(ds.names.clone()),
        crate_version: env!("CARGO_PKG_VERSION").to_string(),
        pca: None,
    };
    if let Some(log) = &a.log {
        let text = log_lines.iter().map(|l| format!("{l}\n")).collect::<String>();
        hourglass::fsutil::write_atomic(log, |w| {
            w.write_all(text.as_bytes()).map_err(|e| hourglass::Error::Io {
                path: log.clone(),
                cause: e,
            })
        })
        .with_context(|| format!("cannot write log {}", log.display()))?;
    }
    let report = match result {
        Ok(r) => r,
        Err(e @ hourglass::Error::Diverged { last_good_epoch, .. }) if last_good_epoch > 0 => {
            let file = ModelFile {
                model,
                provenance: provenance(None),
                anomaly: None,
                tabular: tabular.clone(),
            };
            format::save(&a.output, &file)?;
            return Err(anyhow::Error::new(e).context(format!(
                "the model of epoch {last_good_epoch} was saved to {}",
                a.output.display()
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let summary = {
        let last = report.history.last().expect("at least one epoch");
        let valid = last
            .valid_loss
            .map(|v| format!(", valid loss {v:.6}"))
            .unwrap_or_default();
        let kept = if report.best_epoch != report.history.len() {
            format!(" (kept epoch {})", report.best_epoch)
        } else {
            String::new()
        };
        format!(
            "trained {} epochs in {:.1} s: train loss {:.6}{valid}{kept}",
            report.history.len(),
            report.seconds,
            last.train_loss
        )
    };
    let file = ModelFile {
        model,
        provenance: provenance(Some(report)),
        anomaly: None,
        tabular,
    };
    format::save(&a.output, &file)?;
    println!("{summary}");
    println!("model: {} ({} parameters)", a.output.display(), file.model.num_params());
    Ok(())
}
