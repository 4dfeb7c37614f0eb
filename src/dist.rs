//! Data-parallel training: several ranks (processes under MPI, or threads of one process) each
//! train on their own shard of the rows and agree on every step through a [`Collective`].
//!
//! - [`Team`]: a rank's [`Collective`] and how the ranks keep one model ([`Sync`]): every
//!   step's gradients gathered and summed (the default), or local steps with the weights
//!   averaged every few steps (for slow networks).
//! - Every sum runs over the ranks in rank order, on every rank, so the result is the same on
//!   all of them, for any transport and thread count: `mpirun -np 2` gives the model that two
//!   [`Local`] ranks in threads give, bit for bit.
//! - [`Solo`]: one rank, nothing to agree on (plain training); [`Local`]: ranks in threads of
//!   this process; `Mpi` (the `mpi` cargo feature): ranks under `mpirun`.

use crate::error::{Error, Result};
use std::sync::{Arc, Condvar, Mutex};

/// How a rank talks with the others. Every rank calls the same operations in the same order.
pub trait Collective {
    /// This rank's number, from 0.
    fn rank(&self) -> usize;
    /// How many ranks train together.
    fn ranks(&self) -> usize;
    /// Every rank's `mine` (all of the same length), in rank order, into `all`
    /// (`ranks() × mine.len()` values), on every rank.
    ///
    /// # Errors
    /// [`Error::Distributed`] when another rank has stopped.
    fn all_gather_f32(&mut self, mine: &[f32], all: &mut [f32]) -> Result<()>;
    /// [`Collective::all_gather_f32`] for `f64` values.
    ///
    /// # Errors
    /// As [`Collective::all_gather_f32`].
    fn all_gather_f64(&mut self, mine: &[f64], all: &mut [f64]) -> Result<()>;
    /// Rank 0's `buf` into every rank's `buf`.
    ///
    /// # Errors
    /// As [`Collective::all_gather_f32`].
    fn broadcast_f32(&mut self, buf: &mut [f32]) -> Result<()>;
}

/// How the ranks keep one model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sync {
    /// Every step, the ranks' gradients are gathered and summed in rank order, weighted by
    /// their rows in the step: one model, as if one process took the whole batch.
    #[default]
    Gradients,
    /// Every rank steps its own optimizer on its own rows; every `every` steps and at each
    /// epoch's end the weights are averaged over the ranks (less traffic, a looser model).
    Average {
        /// Steps between averagings.
        every: usize,
    },
}

/// How a model was trained data-parallel (kept in its provenance).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Parallel {
    /// The ranks that trained together.
    pub ranks: usize,
    /// How they kept one model.
    pub sync: Sync,
}

/// A rank of a data-parallel run.
pub struct Team<'c> {
    /// How this rank talks with the others.
    pub comm: &'c mut dyn Collective,
    /// How the ranks keep one model.
    pub sync: Sync,
}

impl std::fmt::Debug for Team<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Team")
            .field("rank", &self.comm.rank())
            .field("ranks", &self.comm.ranks())
            .field("sync", &self.sync)
            .finish()
    }
}

impl Team<'static> {
    /// One rank alone ([`Solo`]): plain training.
    pub fn solo() -> Self {
        // `Solo` has no size: leaking a box of it allocates nothing.
        Team {
            comm: Box::leak(Box::new(Solo)),
            sync: Sync::Gradients,
        }
    }
}

impl Team<'_> {
    /// This rank's number.
    pub fn rank(&self) -> usize {
        self.comm.rank()
    }

    /// How many ranks train together.
    pub fn ranks(&self) -> usize {
        self.comm.ranks()
    }

    /// Every rank's `mine`, summed elementwise in rank order.
    ///
    /// # Errors
    /// As [`Collective::all_gather_f64`].
    pub fn sum_f64(&mut self, mine: &[f64]) -> Result<Vec<f64>> {
        let mut all = vec![0.0; mine.len() * self.ranks()];
        self.comm.all_gather_f64(mine, &mut all)?;
        Ok(sum_in_order(&all, mine.len()))
    }

    /// Every rank's `mine`, in rank order.
    ///
    /// # Errors
    /// As [`Collective::all_gather_f64`].
    pub fn gather_f64(&mut self, mine: &[f64]) -> Result<Vec<f64>> {
        let mut all = vec![0.0; mine.len() * self.ranks()];
        self.comm.all_gather_f64(mine, &mut all)?;
        Ok(all)
    }
}

