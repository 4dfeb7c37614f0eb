//! Where the epoch loop stands between two steps: everything a [`Checkpoint`] saves, and
//! what a resumed run takes back from one.

use super::checkpoint::{self, Checkpoint};
use super::config::{EpochStats, TrainConfig};
use super::step::Workspace;
use super::validation::Watch;
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::optim::Optimizer;
use crate::rng::Rng;

/// The loop's state between steps.
pub(super) struct Position {
    /// Optimizer steps taken.
    pub step: usize,
    /// The lowest layer that trains (the freeze schedule), and the optimizer of the layers
    /// from it up.
    pub lowest: usize,
    pub opt: Optimizer,
    /// The epoch's loss sum and correct predictions (classifiers) so far.
    pub loss_sum: f64,
    pub hits: usize,
    /// The learning rate of the last step.
    pub lr: f32,
    /// The random streams: the rows' order, input corruption, dropout.
    pub shuffle: Rng,
    pub noise: Rng,
    pub dropout: Rng,
    /// The finished epochs' statistics, and the best of them.
    pub history: Vec<EpochStats>,
    pub watch: Watch,
    /// The weights after the last complete epoch, where a stop or a divergence goes back to.
    pub last_good: Vec<Layer>,
}

/// Where a run starts: its first epoch, the batches of it already done, and the seconds
/// trained before (all zero but the epoch, 1, unless it resumes).
pub(super) struct Start {
    pub epoch: usize,
    pub skip: usize,
    pub seconds_before: f64,
}

impl Position {
    /// A checkpoint of the loop where it stands, to continue at `epoch`, batch `next_batch`.
    /// `order` is the epoch's row order (empty for a stream); the checkpoint is stamped with
    /// the data's `fingerprint` and the `seconds` trained.
    pub(super) fn checkpoint(
        &self,
        (epoch, next_batch): (usize, usize),
        layers: &[Layer],
        ws: &Workspace,
        order: &[usize],
        config: &TrainConfig,
        (fingerprint, seconds): (String, f64),
    ) -> Result<Checkpoint> {
        let (optimizer_step, moments) = self.opt.export();
        Ok(Checkpoint {
            state: checkpoint::State {
                epoch,
                next_batch,
                step: self.step,
                lowest: self.lowest,
                loss_sum: self.loss_sum.to_bits(),
                hits: self.hits,
                lr: self.lr.to_bits(),
                rngs: [self.shuffle.state(), self.noise.state(), self.dropout.state()],
                optimizer_step,
                best: self.watch.state(),
                history: self.history.clone(),
                seconds,
                config: serde_json::to_value(config).map_err(|e| Error::Config(e.to_string()))?,
                fingerprint,
                note: String::new(),
                firing: ws.firing(),
            },
            params: checkpoint::params_of(layers),
            last_good: checkpoint::params_of(&self.last_good),
            best: self.watch.kept().map(checkpoint::params_of),
            moments: moments.to_vec(),
            order: order.iter().map(|&i| i as u64).collect(),
        })
    }

    /// Takes back `ck`'s position: the weights into `layers`, the row order into `order`
    /// (`None` for a stream, which cannot resume), the AuxK counts into `ws`, and the rest
    /// into `self`, with an optimizer made anew for the checkpoint's lowest training layer.
    /// `n` is the number of training rows, `batches` the batches of an epoch.
    ///
    /// # Errors
    /// [`Error::InvalidData`] when the checkpoint does not fit this run.
    pub(super) fn resume(
        &mut self,
        ck: &Checkpoint,
        layers: &mut [Layer],
        order: Option<&mut Vec<usize>>,
        ws: &mut Workspace,
        (n, batches): (usize, usize),
        config: &TrainConfig,
    ) -> Result<Start> {
        let s = &ck.state;
        let fits = s.epoch >= 1
            && s.epoch <= config.epochs
            && s.next_batch <= batches
            && s.lowest < layers.len()
            && ck.order.len() == n
            && order.is_some()
            && s.history.len() + 1 == s.epoch;
        let (Some(order), true) = (order, fits) else {
            return Err(Error::invalid(
                "checkpoint",
                format!(
                    "its position (epoch {}, batch {}, {} rows) does not fit this run ({} epochs of {batches} batches, {n} rows)",
                    s.epoch,
                    s.next_batch,
                    ck.order.len(),
                    config.epochs
                ),
            ));
        };
        checkpoint::set_params(layers, &ck.params, "weights")?;
        checkpoint::set_params(&mut self.last_good, &ck.last_good, "last good weights")?;
        let kept = match &ck.best {
            Some(p) => {
                let mut best = layers.to_vec();
                checkpoint::set_params(&mut best, p, "best weights")?;
                Some(best)
            }
            None => None,
        };
        self.watch.restore(s.best, kept);
        let resumed: Vec<usize> = ck.order.iter().map(|&i| i as usize).collect();
        let mut seen = vec![false; n];
        if resumed.iter().any(|&i| i >= n || std::mem::replace(&mut seen[i], true)) {
            return Err(Error::invalid(
                "checkpoint",
                "its row order is not a permutation of the rows",
            ));
        }
        *order = resumed;
        [self.shuffle, self.noise, self.dropout] = s.rngs.map(Rng::from_state);
        self.lowest = s.lowest;
        self.opt = super::update::optimizer_for(config.optimizer, layers, s.lowest);
        self.opt
            .restore(s.optimizer_step, ck.moments.clone())
            .map_err(|m| Error::invalid("checkpoint", m))?;
        self.history.clone_from(&s.history);
        self.step = s.step;
        self.loss_sum = f64::from_bits(s.loss_sum);
        self.hits = s.hits;
        self.lr = f32::from_bits(s.lr);
        if !ws.set_firing(&s.firing) {
            return Err(Error::invalid(
                "checkpoint",
                "its AuxK firing counts do not fit this model's code",
            ));
        }
        Ok(Start {
            epoch: s.epoch,
            skip: s.next_batch,
            seconds_before: s.seconds,
        })
    }
}
