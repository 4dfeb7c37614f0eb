//! Optimizers (AdamW, SGD with momentum) and learning-rate schedules.

use crate::error::{Error, Result};
use crate::kernels::{self, ELEMENT_BLOCK};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Which optimizer and its hyper-parameters (the learning rate lives in the train config).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerConfig {
    /// Adam with decoupled weight decay (AdamW); decay applies to weights, not biases.
    Adam {
        /// First-moment decay.
        beta1: f32,
        /// Second-moment decay.
        beta2: f32,
        /// Denominator epsilon.
        eps: f32,
        /// Decoupled weight decay per step, multiplied by the learning rate.
        weight_decay: f32,
    },
    /// SGD with momentum (PyTorch semantics); weight decay is an L2 term on weights.
    Sgd {
        /// Momentum coefficient (0 for plain SGD).
        momentum: f32,
        /// Nesterov momentum.
        nesterov: bool,
        /// L2 weight decay added to the weight gradient.
        weight_decay: f32,
    },
}

impl OptimizerConfig {
    /// Adam with PyTorch's defaults (0.9, 0.999, 1e-8) and the given weight decay.
    pub fn adam(weight_decay: f32) -> Self {
        OptimizerConfig::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
        }
    }

    /// SGD with momentum 0.9 (Nesterov when asked) and the given weight decay.
    pub fn sgd(momentum: f32, nesterov: bool, weight_decay: f32) -> Self {
        OptimizerConfig::Sgd {
            momentum,
            nesterov,
            weight_decay,
        }
    }

    /// Checks the ranges.
    ///
    /// # Errors
    /// [`Error::Setting`] naming the bad value, [`Error::Config`] for Nesterov without momentum.
    pub fn validate(&self) -> Result<()> {
        let (weight_decay, momentum) = match *self {
            OptimizerConfig::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                for (name, v) in [("beta1", beta1), ("beta2", beta2)] {
                    if !(0.0..1.0).contains(&v) {
                        return Err(Error::setting(name, v, "an Adam beta must be in [0, 1)"));
                    }
                }
                if !(eps > 0.0) {
                    return Err(Error::setting("eps", eps, "must be positive"));
                }
                (weight_decay, None)
            }
            OptimizerConfig::Sgd {
                momentum,
                weight_decay,
                nesterov,
            } => {
                if nesterov && momentum == 0.0 {
                    return Err(Error::Config("Nesterov momentum needs momentum > 0".into()));
                }
                (weight_decay, Some(momentum))
            }
        };
        if !(weight_decay >= 0.0 && weight_decay.is_finite()) {
            return Err(Error::setting("weight_decay", weight_decay, "must be >= 0"));
        }
        if let Some(m) = momentum
            && !(0.0..1.0).contains(&m)
        {
            return Err(Error::setting("momentum", m, "must be in [0, 1)"));
        }
        Ok(())
    }
}

/// Learning-rate schedule over training steps (batches); warm-up is separate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// The base rate throughout.
    #[default]
    Constant,
    /// Multiply by `gamma` every `every` epochs.
    Step {
        /// Epochs between decays.
        every: usize,
        /// Factor per decay.
        gamma: f32,
    },
    /// Cosine decay from the base rate to `min_factor * base` at the last step.
    Cosine {
        /// Final rate as a fraction of the base rate.
        min_factor: f32,
    },
}

impl Schedule {
    /// The rate at `step` (0-based) of `total` steps with `steps_per_epoch` per epoch, after a
    /// linear warm-up over the first `warmup` steps.
    pub fn lr(&self, base: f32, step: usize, total: usize, steps_per_epoch: usize, warmup: usize) -> f32 {
        let decayed = match *self {
            Schedule::Constant => base,
            Schedule::Step { every, gamma } => {
                let epoch = step / steps_per_epoch.max(1);
                base * gamma.powi((epoch / every.max(1)) as i32)
            }
            Schedule::Cosine { min_factor } => {
                let t = step.saturating_sub(warmup) as f64 / (total.saturating_sub(warmup + 1).max(1)) as f64;
                let c = 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos());
                base * (min_factor + (1.0 - min_factor) * c as f32)
            }
        };
        if step < warmup {
            decayed * (step + 1) as f32 / warmup as f32
        } else {
            decayed
        }
    }

    /// Parses `constant`, `step:EVERY,GAMMA` or `cosine[:MIN_FACTOR]`.
    ///
    /// # Errors
    /// A message saying what form was expected.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let (name, args) = s.split_once(':').unwrap_or((s, ""));
        let nums: Vec<&str> = args.split(',').filter(|a| !a.is_empty()).collect();
        let err = || format!("bad schedule `{s}`; expected constant, step:EVERY,GAMMA or cosine[:MIN_FACTOR]");
        match (name, nums.as_slice()) {
            ("constant", []) => Ok(Schedule::Constant),
            ("step", [e, g]) => Ok(Schedule::Step {
                every: e.parse().map_err(|_| err())?,
                gamma: g.parse().map_err(|_| err())?,
            }),
            ("cosine", []) => Ok(Schedule::Cosine { min_factor: 0.0 }),
            ("cosine", [m]) => Ok(Schedule::Cosine {
                min_factor: m.parse().map_err(|_| err())?,
            }),
            _ => Err(err()),
        }
    }
}

