//! The one training loop: mini-batches, shuffling, validation, early stopping, divergence
//! checks, tied weights, a freeze schedule. [`fit`] and [`fit_paired`] train autoencoders;
//! [`crate::classifier::finetune`] trains classifiers through the same [`run`].

use super::checkpoint::{self, Checkpoint};
use super::config::{CODE_SAMPLE, EpochStats, Event, Flow, TrainConfig, TrainReport};
use super::dictionary::{PreBias, calibrate, center_dictionary, check_auxk, dictionary_layer, tied_init};
use super::exchange::{Exchange, agree};
use super::feed::{Feed, RowStream, check_data, check_targets, check_unit_targets, unit_loss};
use super::position::{Position, Start};
use super::step::{StepResult, Workspace, forward_backward};
use super::trainee::{Held, Targets, Trainee};
use super::update;
use super::validation::{Watch, code_metrics, code_rows, validate};
use crate::data::scale::{Scaler, Scaling};
use crate::dist::{self, Team};
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::model::Autoencoder;
use crate::noise;
use crate::regularize;
use crate::rng::Rng;
use crate::tensor::{MatrixRef, Rows};
use std::time::Instant;

/// RNG stream for the per-epoch shuffle.
const STREAM_SHUFFLE: u64 = 0x5348;
/// RNG stream for the validation split.
const STREAM_SPLIT: u64 = 0x5350;
/// RNG stream for input corruption.
const STREAM_NOISE: u64 = 0x4e4f;
/// RNG stream for dropout and binary-code noise.
const STREAM_DROPOUT: u64 = 0x4452;

/// Trains `model` on the rows of `data`.
///
/// Fits the scaler of `config.scaling` on the training rows (stored in the model), holds out
/// `valid_fraction` of the rows when `valid` is `None`, shuffles every epoch from the seed,
/// and reports progress through `on_event`. With `patience`, stops when the validation loss
/// has not improved for that many epochs and restores the best weights.
///
/// The same seed gives a bit-identical model for any number of threads (run it inside
/// [`with_threads`](crate::with_threads) to choose the count). `on_event` may return
/// [`Flow::Stop`] to end training cleanly (returning `()` goes on).
///
/// # Errors
/// [`Error::Setting`]/[`Error::Config`] for bad settings, [`Error::Shape`]/
/// [`Error::InvalidData`] for unusable data, [`Error::Diverged`] when a batch loss is NaN or
/// infinite (the model then holds the weights of the last complete epoch).
pub fn fit<'a, R: Into<Flow>>(
    model: &mut Autoencoder,
    data: impl Into<MatrixRef<'a>>,
    valid: Option<MatrixRef<'_>>,
    config: &TrainConfig,
    on_event: impl FnMut(&Event<'_>) -> R,
) -> Result<TrainReport> {
    fit_from(model, data, valid, config, None, on_event)
}

/// [`fit`], continuing from a checkpoint when `resume` is given: `model` must be built by the
/// same settings (its weights are replaced by the checkpoint's), and `data`, `valid` and
/// `config` must be those of the run that made the checkpoint. Then the result is the same,
/// bit for bit, as that run's had it never stopped. Checkpoints are offered to `on_event`
/// ([`Event::Checkpoint`]) when it answers [`Flow::Checkpoint`] or [`Flow::Stop`].
///
/// # Errors
/// As [`fit`], and [`Error::InvalidData`] for a checkpoint of other settings, data or
/// architecture.
pub fn fit_from<'a, R: Into<Flow>>(
    model: &mut Autoencoder,
    data: impl Into<MatrixRef<'a>>,
    valid: Option<MatrixRef<'_>>,
    config: &TrainConfig,
    resume: Option<&Checkpoint>,
    on_event: impl FnMut(&Event<'_>) -> R,
) -> Result<TrainReport> {
    let valid = valid.map(|v| (v, Targets::Input));
    run(
        Trainee::autoencoder(model, true),
        data.into(),
        Targets::Input,
        valid,
        config,
        resume,
        on_event,
    )
}

