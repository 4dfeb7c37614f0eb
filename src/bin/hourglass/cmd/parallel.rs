//! `train --distributed` (ranks under `mpirun`) and `train --local-ranks N` (ranks in threads):
//! data-parallel training through `hourglass::fit_shard` (see `hourglass::dist`).

use super::train::{Progress, settings};
use super::{outln, session::Session};
use crate::args::TrainArgs;
use crate::signals;
use anyhow::Result;
use hourglass::data::tabular::Tabular;
use hourglass::data::{Dataset, Format};
use hourglass::dist::{Collective, Local, Parallel, Sync, Team};
use hourglass::format::{self, ModelFile, Provenance};
use hourglass::{Event, Flow, TrainReport};

pub fn run(a: TrainArgs) -> Result<()> {
    let sync = match a.average_every {
        Some(k) => Sync::Average { every: k as usize },
        None => Sync::Gradients,
    };
    match a.local_ranks {
        Some(n) => {
            super::train::precision_note(a.precision);
            in_threads(&a, n as usize, sync)
        }
        None => under_mpi(&a, sync),
    }
}

/// What a rank ends with.
struct Trained {
    file: ModelFile,
    report: TrainReport,
    epochs: usize,
}

/// This rank's rows (see `TrainingRows::shard`: its share of the row groups or segments, or
/// every `ranks`-th row from row `rank`), read in chunks from a CSV, Parquet, NPY or IDX file
/// (a folder of images is read whole first); and the file's row count.
fn shard(a: &TrainArgs, rank: usize, ranks: usize) -> Result<(Dataset, usize, Option<Tabular>)> {
    let sel = a.columns.selection();
    let table = a.tabular.options();
    let (ds, total, tabular) = if hourglass::stream::is_chunked(&a.data) {
        let s = hourglass::stream::TrainingRows::shard(&a.data, &sel, &table, rank, ranks)?;
        if rank == 0 {
            for n in &s.notes {
                note!("note: {n}");
            }
        }
        let format = if hourglass::load::is_parquet(&a.data) {
            Format::Parquet
        } else if hourglass::load::is_table(&a.data) {
            Format::Csv
        } else if hourglass::data::is_idx(&a.data) {
            Format::Idx
        } else {
            Format::Npy
        };
        let ds = Dataset {
            x: s.x,
            names: s.names,
            labels: None,
            image_shape: s.image_shape,
            format,
            files: None,
        };
        (ds, s.total, s.tabular)
    } else {
        let mut ds = hourglass::load::training_data(&a.data, &sel, &table, a.image.image_shape)?.data;
        let total = ds.x.rows();
        let rows: Vec<usize> = (rank..total).step_by(ranks).collect();
        ds.x = ds.x.select_rows(&rows);
        ds.labels = None;
        ds.files = None;
        (ds, total, None)
    };
    anyhow::ensure!(
        total >= ranks,
        "{}: {total} rows cannot feed {ranks} ranks (each needs at least one)",
        a.data.display()
    );
    Ok((ds, total, tabular))
}

/// One rank's training; `events` hears its progress.
fn train_rank(
    a: &TrainArgs,
    comm: &mut dyn Collective,
    sync: Sync,
    events: &mut dyn FnMut(&Event<'_>) -> Flow,
) -> Result<Trained> {
    let ranks = comm.ranks();
    let (ds, total, tabular) = shard(a, comm.rank(), ranks)?;
    let (model_cfg, train_cfg) = settings(a, &ds, None, false)?;
    let mut model = model_cfg.init(a.seed)?;
    let mut team = Team { comm, sync };
    let report = hourglass::fit_shard(&mut model, &ds.x, &train_cfg, &mut team, events)?;
    let mut provenance = Provenance::training(&train_cfg, Some(report.clone()), &a.data, &ds);
    provenance.data_shape = Some((total, ds.x.cols()));
    provenance.parallel = Some(Parallel { ranks, sync });
    let file = ModelFile {
        model,
        provenance,
        anomaly: None,
        tabular,
        windows: None,
        neighbours: None,
    };
    Ok(Trained {
        file,
        report,
        epochs: train_cfg.epochs,
    })
}

/// Rank 0's part after training: the model, the summary, a stop's note.
fn save(a: &TrainArgs, session: Session, t: Trained, ranks: usize) -> Result<()> {
    if t.report.interrupted {
        let progress = (t.report.history.len(), t.report.best_epoch, t.epochs);
        return session.stopped(progress, "model", &a.output, || Ok(format::save(&a.output, &t.file)?));
    }
    format::save(&a.output, &t.file)?;
    session.finish(false)?;
    let last = t.report.history.last().expect("at least one epoch");
    outln!(
        "trained {} epochs in {:.1} s on {} ranks ({} rows, {} held out): train loss {:.6}{}",
        t.report.history.len(),
        t.report.seconds,
        ranks,
        t.report.train_rows + t.report.valid_rows,
        t.report.valid_rows,
        last.train_loss,
        last.valid_loss
            .map(|v| format!(", valid loss {v:.6}"))
            .unwrap_or_default()
    );
    outln!(
        "model: {} ({} parameters)",
        a.output.display(),
        t.file.model.num_params()
    );
    Ok(())
}

/// Rank 0's events: progress, the log and signals. Other ranks only listen for signals.
fn root_events<'s>(session: &'s mut Session, progress: &'s mut Progress) -> impl FnMut(&Event<'_>) -> Flow + 's {
    move |e| {
        progress.on(e);
        session.on(e)
    }
}