/// One tensor's optimizer state: the first moment (or momentum buffer) and the second moment
/// (Adam only).
pub(crate) type Moments = (Vec<f32>, Vec<f32>);

/// Optimizer state for a list of parameter tensors (each weight and bias is one tensor).
#[derive(Clone, Debug)]
pub struct Optimizer {
    config: OptimizerConfig,
    /// Per tensor: first moment (or momentum buffer) and second moment (Adam only).
    state: Vec<(Vec<f32>, Vec<f32>)>,
    step: u64,
}

impl Optimizer {
    /// State for tensors of the given sizes, zero-initialized.
    pub fn new(config: OptimizerConfig, sizes: &[usize]) -> Self {
        let adam = matches!(config, OptimizerConfig::Adam { .. });
        let state = sizes
            .iter()
            .map(|&n| (vec![0.0; n], if adam { vec![0.0; n] } else { Vec::new() }))
            .collect();
        Optimizer { config, state, step: 0 }
    }

    /// The step count and the per-tensor moments, for a training checkpoint.
    pub(crate) fn export(&self) -> (u64, &[Moments]) {
        (self.step, &self.state)
    }

    /// Continues from an [`Optimizer::export`]: `state` must have this optimizer's sizes.
    pub(crate) fn restore(&mut self, step: u64, state: Vec<(Vec<f32>, Vec<f32>)>) -> std::result::Result<(), String> {
        let sizes = |s: &[(Vec<f32>, Vec<f32>)]| s.iter().map(|(m, v)| (m.len(), v.len())).collect::<Vec<_>>();
        if sizes(&state) != sizes(&self.state) {
            return Err(format!(
                "optimizer state of {} tensors does not fit this model's {}",
                state.len(),
                self.state.len()
            ));
        }
        self.step = step;
        self.state = state;
        Ok(())
    }

    /// Starts a new step (advances Adam's bias correction).
    pub fn begin_step(&mut self) {
        self.step += 1;
    }