/// Trains `model` to map each row of `data` to the same row of `target` (paired data: noisy →
/// clean images, images → segmentation masks) instead of to itself. `valid` pairs validation
/// inputs with their targets. Otherwise as [`fit`]; the inputs are not scaled (targets are
/// compared in their own units).
///
/// # Errors
/// As [`fit`], and [`Error::Shape`] when the targets do not pair with the inputs (another row
/// count or width), [`Error::Setting`] for a scaling other than none.
pub fn fit_paired<'a, 'b, R: Into<Flow>>(
    model: &mut Autoencoder,
    data: impl Into<MatrixRef<'a>>,
    target: impl Into<MatrixRef<'b>>,
    valid: Option<(MatrixRef<'_>, MatrixRef<'_>)>,
    config: &TrainConfig,
    on_event: impl FnMut(&Event<'_>) -> R,
) -> Result<TrainReport> {
    fit_paired_from(model, data, target, valid, config, None, on_event)
}

/// [`fit_paired`], continuing from a checkpoint as [`fit_from`].
///
/// # Errors
/// As [`fit_paired`] and [`fit_from`].
pub fn fit_paired_from<'a, 'b, R: Into<Flow>>(
    model: &mut Autoencoder,
    data: impl Into<MatrixRef<'a>>,
    target: impl Into<MatrixRef<'b>>,
    valid: Option<(MatrixRef<'_>, MatrixRef<'_>)>,
    config: &TrainConfig,
    resume: Option<&Checkpoint>,
    on_event: impl FnMut(&Event<'_>) -> R,
) -> Result<TrainReport> {
    if config.scaling != Scaling::None {
        return Err(Error::setting(
            "scaling",
            config.scaling,
            "training on paired targets takes unscaled inputs (none)",
        ));
    }
    let valid = valid.map(|(v, t)| (v, Targets::Rows(t)));
    run(
        Trainee::autoencoder(model, true),
        data.into(),
        Targets::Rows(target.into()),
        valid,
        config,
        resume,
        on_event,
    )
}

/// Trains `model` on rows it does not hold: a [`RowStream`] of `stream.rows()` training rows,
/// already scaled by `model`'s scaler (fitted on them beforehand: see
/// [`crate::stream::TrainingRows`]), `valid` held-out rows (scaled) and `sample`, training rows
/// (scaled) for the code statistics when there are no validation rows. Everything else is
/// [`fit`]'s loop: the same settings, events, early stopping and divergence checks (no
/// checkpoints: a stream has no row order to save).
///
/// # Errors
/// As [`fit`]; what the stream reports.
pub fn fit_stream<R: Into<Flow>>(
    model: &mut Autoencoder,
    stream: &mut dyn RowStream,
    valid: Option<crate::tensor::Matrix>,
    sample: crate::tensor::Matrix,
    config: &TrainConfig,
    on_event: impl FnMut(&Event<'_>) -> R,
) -> Result<TrainReport> {
    config.validate(valid.is_some())?;
    model.check_reconstructs()?;
    let t = Trainee::autoencoder(model, false);
    let d = t.layers[0].n_in();
    for noise in &config.noise {
        noise.check(d, config.image_shape)?;
    }
    if let Some(v) = &valid {
        check_data(d, v.view(), "validation data")?;
    }
    check_data(d, sample.view(), "training data")?;
    let n = stream.rows();
    if n == 0 {
        return Err(Error::invalid("training data", "no rows"));
    }
    let valid = valid.map(|v| (Rows::Owned(v), Held::Input));
    let started = Instant::now();
    // A stream has no row order to save: no checkpoint is offered (a stop still ends cleanly).
    let mut on_event = on_event;
    let events = |e: &Event<'_>| match e {
        Event::Checkpoint(_) => Flow::Continue,
        e => on_event(e).into(),
    };
    let unit = unit_loss(&t.head);
    run_feed(
        t,
        Feed::Stream(stream, unit),
        n,
        d,
        valid,
        sample,
        config,
        None,
        started,
        &String::new,
        &mut Team::solo(),
        events,
    )
}

/// The training loop behind every training call.
pub(crate) fn run<R: Into<Flow>>(
    t: Trainee<'_>,
    data: MatrixRef<'_>,
    targets: Targets<'_>,
    valid: Option<(MatrixRef<'_>, Targets<'_>)>,
    config: &TrainConfig,
    resume: Option<&Checkpoint>,
    on_event: impl FnMut(&Event<'_>) -> R,
) -> Result<TrainReport> {
    run_with(t, data, targets, valid, config, resume, &mut Team::solo(), on_event)
}

/// Trains `model` as one rank of a data-parallel run (see [`crate::dist`]): `shard` is this
/// rank's rows (every rank holds its own; together they are the training data), `team` how it
/// talks with the other ranks. Rank 0's initial weights go to every rank; the scaler is
/// fitted over all shards; each rank holds out `valid_fraction` of its own rows and the
/// validation loss is taken over all of them; `config.batch_size` is the batch of the whole
/// run (each rank takes its share of it). Every rank ends with the same model, bit for bit,
/// and the same model for any transport: ranks in threads ([`dist::Local`]) or under MPI.
/// Shuffling, noise and dropout draw from the seed and the rank ([`dist::rank_seed`]): one
/// rank trains as [`fit`] does. Checkpoints are not offered (only [`Flow::Stop`] counts, and
/// a stop asked by any rank stops all of them after the same batch).
///
/// # Errors
/// As [`fit`]; [`Error::Distributed`] when another rank stops or the ranks disagree.
pub fn fit_shard<'a, R: Into<Flow>>(
    model: &mut Autoencoder,
    shard: impl Into<MatrixRef<'a>>,
    config: &TrainConfig,
    team: &mut Team<'_>,
    mut on_event: impl FnMut(&Event<'_>) -> R,
) -> Result<TrainReport> {
    let events = |e: &Event<'_>| match e {
        Event::Checkpoint(_) => Flow::Continue,
        e => match on_event(e).into() {
            Flow::Checkpoint => Flow::Continue,
            f => f,
        },
    };
    run_with(
        Trainee::autoencoder(model, true),
        shard.into(),
        Targets::Input,
        None,
        config,
        None,
        team,
        events,
    )
}

/// [`run`] as one rank of `team`.
#[allow(clippy::too_many_arguments)]
fn run_with<R: Into<Flow>>(
    t: Trainee<'_>,
    data: MatrixRef<'_>,
    targets: Targets<'_>,
    valid: Option<(MatrixRef<'_>, Targets<'_>)>,
    config: &TrainConfig,
    resume: Option<&Checkpoint>,
    team: &mut Team<'_>,
    on_event: impl FnMut(&Event<'_>) -> R,
) -> Result<TrainReport> {
    config.validate(valid.is_some())?;
    // What the run trains on, for checkpoints: computed when one is made or checked.
    let fingerprint = std::cell::OnceCell::new();
    let fingerprint = || {
        fingerprint
            .get_or_init(|| {
                fn rows<'t>(t: Targets<'t>) -> Option<MatrixRef<'t>> {
                    match t {
                        Targets::Rows(m) => Some(m),
                        _ => None,
                    }
                }
                fn classes<'t>(t: Targets<'t>) -> Option<&'t [usize]> {
                    match t {
                        Targets::Classes(y) => Some(y),
                        _ => None,
                    }
                }
                checkpoint::fingerprint(
                    &[
                        Some(data),
                        rows(targets),
                        valid.map(|(v, _)| v),
                        valid.and_then(|(_, vt)| rows(vt)),
                    ],
                    &[classes(targets), valid.and_then(|(_, vt)| classes(vt))],
                )
            })
            .clone()
    };
    if let Some(ck) = resume {
        checkpoint::check_config(ck, config)?;
        if ck.state.fingerprint != fingerprint() {
            return Err(Error::invalid(
                "checkpoint",
                "it was made on other data (the rows, targets or validation rows differ): resume on the same data",
            ));
        }
    }
    let input_dim = t.layers[0].n_in();
    let out_dim = t.layers[t.layers.len() - 1].n_out();
    let classes = matches!(targets, Targets::Classes(_));
    for n in &config.noise {
        n.check(input_dim, config.image_shape)?;
    }
    if config.freeze_epochs > 0 && !classes {
        return Err(Error::setting(
            "freeze_epochs",
            config.freeze_epochs,
            "freezing the encoder applies to classifiers",
        ));
    }
    if !t.fit_scaler && config.scaling != Scaling::None {
        return Err(Error::setting(
            "scaling",
            config.scaling,
            "this model keeps its encoder's scaler (none)",
        ));
    }
    check_data(input_dim, data, "training data")?;
    check_targets(data, targets, out_dim, "training")?;
    if config.binarize {
        if !matches!(targets, Targets::Input) {
            return Err(Error::setting(
                "binarize",
                true,
                "binarization draws the input and its target together: it needs an autoencoder of its own input",
            ));
        }
        if config.scaling != Scaling::None {
            return Err(Error::setting(
                "binarize",
                true,
                format!(
                    "binarization draws from the values themselves; it needs scaling none, not {}",
                    config.scaling
                ),
            ));
        }
        if let Some(i) = data.as_slice().iter().position(|v| !(0.0..=1.0).contains(v)) {
            return Err(Error::setting(
                "binarize",
                true,
                format!(
                    "binarization needs values in [0, 1]; row {}, column {} is {}",
                    i / input_dim + 1,
                    i % input_dim + 1,
                    data.as_slice()[i]
                ),
            ));
        }
    }
    if let Some((v, vt)) = valid {
        check_data(input_dim, v, "validation data")?;
        check_targets(v, vt, out_dim, "validation")?;
    }
    let started = Instant::now();
    // Split off validation rows, then fit and apply the scaler.
    // Rows are copied only when they must change (split or scaled).
    type Split<'a> = (Rows<'a>, Held<'a>, Option<(Rows<'a>, Held<'a>)>);
    let (mut train, targets, mut valid): Split<'_> = match valid {
        Some((v, vt)) => (
            Rows::Borrowed(data),
            Held::of(targets),
            Some((Rows::Borrowed(v), Held::of(vt))),
        ),
        None if config.valid_fraction > 0.0 => {
            if data.rows() < 2 {
                return Err(Error::invalid(
                    "training data",
                    format!(
                        "{} row: holding out a validation fraction needs at least 2 rows",
                        data.rows()
                    ),
                ));
            }
            let mut idx: Vec<usize> = (0..data.rows()).collect();
            Rng::stream(dist::rank_seed(config.seed, team.rank()), STREAM_SPLIT).shuffle(&mut idx);
            let n_valid =
                ((data.rows() as f64 * config.valid_fraction as f64).round() as usize).clamp(1, data.rows() - 1);
            // With 2 rows or more, the clamp leaves at least one for training.
            let (v, tr) = idx.split_at(n_valid);
            let held = Held::of(targets);
            (
                Rows::Owned(data.select_rows(tr)),
                held.select(tr),
                Some((Rows::Owned(data.select_rows(v)), held.select(v))),
            )
        }
        None => (Rows::Borrowed(data), Held::of(targets), None),
    };
    if t.fit_scaler {
        *t.scaler = if team.ranks() > 1 {
            dist::fit_scaler(config.scaling, train.view(), team)?
        } else {
            Scaler::fit(config.scaling, train.view())
        };
    }
    if !t.scaler.is_identity() {
        t.scaler.transform(train.to_mut());
        if let Some((v, _)) = valid.as_mut() {
            t.scaler.transform(v.to_mut());
        }
    }
    if let Some(loss) = unit_loss(&t.head) {
        let goal = match &targets {
            Held::Rows(m) => m.view(),
            _ => train.view(),
        };
        check_unit_targets(loss, goal.as_slice())?;
    }

    let (n, d) = (train.rows(), train.cols());
    // Code sparsity after each epoch is measured on the validation rows, else on the first
    // `CODE_SAMPLE` training rows (clean, in a fixed order).
    let k = n.min(CODE_SAMPLE);
    let sample = crate::tensor::Matrix::from_vec(k, d, train.view().as_slice()[..k * d].to_vec())?;
    let feed = Feed::Memory {
        train,
        targets,
        order: (0..n).collect(),
    };
    run_feed(
        t,
        feed,
        n,
        d,
        valid,
        sample,
        config,
        resume,
        started,
        &fingerprint,
        team,
        on_event,
    )
}