/// The elementwise sum of `ranks` slices of `len` values laid end to end, rank 0 first.
fn sum_in_order(all: &[f64], len: usize) -> Vec<f64> {
    let mut out = vec![0.0; len];
    for part in all.chunks_exact(len.max(1)) {
        for (o, v) in out.iter_mut().zip(part) {
            *o += v;
        }
    }
    out
}

/// One rank alone: plain training.
#[derive(Clone, Copy, Debug, Default)]
pub struct Solo;

impl Collective for Solo {
    fn rank(&self) -> usize {
        0
    }

    fn ranks(&self) -> usize {
        1
    }

    fn all_gather_f32(&mut self, mine: &[f32], all: &mut [f32]) -> Result<()> {
        all.copy_from_slice(mine);
        Ok(())
    }

    fn all_gather_f64(&mut self, mine: &[f64], all: &mut [f64]) -> Result<()> {
        all.copy_from_slice(mine);
        Ok(())
    }

    fn broadcast_f32(&mut self, _buf: &mut [f32]) -> Result<()> {
        Ok(())
    }
}

#[derive(Default)]
struct Board {
    f32s: Vec<Vec<f32>>,
    f64s: Vec<Vec<f64>>,
    arrived: usize,
    generation: u64,
    /// The first rank that left, and whether it had finished its work.
    left: Option<(usize, bool)>,
}

/// Ranks in threads of one process, talking through shared memory: the same arithmetic as
/// ranks under MPI, for tests and for reproducing a cluster run on one machine. A rank that
/// stops (an error, a panic) while others wait makes them fail with [`Error::Distributed`]
/// instead of waiting forever.
pub struct Local {
    rank: usize,
    ranks: usize,
    shared: Arc<(Mutex<Board>, Condvar)>,
    finished: bool,
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local")
            .field("rank", &self.rank)
            .field("ranks", &self.ranks)
            .finish_non_exhaustive()
    }
}

impl Local {
    /// `ranks` ranks that talk with one another, rank 0 first; hand one to each thread.
    pub fn group(ranks: usize) -> Vec<Local> {
        let board = Board {
            f32s: vec![Vec::new(); ranks],
            f64s: vec![Vec::new(); ranks],
            ..Board::default()
        };
        let shared = Arc::new((Mutex::new(board), Condvar::new()));
        (0..ranks)
            .map(|rank| Local {
                rank,
                ranks,
                shared: shared.clone(),
                finished: false,
            })
            .collect()
    }

    /// Marks this rank's work as done (a rank that waits for it then hears that it finished,
    /// not that it stopped).
    pub fn finish(mut self) {
        self.finished = true;
    }

    fn board(&self) -> std::sync::MutexGuard<'_, Board> {
        // A rank that panicked while holding the lock left the board as it was.
        self.shared.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Fails once a rank has left: nobody can wait for it.
    fn gone(&self, b: &Board) -> Result<()> {
        match b.left {
            Some((r, false)) => Err(Error::Distributed(format!(
                "rank {r} of {} stopped; rank {} stops too",
                self.ranks, self.rank
            ))),
            Some((r, true)) => Err(Error::Distributed(format!(
                "rank {r} of {} finished while rank {} still needed it (the ranks ran different steps)",
                self.ranks, self.rank
            ))),
            None => Ok(()),
        }
    }

