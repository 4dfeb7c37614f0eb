//! `hourglass train`: args → configs → `hourglass::fit` → model file. Draws the progress.

use super::session::Session;
use super::{noted, outln, read};
use crate::args::TrainArgs;
use anyhow::Result;
use hourglass::data::Dataset;
use hourglass::data::window::Windows;
use hourglass::format::{self, ModelFile, Provenance};
use hourglass::model::{ArchSource, Design, Dims};
use hourglass::{AutoencoderConfig, Checkpoint, EpochStats, Event, TrainConfig};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Instant;

/// The rows' shape as an architecture sees it.
fn dims(width: usize, image: Option<(usize, usize, usize)>) -> Dims {
    match image {
        Some((h, w, c)) if hourglass::bounds::checked_product(&[h, w, c]) == Some(width) => Dims::Image((c, h, w)),
        _ => Dims::Flat(width),
    }
}

/// The model and training configs; `target` is the paired targets' rows, if any.
pub(super) fn settings(
    a: &TrainArgs,
    data: &Dataset,
    target: Option<&Dataset>,
    table: bool,
) -> Result<(AutoencoderConfig, TrainConfig)> {
    anyhow::ensure!(
        !a.sized_from_data()
            || !(a.stream || a.window.is_some() || target.is_some() || a.distributed || a.local_ranks.is_some()),
        "give --code (or --arch) with --stream, --window, --target, --distributed or --local-ranks: the defaults sized from the data are for in-memory training of a detector"
    );
    let image = a.image.image_shape.or(data.image_shape);
    let (n, d) = (data.x.rows(), data.x.cols());
    let code = a
        .code
        .or(a.sized_from_data().then(|| hourglass::defaults::code_width(d)));
    let hidden = match code {
        Some(c) if a.sized_from_data() && a.hidden.is_empty() => vec![hourglass::defaults::hidden_width(d, c)],
        _ => a.hidden.clone(),
    };
    let scaling = a.scaling_for(data.x.view(), table);
    let (valid_fraction, patience) = a.validation(n);
    let mut design = Design {
        hidden,
        code,
        decoder_hidden: a.decoder_hidden.clone(),
        activation: a.activation,
        code_activation: a.code_activation,
        output_activation: a.output_activation.unwrap_or_else(|| {
            let reconstructed = target.unwrap_or(data);
            match a.loss {
                // The detector's defaults: a linear output for mse (as measured, and as the
                // Python estimators have it).
                hourglass::Loss::Mse if a.sized_from_data() => hourglass::Activation::Identity,
                _ => hourglass::model::design::default_output_activation(a.loss, scaling, reconstructed.x.view()),
            }
        }),
        loss: a.loss,
        init: a.init,
        tied: a.tied,
        arch: a.arch.clone().map(ArchSource::File),
        code_reg: a.code_settings(),
        hidden_reg: a.hidden_reg.clone(),
        vae: a.vae.then_some(hourglass::layer::Prior {
            beta: a.kl_beta,
            capacity: a.kl_capacity,
            warmup: a.kl_warmup,
            samples: a.iwae,
        }),
    };
    if let (Some(_), Some(steps)) = (a.tabular.text, a.window) {
        design.for_text(steps, data.x.cols() / steps.max(1));
    }
    let model = design.config(
        dims(data.x.cols(), image),
        target.map(|t| dims(t.x.cols(), t.image_shape)),
    )?;
    let train = TrainConfig {
        epochs: a.epochs(n),
        batch_size: a.batch(n),
        lr: a.lr(),
        optimizer: a.optimizer(),
        schedule: a.schedule,
        warmup_epochs: a.warmup,
        clip_norm: a.clip_norm,
        valid_fraction,
        patience,
        seed: a.seed,
        scaling,
        precision: a.precision,
        noise: a.noise.noise.clone(),
        image_shape: image,
        max_norm: a.max_norm,
        freeze_epochs: 0,
        binarize: a.binarize,
        unit_norm_decoder: a.unit_norm_decoder,
        tied_init: a.tied_init,
        pre_bias: a.pre_bias,
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
        .map(|c| {
            let fvu = c.fvu.map(|f| format!("  fvu {f:.4}")).unwrap_or_default();
            format!("{fvu}  L0 {:.1}  dead {:.0}%", c.l0, 100.0 * c.dead_fraction)
        })
        .unwrap_or_default();
    let comm = if s.comm_seconds > 0.0 {
        format!("  comm {:.0}%", 100.0 * s.comm_seconds / s.seconds.max(1e-9))
    } else {
        String::new()
    };
    format!(
        "epoch {:>width$}/{epochs}  train {:.6}{valid}{code}  lr {:.2e}  {:.0} samples/s  {:.1} s{comm}",
        s.epoch,
        s.train_loss,
        s.lr,
        s.samples_per_sec,
        s.seconds,
        width = epochs.to_string().len()
    )
}

/// Draws training progress: a bar on a terminal, one line per epoch.
pub struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
    batch: usize,
    epochs: usize,
    epoch_start: Instant,
    rows_done: usize,
    loss_sum: f64,
}

