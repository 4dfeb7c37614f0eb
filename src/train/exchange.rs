//! What the ranks of a data-parallel run exchange inside the epoch loop: each step's rows,
//! loss and gradient (summed in rank order), the averaged weights, and whether to stop.

use super::config::Flow;
use super::step::{StepResult, Workspace};
use crate::dist::{self, Team};
use crate::error::Result;
use crate::layer::Layer;
use std::time::Instant;

/// What a data-parallel rank exchanges, in buffers kept between steps.
#[derive(Default)]
pub(super) struct Exchange {
    mine: Vec<f32>,
    all: Vec<f32>,
    /// Time spent in the exchanges since it was last taken.
    pub seconds: f64,
}

impl Exchange {
    /// Agrees on a step: the step's rows, loss and hits over all ranks and, when the ranks sum
    /// gradients, the step's gradient: each rank's (the mean over its rows) weighted by its
    /// share of the step's rows, summed in rank order into `ws`'s gradients on every rank.
    pub(super) fn step(
        &mut self,
        team: &mut Team<'_>,
        ws: &mut Workspace,
        lowest: usize,
        b: usize,
        out: StepResult,
    ) -> Result<(StepResult, usize)> {
        let ranks = team.ranks();
        let t0 = Instant::now();
        let info = team.gather_f64(&[b as f64, out.loss * b as f64, out.hits as f64])?;
        let (mut rows, mut loss, mut hits) = (0.0f64, 0.0f64, 0.0f64);
        for r in info.chunks_exact(3) {
            rows += r[0];
            loss += r[1];
            hits += r[2];
        }
        let total = StepResult {
            loss: loss / rows.max(1.0),
            hits: hits as usize,
        };
        if team.sync == dist::Sync::Gradients {
            self.mine.clear();
            for g in ws.dw[lowest..].iter().chain(&ws.db[lowest..]) {
                self.mine.extend_from_slice(g);
            }
            let len = self.mine.len();
            self.all.resize(len * ranks, 0.0);
            team.comm.all_gather_f32(&self.mine, &mut self.all)?;
            // Per value: 0 + w0 g0 + w1 g1 + …, rank by rank (a pass per rank, vectorized).
            self.mine.fill(0.0);
            for (part, r) in self.all.chunks_exact(len.max(1)).zip(info.chunks_exact(3)) {
                let w = (r[0] / rows) as f32;
                for (g, v) in self.mine.iter_mut().zip(part) {
                    *g += w * v;
                }
            }
            let mut at = 0;
            for g in ws.dw[lowest..].iter_mut().chain(ws.db[lowest..].iter_mut()) {
                let k = g.len();
                g.copy_from_slice(&self.mine[at..at + k]);
                at += k;
            }
        }
        self.seconds += t0.elapsed().as_secs_f64();
        Ok((total, rows as usize))
    }

    /// Sets every rank's weights to their mean over the ranks (summed in rank order).
    pub(super) fn average(&mut self, team: &mut Team<'_>, layers: &mut [Layer]) -> Result<()> {
        let ranks = team.ranks();
        let t0 = Instant::now();
        self.mine.clear();
        for l in layers.iter() {
            let (w, b) = l.params();
            self.mine.extend_from_slice(w);
            self.mine.extend_from_slice(b);
        }
        let len = self.mine.len();
        self.all.resize(len * ranks, 0.0);
        team.comm.all_gather_f32(&self.mine, &mut self.all)?;
        self.mine.fill(0.0);
        for part in self.all.chunks_exact(len.max(1)) {
            for (p, v) in self.mine.iter_mut().zip(part) {
                *p += v;
            }
        }
        let n = ranks as f32;
        self.mine.iter_mut().for_each(|p| *p /= n);
        let mut at = 0;
        for l in layers.iter_mut() {
            let (w, b) = l.params_mut();
            for p in [w, b] {
                let k = p.len();
                p.copy_from_slice(&self.mine[at..at + k]);
                at += k;
            }
        }
        self.seconds += t0.elapsed().as_secs_f64();
        Ok(())
    }
}

/// What every rank of `team` does after `flow` was asked of one of them: a stop asked by any
/// rank stops all (the others go on otherwise).
pub(super) fn agree(team: &mut Team<'_>, flow: Flow) -> Result<Flow> {
    if team.ranks() == 1 {
        return Ok(flow);
    }
    let stop = team.gather_f64(&[f64::from(u8::from(flow == Flow::Stop))])?;
    Ok(if stop.iter().any(|&s| s > 0.0) {
        Flow::Stop
    } else {
        flow
    })
}