    /// Waits until every rank has arrived.
    fn barrier(&self) -> Result<()> {
        let cv = &self.shared.1;
        let mut b = self.board();
        self.gone(&b)?;
        let generation = b.generation;
        b.arrived += 1;
        if b.arrived == self.ranks {
            b.arrived = 0;
            b.generation += 1;
            cv.notify_all();
            return Ok(());
        }
        while b.generation == generation {
            self.gone(&b)?;
            b = cv.wait(b).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        Ok(())
    }

    fn exchange<T: Copy>(
        &mut self,
        slots: fn(&mut Board) -> &mut Vec<Vec<T>>,
        mine: &[T],
        all: &mut [T],
    ) -> Result<()> {
        check_lengths(mine.len(), all.len(), self.ranks)?;
        {
            let mut b = self.board();
            let s = &mut slots(&mut b)[self.rank];
            s.clear();
            s.extend_from_slice(mine);
        }
        self.barrier()?;
        {
            let mut b = self.board();
            for (dst, src) in all.chunks_exact_mut(mine.len().max(1)).zip(slots(&mut b).iter()) {
                if src.len() != dst.len() {
                    return Err(Error::Distributed(format!(
                        "ranks disagree on a message's length ({} and {} values)",
                        src.len(),
                        dst.len()
                    )));
                }
                dst.copy_from_slice(src);
            }
        }
        // Nobody writes the next message before everyone has read this one.
        self.barrier()
    }
}

fn check_lengths(mine: usize, all: usize, ranks: usize) -> Result<()> {
    if mine.checked_mul(ranks) != Some(all) {
        return Err(Error::Distributed(format!(
            "a gather of {mine} values from {ranks} ranks into {all}"
        )));
    }
    Ok(())
}

impl Drop for Local {
    fn drop(&mut self) {
        let mut b = self.board();
        if b.left.is_none() {
            b.left = Some((self.rank, self.finished));
        }
        drop(b);
        self.shared.1.notify_all();
    }
}

impl Collective for Local {
    fn rank(&self) -> usize {
        self.rank
    }

    fn ranks(&self) -> usize {
        self.ranks
    }

    fn all_gather_f32(&mut self, mine: &[f32], all: &mut [f32]) -> Result<()> {
        self.exchange(|b| &mut b.f32s, mine, all)
    }

    fn all_gather_f64(&mut self, mine: &[f64], all: &mut [f64]) -> Result<()> {
        self.exchange(|b| &mut b.f64s, mine, all)
    }

    fn broadcast_f32(&mut self, buf: &mut [f32]) -> Result<()> {
        let mut all = vec![0.0; buf.len() * self.ranks];
        self.all_gather_f32(buf, &mut all)?;
        buf.copy_from_slice(&all[..buf.len()]);
        Ok(())
    }
}

/// Ranks under `mpirun`, through MPI (the `mpi` cargo feature). MPI's own runtime ends every
/// rank when one of them dies.
#[cfg(feature = "mpi")]
pub struct Mpi {
    world: mpi::topology::SimpleCommunicator,
    _universe: mpi::environment::Universe,
}

#[cfg(feature = "mpi")]
impl std::fmt::Debug for Mpi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mpi")
            .field("rank", &self.rank())
            .field("ranks", &self.ranks())
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "mpi")]
impl Mpi {
    /// Starts MPI (once per process).
    ///
    /// # Errors
    /// [`Error::Distributed`] when MPI was started already or cannot start.
    pub fn init() -> Result<Mpi> {
        let universe =
            mpi::initialize().ok_or_else(|| Error::Distributed("MPI was started already in this process".into()))?;
        Ok(Mpi {
            world: universe.world(),
            _universe: universe,
        })
    }

    /// Ends every rank of the job with `code` (after a rank failed, so no rank waits for it).
    pub fn abort(&self, code: i32) -> ! {
        use mpi::traits::Communicator;
        self.world.abort(code)
    }
}

#[cfg(feature = "mpi")]
impl Collective for Mpi {
    fn rank(&self) -> usize {
        use mpi::traits::Communicator;
        self.world.rank() as usize
    }