impl Progress {
    pub fn new(quiet: bool, batch: usize, epochs: usize) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::new(0);
            b.set_style(
                ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} batches  {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            b
        });
        Progress {
            bar,
            quiet,
            batch: batch.max(1),
            epochs,
            epoch_start: Instant::now(),
            rows_done: 0,
            loss_sum: 0.0,
        }
    }

    /// Takes one training event.
    pub fn on(&mut self, e: &Event<'_>) {
        match e {
            Event::EpochStart { epoch, epochs, batches } => {
                self.epoch_start = Instant::now();
                self.rows_done = 0;
                self.loss_sum = 0.0;
                if let Some(b) = &self.bar {
                    b.set_length(*batches as u64);
                    b.set_position(0);
                    b.set_prefix(format!("{epoch}/{epochs}"));
                }
            }
            Event::Batch { batch: i, loss } => {
                self.rows_done += self.batch;
                self.loss_sum += loss;
                if let Some(b) = &self.bar {
                    let rate = self.rows_done as f64 / self.epoch_start.elapsed().as_secs_f64().max(1e-9);
                    b.set_position(*i as u64);
                    b.set_message(format!("loss {:.6}  {rate:.0} samples/s", self.loss_sum / *i as f64));
                }
            }
            Event::EpochEnd(s) => {
                let mut line = epoch_line(s, self.epochs);
                if let Some(acc) = s.train_accuracy {
                    line.push_str(&format!("  train accuracy {:.2} %", 100.0 * acc));
                }
                match &self.bar {
                    Some(b) => b.println(line),
                    None if !self.quiet => note!("{line}"),
                    None => {}
                }
            }
            _ => {}
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// `train --stream`: the rows stay on disk (see `TrainingRows`).
fn run_streamed(a: TrainArgs) -> Result<()> {
    let sel = a.columns.selection();
    let valid_fraction = a.valid_fraction.unwrap_or(0.0);
    let table = a.tabular.options();
    let mut t =
        hourglass::stream::TrainingRows::open_table(&a.data, &sel, &table, a.scaling(), valid_fraction, a.seed)?;
    for n in &t.notes {
        note!("note: {n}");
    }
    let shape = (t.rows.total_rows(), t.sample.cols());
    let ds = Dataset {
        x: t.sample.clone(),
        names: t.rows.names().to_vec(),
        labels: None,
        image_shape: t.rows.image_shape(),
        format: hourglass::data::Format::Parquet,
        files: None,
    };
    let (model_cfg, train_cfg) = settings(&a, &ds, None, t.tabular.is_some())?;
    let mut model = model_cfg.init(a.seed)?;
    model.set_scaler(t.scaler.clone())?;
    let mut session = Session::new("train", &a.checkpoints, &a.output, a.log.as_deref(), None)?;
    let mut progress = Progress::new(a.quiet, train_cfg.batch_size, train_cfg.epochs);
    let result = hourglass::train::fit_stream(&mut model, &mut t.rows, t.valid.take(), t.sample, &train_cfg, |e| {
        progress.on(e);
        session.on(e)
    });
    progress.finish();
    let report = result?;
    let mut provenance = Provenance::training(&train_cfg, Some(report.clone()), &a.data, &ds);
    provenance.data_shape = Some(shape);
    let file = ModelFile {
        model,
        provenance,
        anomaly: None,
        tabular: t.tabular.take(),
        windows: None,
        neighbours: None,
    };
    if report.interrupted {
        // Stopped by a signal: the last complete epoch's model, and no checkpoint to resume.
        let progress = (report.history.len(), report.best_epoch, train_cfg.epochs);
        return session.stopped(progress, "model", &a.output, || Ok(format::save(&a.output, &file)?));
    }
    format::save(&a.output, &file)?;
    session.finish(false)?;
    let last = report.history.last().expect("at least one epoch");
    outln!(
        "trained {} epochs in {:.1} s on {} rows streamed ({} held out): train loss {:.6}{}",
        report.history.len(),
        report.seconds,
        report.train_rows,
        t.held_out,
        last.train_loss,
        last.valid_loss
            .map(|v| format!(", valid loss {v:.6}"))
            .unwrap_or_default()
    );
    outln!("model: {} ({} parameters)", a.output.display(), file.model.num_params());
    Ok(())
}

/// Says when the precision asked for cannot run on this machine (and what runs instead).
pub(super) fn precision_note(p: hourglass::Precision) {
    if let Some(n) = p.fallback_note() {
        note!("note: {n}");
    }
}

pub fn run(a: TrainArgs) -> Result<()> {
    precision_note(a.precision);
    if a.stream {
        return run_streamed(a);
    }
    anyhow::ensure!(
        a.average_every.is_none(),
        "--average-every applies to data-parallel training (--distributed or --local-ranks)"
    );
    let sel = a.columns.selection();
    let loaded = noted(hourglass::load::training_data(
        &a.data,
        &sel,
        &a.tabular.options(),
        a.image.image_shape,
    )?);
    let windows = a.window.map(|length| Windows {
        length,
        stride: a.stride,
    });
    let (ds, tabular) = (loaded.data, loaded.tabular);
    let ds = match &windows {
        Some(w) => hourglass::load::windowed(ds, w, &a.data)?,
        None => ds,
    };
    let valid = match &a.valid {
        Some(p) => {
            let v = match &tabular {
                Some(t) => hourglass::load::encode_table(t, p, &sel)?,
                None => read(p, &sel, None)?.data,
            };
            let v = match &windows {
                Some(w) => hourglass::load::windowed(v, w, p)?,
                None => v,
            };
            anyhow::ensure!(
                v.x.cols() == ds.x.cols(),
                "{}: has {} feature columns, the training data has {}",
                p.display(),
                v.x.cols(),
                ds.x.cols()
            );
            Some(v)
        }
        None => None,
    };
    // Targets are read as they are (a folder of masks stays one channel beside RGB images).
    let read_target = |p: &std::path::PathBuf| read(p, &Default::default(), None).map(|l| l.data);
    let target = a.target.as_ref().map(read_target).transpose()?;
    let (model_cfg, train_cfg) = settings(&a, &ds, target.as_ref(), tabular.is_some())?;
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
    let resume = a.checkpoints.resume.as_deref().map(Checkpoint::load).transpose()?;
    let mut session = Session::new("train", &a.checkpoints, &a.output, a.log.as_deref(), resume.as_ref())?;
    let mut progress = Progress::new(a.quiet, train_cfg.batch_size, train_cfg.epochs);
    let on_event = |e: &Event<'_>| {
        progress.on(e);
        session.on(e)
    };
    let result = match &target {
        Some(t) => hourglass::fit_paired_from(
            &mut model,
            &ds.x,
            &t.x,
            valid
                .as_ref()
                .zip(valid_target.as_ref())
                .map(|(v, vt)| (v.x.view(), vt.x.view())),
            &train_cfg,
            resume.as_ref(),
            on_event,
        ),
        None => hourglass::fit_from(
            &mut model,
            &ds.x,
            valid.as_ref().map(|v| v.x.view()),
            &train_cfg,
            resume.as_ref(),
            on_event,
        ),
    };
    progress.finish();
    let model_file = |model, report| ModelFile {
        model,
        provenance: Provenance::training(&train_cfg, report, &a.data, &ds),
        anomaly: None,
        tabular,
        windows,
        neighbours: None,
    };
    let report = match result {
        Ok(r) => r,
        Err(e @ hourglass::Error::Diverged { last_good_epoch, .. }) if last_good_epoch > 0 => {
            format::save(&a.output, &model_file(model, None))?;
            return Err(anyhow::Error::new(e).context(format!(
                "the model of epoch {last_good_epoch} was saved to {}",
                a.output.display()
            )));
        }
        Err(e) => return Err(e.into()),
    };
    if report.interrupted {
        let progress = (report.history.len(), report.best_epoch, train_cfg.epochs);
        return session.stopped(progress, "model", &a.output, || {
            Ok(format::save(&a.output, &model_file(model, Some(report)))?)
        });
    }
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
    let mut file = model_file(model, Some(report));
    if let Some(k) = a.neighbours_for(ds.x.rows()) {
        file.neighbours = Some(hourglass::neighbours::CodeNeighbours::fit(&file.model, &ds.x, k)?);
    }
    format::save(&a.output, &file)?;
    session.finish(false)?;
    outln!("{summary}");
    outln!("model: {} ({} parameters)", a.output.display(), file.model.num_params());
    Ok(())
}
