//! Data-parallel training from the command line: `--local-ranks N` (ranks in threads) in
//! every build, and `mpirun -np 2 … --distributed` in a build with the `mpi` feature (its
//! tests run where Open MPI is installed: `cargo test --features mpi --test it parallel`).

use crate::cli::Sandbox;
use std::path::{Path, PathBuf};

/// 401 rows of 8 values on a 2-dimensional manifold, with a header.
fn data(sb: &Sandbox) -> PathBuf {
    let mut rng = hourglass::Rng::new(5);
    let mut text = String::from("a,b,c,d,e,f,g,h\n");
    for _ in 0..401 {
        let (u, v) = (rng.uniform(), rng.uniform());
        let vals = [u, v, u * v, 1.0 - u, 0.5 * (u + v), v * v, u - v, 0.3 * u * u];
        let row: Vec<String> = vals.iter().map(|x| format!("{x:.5}")).collect();
        text.push_str(&row.join(","));
        text.push('\n');
    }
    sb.write("d.csv", &text)
}

const TRAIN: &[&str] = &[
    "--hidden",
    "12",
    "--code",
    "3",
    "--epochs",
    "4",
    "--batch-size",
    "50",
    "--scale",
    "standard",
    "--valid-fraction",
    "0.2",
    "--noise",
    "gaussian:0.05",
    "--seed",
    "3",
    "--quiet",
];

fn weights(path: &Path) -> Vec<u32> {
    let file = hourglass::format::load(path).unwrap();
    file.model
        .layers()
        .iter()
        .flat_map(|l| {
            let (w, b) = l.params();
            w.iter().chain(b).map(|v| v.to_bits()).collect::<Vec<_>>()
        })
        .collect()
}