    /// Updates every tensor in `tensors` — `(index, parameters, gradient, decay)`, indices
    /// increasing — in one parallel pass over fixed blocks of [`ELEMENT_BLOCK`] elements. The
    /// same arithmetic as [`Optimizer::update`] tensor by tensor, but the threads are woken
    /// once per step instead of once per tensor: on 2 cores that halved the time of a
    /// small-batch step (batch 32, 784-128-32: 34k → 66k samples/s with 2 threads).
    ///
    /// # Panics
    /// If the indices do not increase or a size differs from the state's.
    #[track_caller]
    pub fn update_all(&mut self, tensors: Vec<(usize, &mut [f32], &[f32], bool)>, lr: f32) {
        let config = self.config;
        let t = self.step.max(1) as i32;
        let mut state = self.state.iter_mut().enumerate();
        let mut blocks = Vec::new();
        for (index, w, g, decay) in tensors {
            let (_, (m, v)) = state
                .find(|(i, _)| *i == index)
                .expect("optimizer tensors in increasing order");
            assert_eq!(m.len(), w.len(), "optimizer state size differs from the parameter's");
            let vs: Vec<&mut [f32]> = if v.is_empty() {
                w.chunks(ELEMENT_BLOCK).map(|_| &mut [][..]).collect()
            } else {
                v.chunks_mut(ELEMENT_BLOCK).collect()
            };
            for (((w, g), m), v) in w
                .chunks_mut(ELEMENT_BLOCK)
                .zip(g.chunks(ELEMENT_BLOCK))
                .zip(m.chunks_mut(ELEMENT_BLOCK))
                .zip(vs)
            {
                blocks.push((w, g, m, v, decay));
            }
        }
        blocks.into_par_iter().for_each(|(w, g, m, v, decay)| match config {
            OptimizerConfig::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                let bc1 = 1.0 - beta1.powi(t);
                let bc2_sqrt = (1.0 - beta2.powi(t)).sqrt();
                let wd = if decay { lr * weight_decay } else { 0.0 };
                kernels::adam_update(w, g, m, v, lr / bc1, beta1, beta2, eps, bc2_sqrt, wd)
            }
            OptimizerConfig::Sgd {
                momentum,
                nesterov,
                weight_decay,
            } => {
                let wd = if decay { weight_decay } else { 0.0 };
                kernels::sgd_update(w, g, m, lr, momentum, nesterov, wd)
            }
        });
    }

    /// Updates tensor `index` in place from its gradient; `decay` says whether weight decay
    /// applies (weights yes, biases no). Runs in parallel over fixed element blocks.
    #[track_caller]
    pub fn update(&mut self, index: usize, w: &mut [f32], g: &[f32], lr: f32, decay: bool) {
        let (m, v) = &mut self.state[index];
        assert_eq!(m.len(), w.len(), "optimizer state size differs from the parameter's");
        match self.config {
            OptimizerConfig::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                let t = self.step.max(1) as i32;
                let bc1 = 1.0 - beta1.powi(t);
                let bc2_sqrt = (1.0 - beta2.powi(t)).sqrt();
                let lr_t = lr / bc1;
                let wd = if decay { lr * weight_decay } else { 0.0 };
                w.par_chunks_mut(ELEMENT_BLOCK)
                    .zip(g.par_chunks(ELEMENT_BLOCK))
                    .zip(m.par_chunks_mut(ELEMENT_BLOCK))
                    .zip(v.par_chunks_mut(ELEMENT_BLOCK))
                    .for_each(|(((w, g), m), v)| {
                        kernels::adam_update(w, g, m, v, lr_t, beta1, beta2, eps, bc2_sqrt, wd)
                    });
            }
            OptimizerConfig::Sgd {
                momentum,
                nesterov,
                weight_decay,
            } => {
                let wd = if decay { weight_decay } else { 0.0 };
                w.par_chunks_mut(ELEMENT_BLOCK)
                    .zip(g.par_chunks(ELEMENT_BLOCK))
                    .zip(m.par_chunks_mut(ELEMENT_BLOCK))
                    .for_each(|((w, g), b)| kernels::sgd_update(w, g, b, lr, momentum, nesterov, wd));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain scalar AdamW, as in the paper (Loshchilov & Hutter), for comparison.
    #[test]
    fn adam_matches_textbook_update() {
        let (b1, b2, eps, wd, lr) = (0.9f64, 0.999f64, 1e-8f64, 0.01f64, 0.05f64);
        let mut opt = Optimizer::new(OptimizerConfig::adam(wd as f32), &[3]);
        let mut w = vec![0.5f32, -1.0, 2.0];
        let (mut wr, mut m, mut v) = ([0.5f64, -1.0, 2.0], [0.0f64; 3], [0.0f64; 3]);
        for t in 1..=5 {
            let g: Vec<f32> = w.iter().map(|&x| 2.0 * x + 0.1 * t as f32).collect();
            opt.begin_step();
            opt.update(0, &mut w, &g, lr as f32, true);
            for i in 0..3 {
                let g = 2.0 * wr[i] + 0.1 * t as f64;
                m[i] = b1 * m[i] + (1.0 - b1) * g;
                v[i] = b2 * v[i] + (1.0 - b2) * g * g;
                let mh = m[i] / (1.0 - b1.powi(t));
                let vh = v[i] / (1.0 - b2.powi(t));
                wr[i] -= lr * wd * wr[i] + lr * mh / (vh.sqrt() + eps);
            }
        }
        for i in 0..3 {
            assert!((w[i] as f64 - wr[i]).abs() < 1e-5, "{w:?} vs {wr:?}");
        }
    }

    #[test]
    fn sgd_nesterov_matches_textbook_update() {
        let mut opt = Optimizer::new(OptimizerConfig::sgd(0.9, true, 0.0), &[1]);
        let mut w = vec![1.0f32];
        let (mut wr, mut b) = (1.0f64, 0.0f64);
        for _ in 0..4 {
            let g = vec![2.0 * w[0]];
            opt.begin_step();
            opt.update(0, &mut w, &g, 0.1, true);
            let g = 2.0 * wr;
            b = 0.9 * b + g;
            wr -= 0.1 * (g + 0.9 * b);
        }
        assert!((w[0] as f64 - wr).abs() < 1e-6);
    }

    #[test]
    fn schedules() {
        let s = Schedule::parse("step:2,0.5").unwrap();
        assert_eq!(s.lr(1.0, 0, 100, 10, 0), 1.0);
        assert_eq!(s.lr(1.0, 25, 100, 10, 0), 0.5);
        assert_eq!(s.lr(1.0, 45, 100, 10, 0), 0.25);
        let c = Schedule::parse("cosine:0.1").unwrap();
        assert!((c.lr(1.0, 0, 101, 10, 0) - 1.0).abs() < 1e-6);
        assert!((c.lr(1.0, 100, 101, 10, 0) - 0.1).abs() < 1e-6);
        assert!((Schedule::Constant.lr(1.0, 1, 100, 10, 4) - 0.5).abs() < 1e-6);
        assert!(Schedule::parse("cosine:x").is_err());
        assert!(Schedule::parse("linear").is_err());
    }
}