    fn ranks(&self) -> usize {
        use mpi::traits::Communicator;
        self.world.size() as usize
    }

    fn all_gather_f32(&mut self, mine: &[f32], all: &mut [f32]) -> Result<()> {
        use mpi::traits::CommunicatorCollectives;
        check_lengths(mine.len(), all.len(), self.ranks())?;
        self.world.all_gather_into(mine, all);
        Ok(())
    }

    fn all_gather_f64(&mut self, mine: &[f64], all: &mut [f64]) -> Result<()> {
        use mpi::traits::CommunicatorCollectives;
        check_lengths(mine.len(), all.len(), self.ranks())?;
        self.world.all_gather_into(mine, all);
        Ok(())
    }

    fn broadcast_f32(&mut self, buf: &mut [f32]) -> Result<()> {
        use mpi::traits::{Communicator, Root};
        self.world.process_at_rank(0).broadcast_into(buf);
        Ok(())
    }
}

/// The seed of rank `rank`'s random streams (shuffle, split, noise, dropout): rank 0 keeps
/// `seed`, so one rank trains as plain training does.
pub fn rank_seed(seed: u64, rank: usize) -> u64 {
    seed.wrapping_add((rank as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// Fits a scaler of `kind` over every rank's rows `x`: each rank's sums, added in rank order,
/// so every rank gets the same scaler (with one rank, [`crate::data::scale::Scaler::fit`]'s).
///
/// # Errors
/// As [`Collective::all_gather_f64`].
pub fn fit_scaler(
    kind: crate::data::scale::Scaling,
    x: crate::tensor::MatrixRef<'_>,
    team: &mut Team<'_>,
) -> Result<crate::data::scale::Scaler> {
    let mut fit = crate::data::scale::ScalerFit::new(kind, x.cols());
    for pass in 0..fit.passes() {
        fit.add(pass, x);
        let mine = fit.partial(pass);
        let all = team.gather_f64(&mine)?;
        let parts: Vec<&[f64]> = all.chunks_exact(mine.len().max(1)).collect();
        fit.combine(pass, &parts);
    }
    Ok(fit.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_ranks_gather_in_rank_order_and_fail_when_one_leaves() {
        let mut group = Local::group(3);
        let handles: Vec<_> = group
            .drain(..)
            .map(|mut c| {
                std::thread::spawn(move || {
                    let r = c.rank() as f32;
                    let mut all = vec![0.0; 6];
                    c.all_gather_f32(&[r, 10.0 * r], &mut all).unwrap();
                    let mut b = [r + 1.0; 2];
                    c.broadcast_f32(&mut b).unwrap();
                    c.finish();
                    (all, b)
                })
            })
            .collect();
        for h in handles {
            let (all, b) = h.join().unwrap();
            assert_eq!(all, [0.0, 0.0, 1.0, 10.0, 2.0, 20.0]);
            assert_eq!(b, [1.0, 1.0]);
        }
        // Rank 1 leaves (dropped unfinished): rank 0 stops with an error, not a hang.
        let mut group = Local::group(2);
        let leaver = group.pop().unwrap();
        let mut c = group.pop().unwrap();
        let h = std::thread::spawn(move || {
            let mut all = [0.0; 2];
            c.all_gather_f64(&[1.0], &mut all)
        });
        drop(leaver);
        let err = h.join().unwrap().unwrap_err();
        assert!(err.to_string().contains("rank 1 of 2 stopped"), "{err}");
    }

    #[test]
    fn sums_run_in_rank_order() {
        // 1e16 + 1 - 1e16 in that order is 0 in f64; another order would give 1 or 2.
        let all = [1e16, 1.0, -1e16];
        assert_eq!(sum_in_order(&all, 1), vec![0.0]);
        assert_eq!(rank_seed(7, 0), 7);
        assert_ne!(rank_seed(7, 1), rank_seed(7, 2));
    }
}