fn train(sb: &Sandbox, out: &str, extra: &[&str]) -> std::process::Output {
    let out = sb
        .cmd()
        .args(["train", "d.csv", "-o", out])
        .args(TRAIN)
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// One rank is plain training; two ranks give one model, the same on every run, recorded as
/// such in the model file; averaging runs too; the refusals are clear.
#[test]
fn local_ranks_train_one_reproducible_model() {
    let sb = Sandbox::new();
    data(&sb);
    train(&sb, "plain.hg", &[]);
    train(&sb, "one.hg", &["--local-ranks", "1"]);
    assert_eq!(weights(&sb.path("one.hg")), weights(&sb.path("plain.hg")));
    let out = train(&sb, "two.hg", &["--local-ranks", "2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("on 2 ranks (401 rows, 80 held out)"), "{text}");
    train(&sb, "two-again.hg", &["--local-ranks", "2", "--threads", "1"]);
    assert_eq!(
        std::fs::read(sb.path("two.hg")).unwrap(),
        std::fs::read(sb.path("two-again.hg")).unwrap()
    );
    assert_ne!(weights(&sb.path("two.hg")), weights(&sb.path("plain.hg")));
    let file = hourglass::format::load(&sb.path("two.hg")).unwrap();
    let p = file.provenance.parallel.expect("parallel provenance");
    assert_eq!((p.ranks, p.sync), (2, hourglass::dist::Sync::Gradients));
    assert_eq!(file.provenance.data_shape, Some((401, 8)));
    assert_eq!(file.provenance.feature_names.unwrap()[7], "h");
    train(&sb, "avg.hg", &["--local-ranks", "3", "--average-every", "2"]);
    let p = hourglass::format::load(&sb.path("avg.hg"))
        .unwrap()
        .provenance
        .parallel
        .unwrap();
    assert_eq!(p.sync, hourglass::dist::Sync::Average { every: 2 });

    let refuse = |args: &[&str], says: &str| {
        let out = sb
            .cmd()
            .args(["train", "d.csv", "-o", "bad.hg"])
            .args(TRAIN)
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{err}");
        assert!(!sb.path("bad.hg").exists());
    };
    refuse(&["--average-every", "2"], "applies to data-parallel training");
    refuse(&["--local-ranks", "500"], "401 rows cannot feed 500 ranks");
    #[cfg(not(feature = "mpi"))]
    refuse(&["--distributed"], "needs a build with MPI");

    // A table with categories and missing values: every rank encodes its shard with the
    // encoding in-memory training fits.
    let mut text = String::from("x,colour,size\n");
    let mut rng = hourglass::Rng::new(2);
    for i in 0..300 {
        let colour = ["red", "green", "blue", "NA"][rng.below(4)];
        let size = if i % 5 == 0 {
            String::new()
        } else {
            format!("{:.2}", rng.uniform())
        };
        text.push_str(&format!("{:.3},{colour},{size}\n", rng.uniform()));
    }
    sb.write("t.csv", &text);
    let table = |out: &str, extra: &[&str]| {
        let o = sb
            .cmd()
            .args(["train", "t.csv", "-o", out, "--code", "2", "--epochs", "2", "-q"])
            .args(["--categorical", "auto", "--impute", "median"])
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        hourglass::format::load(&sb.path(out)).unwrap().tabular
    };
    let mem = table("t-mem.hg", &[]);
    assert!(mem.is_some());
    assert_eq!(table("t-ranks.hg", &["--local-ranks", "2"]), mem);
}

#[cfg(feature = "mpi")]
mod mpi {
    use super::*;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    fn mpirun(sb: &Sandbox, out: &str, extra: &[&str]) -> Command {
        let mut c = Command::new("mpirun");
        c.current_dir(sb.path(""))
            .args(["--allow-run-as-root", "--oversubscribe", "-np", "2"])
            .arg(insta_cmd::get_cargo_bin("hourglass"))
            .args(["train", "d.csv", "-o", out, "--distributed", "--threads", "1"])
            .args(extra);
        c
    }

    fn run(sb: &Sandbox, out: &str, extra: &[&str]) {
        let o = mpirun(sb, out, TRAIN).args(extra).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }

    /// Two ranks under MPI give the model two ranks in threads give, byte for byte, run
    /// after run, for both ways of keeping one model.
    #[test]
    fn mpirun_equals_ranks_in_threads() {
        let sb = Sandbox::new();
        data(&sb);
        run(&sb, "mpi.hg", &[]);
        run(&sb, "mpi-again.hg", &[]);
        train(&sb, "threads.hg", &["--local-ranks", "2"]);
        let bytes = |n: &str| std::fs::read(sb.path(n)).unwrap();
        assert_eq!(bytes("mpi.hg"), bytes("threads.hg"));
        assert_eq!(bytes("mpi.hg"), bytes("mpi-again.hg"));
        run(&sb, "mpi-avg.hg", &["--average-every", "3"]);
        train(&sb, "threads-avg.hg", &["--local-ranks", "2", "--average-every", "3"]);
        assert_eq!(bytes("mpi-avg.hg"), bytes("threads-avg.hg"));
    }

    /// Whether process `pid` is a descendant of `ancestor` (its parent chain, from /proc).
    fn descends(mut pid: u32, ancestor: u32) -> bool {
        for _ in 0..64 {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // The parent pid is the second field after the command name in parentheses.
            let Some(ppid) = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok())
            else {
                return false;
            };
            if ppid == ancestor {
                return true;
            }
            if ppid <= 1 {
                return false;
            }
            pid = ppid;
        }
        false
    }

    /// The rank (a process under `mpirun`) with this rank number.
    fn rank_pid(parent: u32, rank: u32) -> Option<u32> {
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let ours = env
                .split(|&b| b == 0)
                .any(|v| v == format!("OMPI_COMM_WORLD_RANK={rank}").as_bytes());
            // Only a descendant of this test's mpirun: the other MPI tests run at the same
            // time, and their rank 1 has the same environment and command line.
            if ours && pid != parent && String::from_utf8_lossy(&cmd).contains("--distributed") && descends(pid, parent)
            {
                return Some(pid);
            }
        }
        None
    }

    /// A rank killed mid-training: the job ends with an error within a minute instead of
    /// hanging, and no model (or temporary file) is left.
    #[test]
    fn a_dead_rank_stops_the_job() {
        let sb = Sandbox::new();
        let mut text = String::new();
        let mut rng = hourglass::Rng::new(1);
        for _ in 0..20_000 {
            let row: Vec<String> = (0..16).map(|_| format!("{:.3}", rng.uniform())).collect();
            text.push_str(&row.join(","));
            text.push('\n');
        }
        sb.write("d.csv", &text);
        // The job's messages go to a file outside the folder (a pipe nobody reads could fill).
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = mpirun(&sb, "dead.hg", &["--code", "4", "--epochs", "100000"])
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        let pid = loop {
            if let Some(p) = rank_pid(child.id(), 1) {
                break p;
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "rank 1 never started");
            std::thread::sleep(Duration::from_millis(100));
        };
        // Let training start, then kill rank 1 outright.
        std::thread::sleep(Duration::from_secs(3));
        let killed = Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
        assert!(killed.success());
        let t1 = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if t1.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("the job hung after rank 1 died");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let err = std::fs::read_to_string(log.path()).unwrap();
        assert!(!status.success());
        assert!(err.contains("rank 1") && err.contains("signal 9"), "{err}");
        let left: Vec<_> = std::fs::read_dir(sb.path(""))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("d.csv")], "left behind: {left:?}");
    }

    /// A rank that fails (here on a value every rank reads past) ends the whole job at once
    /// with its message and no model.
    #[test]
    fn a_failing_rank_stops_the_job_with_its_message() {
        let sb = Sandbox::new();
        let path = data(&sb);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        lines[2] = format!("inf{}", &lines[2][lines[2].find(',').unwrap()..]);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let t0 = Instant::now();
        let o = mpirun(&sb, "bad.hg", TRAIN).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{err}");
        assert!(t0.elapsed() < Duration::from_secs(60));
        assert!(
            err.contains(" of 2: d.csv:3:1: column `a`: non-finite value `inf`"),
            "{err}"
        );
        assert!(!sb.path("bad.hg").exists());
    }
}