fn other_events(_: &Event<'_>) -> Flow {
    if signals::requested().is_some() {
        Flow::Stop
    } else {
        Flow::Continue
    }
}

fn in_threads(a: &TrainArgs, ranks: usize, sync: Sync) -> Result<()> {
    let mut session = Session::new("train", &a.checkpoints, &a.output, a.log.as_deref(), None)?;
    let mut progress = Progress::new(a.quiet, a.batch_size.unwrap_or(256), a.epochs.unwrap_or(10));
    let results: Vec<Result<Trained>> = std::thread::scope(|s| {
        let mut comms = Local::group(ranks).into_iter();
        let mut root = comms.next().expect("at least one rank");
        let others: Vec<_> = comms
            .map(|mut comm| {
                s.spawn(move || {
                    let r = train_rank(a, &mut comm, sync, &mut other_events);
                    if r.is_ok() {
                        comm.finish();
                    }
                    r
                })
            })
            .collect();
        let mut events = root_events(&mut session, &mut progress);
        let r = train_rank(a, &mut root, sync, &mut events);
        if r.is_ok() {
            root.finish();
        } else {
            drop(root);
        }
        let mut all = vec![r];
        all.extend(others.into_iter().map(|h| h.join().expect("a rank panicked")));
        all
    });
    progress.finish();
    // Report the cause, not the ranks that stopped because another did.
    let mut root = None;
    let mut failed: Vec<(usize, anyhow::Error)> = Vec::new();
    for (rank, r) in results.into_iter().enumerate() {
        match r {
            Ok(t) if rank == 0 => root = Some(t),
            Ok(_) => {}
            Err(e) => failed.push((rank, e)),
        }
    }
    let follows = |e: &anyhow::Error| matches!(e.downcast_ref(), Some(hourglass::Error::Distributed(_)));
    if let Some(i) = failed
        .iter()
        .position(|(_, e)| !follows(e))
        .or((!failed.is_empty()).then_some(0))
    {
        let (rank, e) = failed.swap_remove(i);
        return Err(e.context(format!("rank {rank} of {ranks}")));
    }
    save(a, session, root.expect("rank 0 trained"), ranks)
}

#[cfg(feature = "mpi")]
fn under_mpi(a: &TrainArgs, sync: Sync) -> Result<()> {
    let mut mpi = hourglass::dist::Mpi::init()?;
    let (rank, ranks) = (mpi.rank(), mpi.ranks());
    if rank == 0 {
        super::train::precision_note(a.precision);
    }
    let result = if rank == 0 {
        let mut session = Session::new("train", &a.checkpoints, &a.output, a.log.as_deref(), None)?;
        let mut progress = Progress::new(a.quiet, a.batch_size.unwrap_or(256), a.epochs.unwrap_or(10));
        let r = train_rank(a, &mut mpi, sync, &mut root_events(&mut session, &mut progress));
        progress.finish();
        r.and_then(|t| save(a, session, t, ranks))
    } else {
        let _listen = signals::Training::start();
        train_rank(a, &mut mpi, sync, &mut other_events).map(|_| ())
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.is::<signals::Interrupted>() => Err(e),
        Err(e) => {
            // Stop every rank now: none may wait for this one.
            note!("error: rank {rank} of {ranks}: {}", crate::errors::render(&e));
            hourglass::fsutil::remove_temporaries();
            mpi.abort(2)
        }
    }
}

#[cfg(not(feature = "mpi"))]
fn under_mpi(_: &TrainArgs, _: Sync) -> Result<()> {
    anyhow::bail!(
        "--distributed needs a build with MPI: install Open MPI and libclang (scripts/install-mpi), then cargo build --release --features mpi; --local-ranks N trains the same way in threads"
    )
}