/// The epochs of [`run`] over a [`Feed`] of `n` training rows of width `d` (scaled), with
/// validation rows (scaled) and a sample of training rows for code statistics.
#[allow(clippy::too_many_arguments)]
fn run_feed<R: Into<Flow>>(
    mut t: Trainee<'_>,
    mut feed: Feed<'_, '_>,
    n: usize,
    d: usize,
    valid: Option<(Rows<'_>, Held<'_>)>,
    sample: crate::tensor::Matrix,
    config: &TrainConfig,
    resume: Option<&Checkpoint>,
    started: Instant,
    fingerprint: &dyn Fn() -> String,
    team: &mut Team<'_>,
    mut on_event: impl FnMut(&Event<'_>) -> R,
) -> Result<TrainReport> {
    let classes = matches!(
        &feed,
        Feed::Memory {
            targets: Held::Classes(_),
            ..
        }
    );
    let n_layers = t.layers.len();
    let (rank, ranks) = (team.rank(), team.ranks());
    if ranks > 1 && resume.is_some() {
        return Err(Error::Distributed(
            "a data-parallel run does not resume from checkpoints".into(),
        ));
    }
    // Each rank takes its share of the run's batch; every rank runs as many steps as the one
    // with the most rows (one whose rows ran out takes part with none).
    let sizes: Vec<usize> = if ranks > 1 {
        team.gather_f64(&[n as f64])?.iter().map(|&v| v as usize).collect()
    } else {
        vec![n]
    };
    let n_all: usize = sizes.iter().sum();
    let batch = config
        .batch_size
        .div_ceil(ranks)
        .min(sizes.iter().copied().max().unwrap_or(0))
        .max(1);
    let batches = sizes.iter().map(|s| s.div_ceil(batch)).max().unwrap_or(0);
    let own_batches = n.div_ceil(batch);
    let valid_all = if ranks > 1 {
        team.sum_f64(&[valid.as_ref().map_or(0, |(v, _)| v.rows()) as f64])?[0] as usize
    } else {
        valid.as_ref().map_or(0, |(v, _)| v.rows())
    };
    if ranks > 1 {
        // Every rank starts from rank 0's weights.
        for layer in t.layers.iter_mut() {
            let (w, b) = layer.params_mut();
            team.comm.broadcast_f32(w)?;
            team.comm.broadcast_f32(b)?;
        }
    }
    let total_steps = batches * config.epochs;
    let warmup = config.warmup_epochs * batches;
    let noisy = !config.noise.is_empty();
    let atoms = if config.unit_norm_decoder {
        Some(dictionary_layer(
            t.layers,
            t.code.map(|(c, _)| c),
            &t.tied,
            "unit_norm_decoder",
        )?)
    } else {
        None
    };
    if config.tied_init && resume.is_none() {
        let l = dictionary_layer(t.layers, t.code.map(|(c, _)| c), &t.tied, "tied_init")?;
        tied_init(t.layers, l).map_err(|why| Error::setting("tied_init", true, why))?;
        center_dictionary(t.layers, l, sample.view());
    }
    let mut pre_bias = if config.pre_bias {
        Some(PreBias::new(t.layers, t.code.map(|(c, _)| c), t.head)?)
    } else {
        None
    };
    // Training holds about five copies of the parameters (gradients, two optimizer moments,
    // the last good and the best weights) and a few of each batch's activations.
    let params: usize = t.layers.iter().map(Layer::num_params).sum();
    let widths = t.layers.iter().map(Layer::n_out).fold(d, usize::saturating_add);
    crate::bounds::check_alloc(
        params
            .saturating_mul(5)
            .saturating_add(batch.saturating_mul(widths).saturating_mul(3)),
        4,
        format_args!("training ({params} parameters, batches of {batch} rows)"),
    )?;
    let paired = matches!(
        &feed,
        Feed::Memory {
            targets: Held::Rows(_),
            ..
        }
    );
    check_auxk(t.layers, &t.regs, t.head)?;
    let mut ws = Workspace::new(t.net(), batch, noisy || paired);
    ws.set_dead_window(n);
    let seed = dist::rank_seed(config.seed, rank);
    let mut exchange = Exchange::default();
    let mut stop_asked = false;
    let mut stopped_early = false;
    let mut interrupted = false;
    // The freeze schedule: the lowest layer that trains, and an optimizer for the layers from
    // it up, made anew when the phase changes.
    let lowest_at = |epoch: usize| if epoch <= config.freeze_epochs { n_layers - 1 } else { 0 };
    let optimizer_for = |layers: &[Layer], lowest| update::optimizer_for(config.optimizer, layers, lowest);
    let mut pos = Position {
        step: 0,
        lowest: lowest_at(1),
        opt: optimizer_for(t.layers, lowest_at(1)),
        loss_sum: 0.0,
        hits: 0,
        lr: config.lr,
        shuffle: Rng::stream(seed, STREAM_SHUFFLE),
        noise: Rng::stream(seed, STREAM_NOISE),
        dropout: Rng::stream(seed, STREAM_DROPOUT),
        history: Vec::with_capacity(config.epochs),
        watch: Watch::new(config.patience),
        last_good: t.layers.clone(),
    };
    let start = match resume {
        Some(ck) => {
            let order = match &mut feed {
                Feed::Memory { order, .. } => Some(order),
                Feed::Stream(..) => None,
            };
            pos.resume(ck, t.layers, order, &mut ws, (n, batches), config)?
        }
        None => Start {
            epoch: 1,
            skip: 0,
            seconds_before: 0.0,
        },
    };
    let mut skip = start.skip;
    // A checkpoint of the loop where it stands: continue at `epoch`, batch `next_batch`.
    macro_rules! offer_checkpoint {
        ($epoch:expr, $next_batch:expr) => {{
            let stamp = (fingerprint(), start.seconds_before + started.elapsed().as_secs_f64());
            let at = ($epoch, $next_batch);
            let ck = pos.checkpoint(at, t.layers, &ws, feed.order(), config, stamp)?;
            // What the caller answers to a checkpoint is not a request.
            let _ = on_event(&Event::Checkpoint(&ck));
        }};
    }

    for epoch in start.epoch..=config.epochs {
        let resumed = std::mem::take(&mut skip);
        let flow = on_event(&Event::EpochStart {
            epoch,
            epochs: config.epochs,
            batches,
        })
        .into();
        if resumed == 0 && lowest_at(epoch) != pos.lowest {
            pos.lowest = lowest_at(epoch);
            pos.opt = optimizer_for(t.layers, pos.lowest);
        }
        if flow == Flow::Stop {
            offer_checkpoint!(epoch, resumed);
            interrupted = true;
            break;
        }
        let t0 = Instant::now();
        if resumed == 0 {
            feed.begin_epoch(&mut pos.shuffle)?;
            (pos.loss_sum, pos.hits) = (0.0, 0);
            pos.lr = config.lr;
        }
        let mut stop = false;
        for bi in resumed..batches {
            let b = if bi < own_batches {
                feed.fill(bi, batch, &mut ws, d, noisy)?
            } else {
                0
            };
            if config.binarize && b > 0 {
                noise::binarize(&mut ws.x[..b * d], &mut pos.noise);
                if noisy {
                    ws.x_in[..b * d].copy_from_slice(&ws.x[..b * d]);
                }
            }
            if noisy {
                noise::corrupt(
                    &config.noise,
                    &mut ws.x_in[..b * d],
                    d,
                    config.image_shape,
                    &mut pos.noise,
                );
            }
            let mut reg_step = regularize::Step {
                epoch: epoch - 1,
                rng: &mut pos.dropout,
            };
            let mut out = if b > 0 {
                forward_backward(t.net(), &mut ws, b, config.precision, &mut reg_step, pos.lowest)
            } else {
                // This rank's rows ran out: it takes part in the step with none.
                ws.dw.iter_mut().chain(ws.db.iter_mut()).for_each(|g| g.fill(0.0));
                StepResult { loss: 0.0, hits: 0 }
            };
            // Summing ranks agree on every step; averaging ranks step on their own until the
            // next averaging (their losses are summed at the epoch's end).
            let averaging = match team.sync {
                dist::Sync::Average { every } if ranks > 1 => Some(every.max(1)),
                _ => None,
            };
            let mut b_step = b;
            if ranks > 1 && averaging.is_none() {
                (out, b_step) = exchange.step(team, &mut ws, pos.lowest, b, out)?;
            }
            if !out.loss.is_finite() {
                *t.layers = pos.last_good;
                return Err(Error::Diverged {
                    epoch,
                    batch: bi + 1,
                    value: out.loss as f32,
                    last_good_epoch: epoch - 1,
                });
            }
            update::prepare(&t, &mut ws, pre_bias.is_some(), config.clip_norm, pos.lowest);
            pos.lr = config.schedule.lr(config.lr, pos.step, total_steps, batches, warmup);
            // Averaging ranks step on their own rows: one without rows this step waits.
            if averaging.is_none() || b > 0 {
                let keep = update::Constraints {
                    max_norm: config.max_norm,
                    atoms,
                    pre_bias: pre_bias.as_mut(),
                };
                update::apply(&mut t, &mut ws, &mut pos.opt, pos.lr, pos.lowest, keep);
            }
            pos.step += 1;
            let averaged = averaging.is_some_and(|every| pos.step.is_multiple_of(every));
            if averaged {
                exchange.average(team, t.layers)?;
                crate::model::sync_tied(t.layers, &t.tied);
                if let Some(p) = pre_bias.as_mut() {
                    p.reread(t.layers);
                }
            }
            pos.loss_sum += out.loss * b_step as f64;
            pos.hits += out.hits;
            let flow = on_event(&Event::Batch {
                batch: bi + 1,
                loss: out.loss,
            })
            .into();
            // A stop asked between averagings waits for the next one, where the ranks agree.
            stop_asked |= flow == Flow::Stop;
            let flow = match averaging {
                None => agree(team, flow)?,
                Some(_) if averaged => agree(team, if stop_asked { Flow::Stop } else { flow })?,
                Some(_) => Flow::Continue,
            };
            match flow {
                Flow::Continue => {}
                Flow::Checkpoint => offer_checkpoint!(epoch, bi + 1),
                Flow::Stop => {
                    offer_checkpoint!(epoch, bi + 1);
                    stop = true;
                    break;
                }
            }
        }
        if stop {
            // Mid-epoch: back to the last complete epoch's weights.
            t.layers.clone_from(&pos.last_good);
            interrupted = true;
            break;
        }
        if ranks > 1 && matches!(team.sync, dist::Sync::Average { .. }) {
            exchange.average(team, t.layers)?;
            crate::model::sync_tied(t.layers, &t.tied);
            if let Some(p) = pre_bias.as_mut() {
                p.reread(t.layers);
            }
            let t1 = Instant::now();
            let s = team.sum_f64(&[pos.loss_sum, pos.hits as f64])?;
            (pos.loss_sum, pos.hits) = (s[0], s[1] as usize);
            exchange.seconds += t1.elapsed().as_secs_f64();
        }
        let seconds = t0.elapsed().as_secs_f64();
        calibrate(t.layers, &mut t.regs, sample.view(), team)?;
        let mut checked = valid.as_ref().map(|(v, vt)| validate(&t, v.view(), vt));
        if ranks > 1
            && let Some((loss, acc)) = &mut checked
        {
            // Over every rank's validation rows.
            let rows = valid.as_ref().map_or(0, |(v, _)| v.rows()) as f64;
            let s = team.sum_f64(&[*loss * rows, acc.unwrap_or(0.0) * rows])?;
            let all = (valid_all as f64).max(1.0);
            *loss = s[0] / all;
            *acc = acc.map(|_| s[1] / all);
        }
        // Code sparsity after the epoch: on the validation rows, else on the first
        // `CODE_SAMPLE` training rows (clean, in a fixed order), so every model's history
        // has its L0 and dead units.
        let code = (rank == 0)
            .then(|| code_metrics(&t, code_rows(&valid, &sample), !paired))
            .flatten();
        let valid_loss = checked.map(|(loss, _)| loss);
        if let Some(v) = valid_loss
            && !v.is_finite()
        {
            *t.layers = pos.last_good;
            return Err(Error::Diverged {
                epoch,
                batch: batches,
                value: v as f32,
                last_good_epoch: epoch - 1,
            });
        }
        let is_best = pos.watch.observe(epoch, valid_loss, t.layers);
        let stats = EpochStats {
            epoch,
            train_loss: pos.loss_sum / n_all as f64,
            valid_loss,
            lr: pos.lr,
            seconds,
            // A resumed epoch trained only the rows after its first `resumed` batches (the last
            // batch may be short, so the count saturates).
            samples_per_sec: n_all.saturating_sub(resumed * batch).max(1) as f64 / seconds.max(1e-9),
            comm_seconds: std::mem::take(&mut exchange.seconds),
            precision: Some(config.precision.effective()),
            kernels: Some(config.precision.kernels()),
            best: is_best,
            code,
            train_accuracy: classes.then(|| pos.hits as f64 / n_all as f64),
            valid_accuracy: checked.and_then(|(_, a)| a),
        };
        let flow = on_event(&Event::EpochEnd(&stats)).into();
        let flow = agree(team, if stop_asked { Flow::Stop } else { flow })?;
        pos.history.push(stats);
        pos.last_good.clone_from(t.layers);
        let early = pos.watch.exhausted(epoch);
        let more = !early && epoch < config.epochs;
        if more && flow != Flow::Continue {
            offer_checkpoint!(epoch + 1, 0);
        }
        if flow == Flow::Stop {
            interrupted = true;
            break;
        }
        if early {
            stopped_early = epoch < config.epochs;
            break;
        }
    }
    let best_epoch = pos.watch.finish(t.layers, pos.history.len());
    calibrate(t.layers, &mut t.regs, sample.view(), team)?;
    if let Some(stored) = t.learned.as_deref_mut() {
        for (l, r) in t.regs.iter().enumerate() {
            if let (Some(r), Some(s)) = (r, stored.get_mut(&l)) {
                s.topk = r.topk;
            }
        }
    }
    let code_firing = code_metrics(&t, code_rows(&valid, &sample), false)
        .map(|m| m.unit_firing.iter().map(|&f| f as f32).collect())
        .unwrap_or_default();
    Ok(TrainReport {
        code_firing,
        history: pos.history,
        best_epoch,
        stopped_early,
        train_rows: n_all,
        valid_rows: valid_all,
        seconds: start.seconds_before + started.elapsed().as_secs_f64(),
        interrupted,
        precision: Some(config.precision.effective()),
        kernels: Some(config.precision.kernels()),
    })
}
