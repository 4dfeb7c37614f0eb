//! The `hourglass` binary end to end: snapshots of exit code, stdout and stderr on tiny
//! generated data with a fixed seed, and every kind of bad input.

use hourglass::{Matrix, Rng};
use insta_cmd::{assert_cmd_snapshot, get_cargo_bin};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Filters for what varies between runs: timings and throughputs.
const FILTERS: &[(&str, &str)] = &[
    (r"\d+(\.\d+)? s\b", "[T] s"),
    (r"\d+ samples/s", "[N] samples/s"),
    (r"\.tmp-\d+", ".tmp-[PID]"),
    // The SIMD level depends on the CPU.
    (r"kernels [a-z0-9+-]+", "kernels [LEVEL]"),
];

macro_rules! snapshot {
    ($cmd:expr) => {
        insta::with_settings!({ filters => FILTERS.iter().copied() }, { assert_cmd_snapshot!($cmd) })
    };
}

pub(crate) struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    pub(crate) fn new() -> Self {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    pub(crate) fn cmd(&self) -> Command {
        let mut c = Command::new(get_cargo_bin("hourglass"));
        c.current_dir(self.dir.path()).env("NO_COLOR", "1");
        c
    }
    /// 60 rows: 6 features on a 2-dimensional manifold, in [0, 1], plus a label column.
    pub(crate) fn table(&self, name: &str) -> PathBuf {
        let mut rng = Rng::new(17);
        let mut text = String::from("a,b,c,d,e,f,label\n");
        for i in 0..60 {
            let (u, v) = (rng.uniform(), rng.uniform());
            let vals = [u, v, 0.5 * (u + v), u * v, 1.0 - u, 0.25 + 0.5 * v];
            let row: Vec<String> = vals.iter().map(|x| format!("{x:.4}")).collect();
            text.push_str(&format!(
                "{},{}\n",
                row.join(","),
                if i % 2 == 0 { "even" } else { "odd" }
            ));
        }
        self.write(name, &text)
    }
    pub(crate) fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

pub(crate) fn train_small(sb: &Sandbox, extra: &[&str]) -> std::process::Output {
    sb.table("t.csv");
    sb.cmd()
        .args([
            "train",
            "t.csv",
            "--label-column",
            "label",
            "--code",
            "2",
            "--epochs",
            "3",
        ])
        .args(["--seed", "1", "-o", "m.safetensors"])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn train_then_every_command() {
    let sb = Sandbox::new();
    sb.table("t.csv");
    snapshot!(sb.cmd().args([
        "train",
        "t.csv",
        "--label-column",
        "label",
        "--hidden",
        "5",
        "--code",
        "2",
        "--epochs",
        "3",
        "--batch-size",
        "16",
        "--valid-fraction",
        "0.25",
        "--scale",
        "minmax",
        "--seed",
        "1",
        "--log",
        "log.jsonl",
        "-o",
        "m.safetensors",
    ]));
    let log = std::fs::read_to_string(sb.path("log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 3);
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert!(first["valid_loss"].is_number() && first["train_loss"].is_number());

    snapshot!(sb.cmd().args(["inspect", "m.safetensors"]));
    snapshot!(sb.cmd().args([
        "encode",
        "m.safetensors",
        "t.csv",
        "--label-column",
        "label",
        "-o",
        "codes.csv"
    ]));
    let codes = std::fs::read_to_string(sb.path("codes.csv")).unwrap();
    assert!(codes.starts_with("label,code0,code1\neven,"), "{}", &codes[..40]);
    assert_eq!(codes.lines().count(), 61);

    snapshot!(
        sb.cmd()
            .args(["encode", "m.safetensors", "t.csv", "--layer", "0", "-o", "h.npy"])
    );
    snapshot!(sb.cmd().args(["reconstruct", "m.safetensors", "t.csv", "-o", "r.csv"]));
    let header = std::fs::read_to_string(sb.path("r.csv")).unwrap();
    assert!(
        header.starts_with("a,b,c,d,e,f\n"),
        "reconstructions keep the column names"
    );

    sb.cmd()
        .args(["encode", "m.safetensors", "t.csv", "-o", "codes.npy"])
        .output()
        .unwrap();
    snapshot!(sb.cmd().args(["decode", "m.safetensors", "codes.npy", "-o", "d.npy"]));
    // decode(encode(x)) is reconstruct(x).
    let d = hourglass::data::npy::read(&sb.path("d.npy"), false).unwrap().matrix;
    sb.cmd()
        .args(["reconstruct", "m.safetensors", "t.csv", "-o", "r.npy"])
        .output()
        .unwrap();
    let r = hourglass::data::npy::read(&sb.path("r.npy"), false).unwrap().matrix;
    assert_eq!(d, r);

    let out = sb
        .cmd()
        .args(["eval", "m.safetensors", "t.csv", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["n", "mse", "sse_per_sample", "psnr"] {
        assert!(v.get(key).is_some(), "eval --json lacks {key}: {v}");
    }
    assert_eq!(v["n"], 60);
    let (mse, sse) = (v["mse"].as_f64().unwrap(), v["sse_per_sample"].as_f64().unwrap());
    assert!((sse - 6.0 * mse).abs() < 1e-9 * (1.0 + sse));
    assert!((v["psnr"].as_f64().unwrap() - 10.0 * (1.0 / mse).log10()).abs() < 1e-6);
    snapshot!(sb.cmd().args(["eval", "m.safetensors", "t.csv", "--threads", "1"]));
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let mut outs = Vec::new();
    for threads in ["1", "2"] {
        let sb = Sandbox::new();
        let o = train_small(&sb, &["--threads", threads, "--hidden", "40,20", "--batch-size", "70"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        sb.cmd()
            .args(["reconstruct", "m.safetensors", "t.csv", "-o", "r.npy"])
            .output()
            .unwrap();
        outs.push(std::fs::read(sb.path("r.npy")).unwrap());
    }
    assert_eq!(outs[0], outs[1]);
}

/// Runs a failing command and checks: exit code 2, a one-line `error:` naming `place`, no
/// panic, and no file left behind besides those listed in `keep`.
fn fails(sb: &Sandbox, args: &[&str], place: &str, keep: &[&str]) -> String {
    let out = sb.cmd().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.starts_with("error: "), "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: not one line: {err}");
    assert!(err.contains(place), "{args:?}: `{place}` not in {err}");
    assert!(!err.contains("panicked"), "{err}");
    let mut expected: Vec<String> = keep.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(sb.files(), expected, "{args:?} left files behind");
    err
}

#[test]
fn bad_csv_input_is_named_by_line_and_column() {
    let sb = Sandbox::new();
    let train = |f: &str| {
        vec!["train", f, "--code", "2", "-o", "m.safetensors"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let run = |f: &str, text: &str, place: &str| {
        sb.write(f, text);
        let args = train(f);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let e = fails(&sb, &args, place, &[f]);
        std::fs::remove_file(sb.path(f)).unwrap();
        e
    };
    let e = run("ragged.csv", "a,b,c\n1,2,3\n4,5\n", "ragged.csv:3:3");
    assert!(e.contains("expected 3 fields, found 2"), "{e}");
    let e = run("text.csv", "a,b,c\n1,2,3\n4,x,6\n", "text.csv:3:2");
    assert!(e.contains("column `b`: expected a number, found `x`"), "{e}");
    let e = run("nan.csv", "a,b\n1,2\n3,NaN\n", "nan.csv:3:2");
    assert!(e.contains("non-finite"), "{e}");
    run("empty.csv", "", "empty.csv: empty file");
    run("header.csv", "a,b\n", "header.csv: no data rows");
    let e = run("blank.csv", "a,b\n1,\n", "blank.csv:2:2");
    assert!(e.contains("empty field"), "{e}");
}

#[test]
fn bad_cli_input_for_label_column() {
    let sb = Sandbox::new();
    sb.write("cols.csv", "a,b\n1,2\n");
    fails(
        &sb,
        &[
            "train",
            "cols.csv",
            "--code",
            "1",
            "--label-column",
            "zz",
            "-o",
            "m.safetensors",
        ],
        "no column `zz`",
        &["cols.csv"],
    );
}

#[test]
fn bad_binary_input_is_rejected_without_huge_allocations() {
    let sb = Sandbox::new();
    // NPY declaring 10^12 rows of f32 in a tiny file.
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 784), }          \n";
    npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
    npy.extend_from_slice(header.as_bytes());
    npy.extend_from_slice(&[0u8; 64]);
    std::fs::write(sb.path("huge.npy"), &npy).unwrap();
    let e = fails(
        &sb,
        &["train", "huge.npy", "--code", "2", "-o", "m.safetensors"],
        "huge.npy",
        &["huge.npy"],
    );
    assert!(e.contains("declared shape"), "{e}");
    // IDX declaring 2^32-1 images of 2^16 x 2^16.
    let mut idx = vec![0, 0, 8, 3];
    for d in [u32::MAX, 65535, 65535] {
        idx.extend_from_slice(&d.to_be_bytes());
    }
    idx.extend_from_slice(&[0u8; 100]);
    std::fs::write(sb.path("huge-idx3-ubyte"), &idx).unwrap();
    let e = fails(
        &sb,
        &["train", "huge-idx3-ubyte", "--code", "2", "-o", "m.safetensors"],
        "huge-idx3-ubyte",
        &["huge-idx3-ubyte", "huge.npy"],
    );
    // Refused before reading: more than memory holds (f32 values of 2^64 bytes).
    assert!(e.contains("is too large"), "{e}");
    // Truncated gzip IDX.
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mnist-test-1000-images-idx3-ubyte.gz");
    let bytes = std::fs::read(full).unwrap();
    std::fs::write(sb.path("cut.gz"), &bytes[..bytes.len() / 2]).unwrap();
    fails(
        &sb,
        &["train", "cut.gz", "--code", "2", "-o", "m.safetensors"],
        "cut.gz",
        &["cut.gz", "huge-idx3-ubyte", "huge.npy"],
    );
    // NPY with an unsupported dtype.
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    let header = "{'descr': '>f4', 'fortran_order': False, 'shape': (1, 1), }\n";
    npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
    npy.extend_from_slice(header.as_bytes());
    npy.extend_from_slice(&[0u8; 4]);
    std::fs::write(sb.path("be.npy"), &npy).unwrap();
    let e = fails(
        &sb,
        &["train", "be.npy", "--code", "2", "-o", "m.safetensors"],
        "be.npy",
        &["be.npy", "cut.gz", "huge-idx3-ubyte", "huge.npy"],
    );
    assert!(e.contains("unsupported dtype '>f4'"), "{e}");
}

#[test]
fn bad_model_files_and_mismatched_data() {
    let sb = Sandbox::new();
    assert!(train_small(&sb, &[]).status.success());
    let base = ["m.safetensors", "t.csv"];
    // Data of the wrong width.
    sb.write("narrow.csv", "a,b\n1,2\n");
    let keep = ["m.safetensors", "narrow.csv", "t.csv"];
    let e = fails(
        &sb,
        &["encode", "m.safetensors", "narrow.csv", "-o", "c.npy"],
        "narrow.csv",
        &keep,
    );
    assert!(e.contains("has 2 feature columns, the model expects 6"), "{e}");
    std::fs::remove_file(sb.path("narrow.csv")).unwrap();
    // A truncated model file.
    let bytes = std::fs::read(sb.path("m.safetensors")).unwrap();
    std::fs::write(sb.path("cut.safetensors"), &bytes[..bytes.len() - 10]).unwrap();
    let keep = ["cut.safetensors", "m.safetensors", "t.csv"];
    let e = fails(
        &sb,
        &["encode", "cut.safetensors", "t.csv", "-o", "c.npy"],
        "cut.safetensors",
        &keep,
    );
    assert!(e.contains("not an hourglass model file"), "{e}");
    std::fs::remove_file(sb.path("cut.safetensors")).unwrap();
    // A foreign file.
    let e = fails(&sb, &["inspect", "t.csv"], "t.csv: not an hourglass model file", &base);
    assert!(e.contains("safetensors"), "{e}");
    // A newer format version, and a missing tensor: rewrite the header.
    let model = hourglass::format::load(&sb.path("m.safetensors")).unwrap();
    let bytes = hourglass::format::to_bytes(&model).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
    let rewrite = |name: &str, from: &str, to: &str| {
        assert!(header.contains(from), "{from} not in header");
        let h = header.replacen(from, to, 1);
        let mut out = (h.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&bytes[8 + n..]);
        std::fs::write(sb.path(name), out).unwrap();
    };
    let current = format!("\"format_version\":\"{}\"", hourglass::format::FORMAT_VERSION);
    rewrite("v9.safetensors", &current, "\"format_version\":\"9\"");
    let keep = ["m.safetensors", "t.csv", "v9.safetensors"];
    let e = fails(
        &sb,
        &["inspect", "v9.safetensors"],
        "v9.safetensors: model format version 9",
        &keep,
    );
    assert!(e.contains("upgrade hourglass"), "{e}");
    std::fs::remove_file(sb.path("v9.safetensors")).unwrap();
    rewrite("renamed.safetensors", "\"decoder.0.bias\"", "\"decoder.0.bogus\"");
    let keep = ["m.safetensors", "renamed.safetensors", "t.csv"];
    fails(
        &sb,
        &["eval", "renamed.safetensors", "t.csv"],
        "tensor `decoder.0.bias` is missing",
        &keep,
    );
    std::fs::remove_file(sb.path("renamed.safetensors")).unwrap();
    // Unwritable outputs leave nothing behind.
    let e = fails(
        &sb,
        &["encode", "m.safetensors", "t.csv", "-o", "no/such/dir/c.npy"],
        "no/such/dir/c.npy",
        &base,
    );
    assert!(e.contains("does not exist"), "{e}");
    fails(
        &sb,
        &["encode", "m.safetensors", "t.csv", "-o", "c.txt"],
        "c.txt: output must end in .csv, .npy or .parquet",
        &base,
    );
    fails(
        &sb,
        &[
            "train",
            "t.csv",
            "--label-column",
            "label",
            "--code",
            "2",
            "-o",
            "no/dir/m.safetensors",
        ],
        "no/dir/m.safetensors",
        &base,
    );
    // Settings that cannot work.
    fails(
        &sb,
        &[
            "train",
            "t.csv",
            "--label-column",
            "label",
            "--code",
            "2",
            "--loss",
            "bce",
            "--output-activation",
            "tanh",
            "-o",
            "x.safetensors",
        ],
        "loss bce needs a sigmoid output",
        &base,
    );
    fails(
        &sb,
        &[
            "train",
            "t.csv",
            "--label-column",
            "label",
            "--code",
            "2",
            "--patience",
            "3",
            "-o",
            "x.safetensors",
        ],
        "needs validation data",
        &base,
    );
    fails(
        &sb,
        &["encode", "m.safetensors", "t.csv", "--layer", "7", "-o", "c.npy"],
        "invalid --layer 7: the encoder has layers 0..=0",
        &base,
    );
    fails(
        &sb,
        &["--threads", "0", "inspect", "m.safetensors"],
        "invalid --threads 0: must be at least 1",
        &base,
    );
}

#[test]
fn idx_fixture_reads_as_unit_range_images() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mnist-test-1000-images-idx3-ubyte.gz");
    let ds = hourglass::data::load(&p, &Default::default()).unwrap();
    assert_eq!(ds.x.shape(), (1000, 784));
    assert_eq!(ds.image_shape, Some((28, 28, 1)));
    let max = ds.x.as_slice().iter().copied().fold(0.0f32, f32::max);
    assert_eq!(max, 1.0);
    let labels = hourglass::data::idx::read(&p.with_file_name("mnist-test-1000-labels-idx1-ubyte.gz"), true).unwrap();
    assert_eq!(labels.matrix.shape(), (1000, 1));
    assert_eq!(&labels.matrix.as_slice()[..5], &[7.0, 2.0, 1.0, 0.0, 4.0]); // the well-known first digits
    let _ = Matrix::zeros(0, 0);
}

#[test]
fn pca_model_works_with_every_command() {
    let sb = Sandbox::new();
    sb.table("t.csv");
    snapshot!(sb.cmd().args([
        "pca",
        "t.csv",
        "--label-column",
        "label",
        "--components",
        "2",
        "-o",
        "p.safetensors"
    ]));
    let out = sb
        .cmd()
        .args(["eval", "p.safetensors", "t.csv", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The table lies on a 2-D surface with curvature (u*v): 2 components leave little.
    assert!(v["mse"].as_f64().unwrap() < 1e-3, "{v}");
    let info = sb.cmd().args(["inspect", "p.safetensors"]).output().unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("pca              2 of 6 components"), "{text}");
    sb.cmd()
        .args(["encode", "p.safetensors", "t.csv", "-o", "c.npy"])
        .output()
        .unwrap();
    let c = hourglass::data::npy::read(&sb.path("c.npy"), false).unwrap().matrix;
    assert_eq!(c.shape(), (60, 2));
    fails(
        &sb,
        &[
            "pca",
            "t.csv",
            "--label-column",
            "label",
            "--components",
            "9",
            "-o",
            "q.safetensors",
        ],
        "invalid --components 9: must be in 1..=6",
        &["c.npy", "p.safetensors", "t.csv"],
    );
}

#[test]
fn noise_options_are_checked() {
    let sb = Sandbox::new();
    sb.table("t.csv");
    let base = ["t.csv"];
    fails(
        &sb,
        &[
            "train",
            "t.csv",
            "--label-column",
            "label",
            "--code",
            "2",
            "--noise",
            "block:2x2",
            "-o",
            "m.safetensors",
        ],
        "block noise needs the image shape",
        &base,
    );
    fails(
        &sb,
        &[
            "train",
            "t.csv",
            "--label-column",
            "label",
            "--code",
            "2",
            "--noise",
            "block:2x2",
            "--image-shape",
            "4,4",
            "-o",
            "m.safetensors",
        ],
        "image shape 4x4x1 has 16 values, the rows have 6",
        &base,
    );
    let out = sb
        .cmd()
        .args([
            "train",
            "t.csv",
            "--label-column",
            "label",
            "--code",
            "2",
            "--noise",
            "blur:1",
            "-o",
            "m.safetensors",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad noise `blur:1`"));
    let out = sb
        .cmd()
        .args([
            "train",
            "t.csv",
            "--label-column",
            "label",
            "--code",
            "2",
            "--epochs",
            "2",
            "-q",
        ])
        .args([
            "--noise",
            "mask:0.2",
            "--noise",
            "gaussian:0.05",
            "--noise",
            "block:1x2",
            "--image-shape",
            "2,3",
            "-o",
            "m.safetensors",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn pictures_are_deterministic_pngs() {
    let sb = Sandbox::new();
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mnist-test-1000-images-idx3-ubyte.gz");
    let images = images.to_str().unwrap();
    let out = sb
        .cmd()
        .args([
            "train",
            images,
            "--code",
            "16",
            "--epochs",
            "1",
            "--batch-size",
            "100",
            "-q",
            "-o",
            "m.safetensors",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    snapshot!(sb.cmd().args(["filters", "m.safetensors", "-o", "f.png"]));
    snapshot!(sb.cmd().args([
        "show",
        "m.safetensors",
        images,
        "--n",
        "5",
        "--noise",
        "block:8x8",
        "-o",
        "s.png"
    ]));
    let f = std::fs::read(sb.path("f.png")).unwrap();
    assert_eq!(&f[1..4], b"PNG");
    // 16 filters of 28x28 in a 4x4 grid with 1-pixel gaps: 4*28 + 5 = 117 pixels square.
    assert_eq!(u32::from_be_bytes(f[16..20].try_into().unwrap()), 117);
    sb.cmd()
        .args(["filters", "m.safetensors", "-o", "f2.png"])
        .output()
        .unwrap();
    sb.cmd()
        .args([
            "show",
            "m.safetensors",
            images,
            "--n",
            "5",
            "--noise",
            "block:8x8",
            "-o",
            "s2.png",
        ])
        .output()
        .unwrap();
    assert_eq!(f, std::fs::read(sb.path("f2.png")).unwrap());
    assert_eq!(
        std::fs::read(sb.path("s.png")).unwrap(),
        std::fs::read(sb.path("s2.png")).unwrap()
    );
    let keep = ["f.png", "f2.png", "m.safetensors", "s.png", "s2.png"];
    fails(
        &sb,
        &["filters", "m.safetensors", "--image-shape", "5,5", "-o", "x.png"],
        "image shape 5x5x1 does not fit",
        &keep,
    );
}

#[test]
fn hidden_layer_regularizers_from_the_command_line() {
    let sb = Sandbox::new();
    sb.table("t.csv");
    let out = sb
        .cmd()
        .args([
            "train",
            "t.csv",
            "--label-column",
            "label",
            "--hidden",
            "5",
            "--code",
            "2",
            "--epochs",
            "2",
            "-q",
        ])
        .args([
            "--hidden-reg",
            "0:l1=0.01,topk=3,dropout=0.1",
            "--hidden-reg",
            "2:kl=0.1/0.5",
            "-o",
            "m.safetensors",
        ])
        .output()
        .unwrap();
    // Layer 2 (decoder hidden) is relu: KL is refused with the reason.
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("layer 2 (dense): regularizer: KL sparsity needs sigmoid units")
    );
    let out = sb
        .cmd()
        .args([
            "train",
            "t.csv",
            "--label-column",
            "label",
            "--hidden",
            "5",
            "--code",
            "2",
            "--epochs",
            "2",
            "-q",
        ])
        .args([
            "--hidden-reg",
            "0:l1=0.01,topk=3,dropout=0.1",
            "--hidden-reg",
            "2:l1=0.02",
            "-o",
            "m.safetensors",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let info =
        String::from_utf8_lossy(&sb.cmd().args(["inspect", "m.safetensors"]).output().unwrap().stdout).into_owned();
    assert!(
        info.contains("layer 0          l1 0.01, top-k 3 (encode 3), dropout 0.1"),
        "{info}"
    );
    sb.cmd()
        .args(["encode", "m.safetensors", "t.csv", "--layer", "0", "-o", "h.npy"])
        .output()
        .unwrap();
    let h = hourglass::data::npy::read(&sb.path("h.npy"), false).unwrap().matrix;
    for i in 0..h.rows() {
        assert!(h.row(i).iter().filter(|v| **v != 0.0).count() <= 3);
    }
}

/// Rows on a 2-dimensional manifold in 6 features, and `k` off-manifold anomalies among them.
fn anomaly_table(sb: &Sandbox, name: &str, rows: usize, anomalies: usize, seed: u64) -> PathBuf {
    let mut rng = Rng::new(seed);
    let mut text = String::from("a,b,c,d,e,f,is_anomaly\n");
    for i in 0..rows {
        let (u, v) = (rng.uniform(), rng.uniform());
        let mut vals = [u, v, 0.5 * (u + v), u * v, 1.0 - u, 0.25 + 0.5 * v];
        let anomaly = i < anomalies;
        if anomaly {
            // Breaks the relation between the features: c no longer averages a and b.
            vals[2] = (vals[2] + 0.5) % 1.0;
        }
        let row: Vec<String> = vals.iter().map(|x| format!("{x:.4}")).collect();
        text.push_str(&format!("{},{}\n", row.join(","), u8::from(anomaly)));
    }
    sb.write(name, &text)
}

/// Rows on a curve whose middle stretch is left out of the normal rows; the anomalies lie on
/// the curve in that gap, so the model reconstructs them well and only their codes' sparse
/// neighbourhood gives them away.
fn gap_table(sb: &Sandbox, name: &str, rows: usize, anomalies: usize, seed: u64) -> PathBuf {
    let mut rng = Rng::new(seed);
    let mut text = String::from("a,b,c,d,is_anomaly\n");
    for i in 0..rows {
        let anomaly = i < anomalies;
        let u = if anomaly {
            0.45 + 0.1 * rng.uniform()
        } else if rng.uniform() < 0.5 {
            0.3 * rng.uniform()
        } else {
            0.7 + 0.3 * rng.uniform()
        };
        let vals = [u, u * u, 1.0 - u, 0.5 * u + 0.25];
        let row: Vec<String> = vals.iter().map(|x| format!("{x:.4}")).collect();
        text.push_str(&format!("{},{}\n", row.join(","), u8::from(anomaly)));
    }
    sb.write(name, &text)
}

/// ROC-AUC that `score --json` prints for `model` on `data` with `extra` arguments.
fn scored_auc(sb: &Sandbox, model: &str, data: &str, extra: &[&str]) -> f64 {
    let out = sb
        .cmd()
        .args(["score", model, data, "--label-column", "is_anomaly", "--json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["detection"]["roc_auc"].as_f64().unwrap()
}

#[test]
fn code_neighbourhood_scores_catch_what_the_error_misses() {
    let sb = Sandbox::new();
    gap_table(&sb, "normal.csv", 400, 0, 5);
    gap_table(&sb, "mixed.csv", 200, 20, 6);
    let train = |extra: &[&str], out: &str| {
        let o = sb
            .cmd()
            .args([
                "train",
                "normal.csv",
                "--label-column",
                "is_anomaly",
                "--hidden",
                "16",
                "--code",
                "2",
            ])
            .args([
                "--epochs",
                "100",
                "--batch-size",
                "32",
                "--lr",
                "0.01",
                "--seed",
                "1",
                "-q",
                "-o",
                out,
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    train(&["--neighbours", "10"], "m.hg");
    // The default score of a model with a code neighbourhood is its own part's: for a code
    // of half the inputs (2 of 4) mse+knn. It and mse+lof both find the anomalies in the gap
    // that the error alone ranks poorly.
    let both = scored_auc(&sb, "m.hg", "mixed.csv", &[]);
    assert_eq!(both, scored_auc(&sb, "m.hg", "mixed.csv", &["--metric", "mse+knn"]));
    let lof = scored_auc(&sb, "m.hg", "mixed.csv", &["--metric", "mse+lof"]);
    let error = scored_auc(&sb, "m.hg", "mixed.csv", &["--metric", "mse"]);
    assert!(both > 0.99 && both > error + 0.03, "mse+knn {both}, mse {error}");
    assert!(lof > 0.99 && lof > error + 0.03, "mse+lof {lof}, mse {error}");
    // Calibration takes the same metric; per-feature shares are of the error part.
    let out = sb
        .cmd()
        .args([
            "calibrate",
            "m.hg",
            "normal.csv",
            "--label-column",
            "is_anomaly",
            "--fpr",
            "0.05",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("(mse+knn above it"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        both,
        scored_auc(&sb, "m.hg", "mixed.csv", &["--per-feature", "-o", "s.csv"])
    );
    let text = std::fs::read_to_string(sb.path("s.csv")).unwrap();
    for line in text.lines().skip(1) {
        let share: f64 = line.split(',').skip(8).map(|s| s.parse::<f64>().unwrap()).sum();
        assert!((share - 1.0).abs() < 1e-3, "{line}");
    }
    // Without a neighbourhood, asking for mse+lof is a clear error.
    train(&[], "plain.hg");
    let out = sb
        .cmd()
        .args(["score", "plain.hg", "mixed.csv", "--metric", "mse+lof"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no code neighbourhood"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The ONNX graph computes the same score (python/tests/test_onnx.py compares them).
    let out = sb
        .cmd()
        .args(["export", "m.hg", "-o", "m.onnx", "--outputs", "score,anomaly"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(sb.path("m.onnx").exists());
    // Bad k: a clear error before anything is written.
    let out = sb
        .cmd()
        .args([
            "train",
            "normal.csv",
            "--label-column",
            "is_anomaly",
            "--code",
            "2",
            "--epochs",
            "1",
            "--neighbours",
            "0",
            "-q",
            "-o",
            "bad.hg",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("neighbours"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!sb.path("bad.hg").exists());
}

#[test]
fn anomaly_scores_thresholds_and_aucs() {
    let sb = Sandbox::new();
    anomaly_table(&sb, "normal.csv", 400, 0, 3);
    anomaly_table(&sb, "mixed.csv", 100, 10, 4);
    let out = sb
        .cmd()
        .args([
            "train",
            "normal.csv",
            "--label-column",
            "is_anomaly",
            "--hidden",
            "16",
            "--code",
            "2",
        ])
        .args([
            "--epochs",
            "150",
            "--batch-size",
            "32",
            "--lr",
            "0.01",
            "--seed",
            "1",
            "-q",
            "-o",
            "m.safetensors",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Before calibration: scores and AUCs, no flags.
    snapshot!(
        sb.cmd()
            .args(["score", "m.safetensors", "mixed.csv", "--label-column", "is_anomaly"])
    );
    snapshot!(sb.cmd().args([
        "calibrate",
        "m.safetensors",
        "normal.csv",
        "--label-column",
        "is_anomaly",
        "--fpr",
        "0.05"
    ]));
    snapshot!(sb.cmd().args([
        "score",
        "m.safetensors",
        "mixed.csv",
        "--label-column",
        "is_anomaly",
        "--per-feature",
        "-o",
        "s.csv"
    ]));
    let json = sb
        .cmd()
        .args([
            "score",
            "m.safetensors",
            "mixed.csv",
            "--label-column",
            "is_anomaly",
            "--json",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(v["detection"]["roc_auc"].as_f64().unwrap() > 0.95, "{v}");
    // The explanation: header, shares summing to 1, and the broken feature `c` blamed most.
    let text = std::fs::read_to_string(sb.path("s.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(&header[..4], ["is_anomaly", "top_feature", "score", "anomaly"]);
    assert_eq!(header[4], "a.expected");
    assert_eq!(header[10], "a.share");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let blamed_c = rows[..10].iter().filter(|r| r[1] == "c").count();
    assert!(
        blamed_c >= 8,
        "the broken feature is named for {blamed_c} of 10 anomalies"
    );
    for r in &rows {
        let share: f64 = r[10..16].iter().map(|s| s.parse::<f64>().unwrap()).sum();
        assert!((share - 1.0).abs() < 1e-3, "{share}");
    }
    // A labels file gives the same AUC as the label column.
    let labels: String = std::iter::once("is_anomaly\n".to_string())
        .chain(rows.iter().map(|r| format!("{}\n", r[0])))
        .collect();
    sb.write("labels.csv", &labels);
    let from_file = sb
        .cmd()
        .args([
            "score",
            "m.safetensors",
            "mixed.csv",
            "--drop",
            "is_anomaly",
            "--labels",
            "labels.csv",
            "--json",
        ])
        .output()
        .unwrap();
    let w: serde_json::Value = serde_json::from_slice(&from_file.stdout).unwrap();
    assert_eq!(w["detection"]["roc_auc"], v["detection"]["roc_auc"]);
    // Mistakes are named.
    let keep = ["normal.csv", "mixed.csv", "m.safetensors", "s.csv", "labels.csv"];
    fails(
        &sb,
        &[
            "calibrate",
            "m.safetensors",
            "normal.csv",
            "--label-column",
            "is_anomaly",
            "--fpr",
            "1.5",
        ],
        "--fpr 1.5",
        &keep,
    );
    fails(
        &sb,
        &[
            "score",
            "m.safetensors",
            "mixed.csv",
            "--label-column",
            "is_anomaly",
            "--metric",
            "mae",
        ],
        "calibrated for --metric mse",
        &keep,
    );
    sb.write("short.csv", "is_anomaly\n1\n0\n");
    let mut keep2 = keep.to_vec();
    keep2.push("short.csv");
    fails(
        &sb,
        &[
            "score",
            "m.safetensors",
            "mixed.csv",
            "--drop",
            "is_anomaly",
            "--labels",
            "short.csv",
        ],
        "2 labels for 100 rows",
        &keep2,
    );
    fails(
        &sb,
        &["score", "m.safetensors", "normal.csv", "--label-column", "is_anomaly"],
        "AUC needs both classes",
        &keep2,
    );
}

#[test]
fn select_rows_by_label_and_position() {
    let sb = Sandbox::new();
    let x = Matrix::from_vec(6, 2, (0..12).map(|v| v as f32).collect()).unwrap();
    hourglass::data::write(&sb.path("x.npy"), &x, &[], &[]).unwrap();
    sb.write("y.csv", "3\n1\n3\n2\n3\n1\n");
    let out = sb
        .cmd()
        .args([
            "select", "x.npy", "x.npy", "--labels", "y.csv", "--labels", "y.csv", "--label", "3,2",
        ])
        .args(["--rows", "1..4", "-o", "s.csv", "--labels-output", "l.csv"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Rows with label 3 or 2 in x ++ x: 0, 2, 3, 4, 6, 8, 9, 10; then positions 1..4.
    assert_eq!(
        std::fs::read_to_string(sb.path("s.csv")).unwrap(),
        "c0,c1\n4,5\n6,7\n8,9\n"
    );
    assert_eq!(std::fs::read_to_string(sb.path("l.csv")).unwrap(), "label\n3\n2\n3\n");
    fails(
        &sb,
        &[
            "select", "x.npy", "--labels", "y.csv", "--label", "3", "--rows", "0..9", "-o", "o.npy",
        ],
        "only 3 rows",
        &["x.npy", "y.csv", "s.csv", "l.csv"],
    );
}

/// `n` rows of 8 features in 3 well-separated clusters, with the cluster as `label`.
fn clusters(sb: &Sandbox, name: &str, n: usize, seed: u64) -> PathBuf {
    let mut rng = Rng::new(seed);
    let mut text = String::from("x0,x1,x2,x3,x4,x5,x6,x7,label\n");
    for i in 0..n {
        let c = i % 3;
        let vals: Vec<String> = (0..8)
            .map(|j| {
                let centre = if j % 3 == c { 0.8 } else { 0.2 };
                format!("{:.4}", centre + 0.08 * rng.normal())
            })
            .collect();
        text.push_str(&format!("{},{}\n", vals.join(","), ["a", "b", "c"][c]));
    }
    sb.write(name, &text)
}

#[test]
fn probe_on_features_and_on_codes() {
    let sb = Sandbox::new();
    clusters(&sb, "train.csv", 150, 1);
    clusters(&sb, "test.csv", 60, 2);
    snapshot!(sb.cmd().args([
        "probe",
        "train.csv",
        "test.csv",
        "--label-column",
        "label",
        "--l2",
        "0.01"
    ]));
    let out = sb
        .cmd()
        .args([
            "pca",
            "train.csv",
            "--label-column",
            "label",
            "--components",
            "2",
            "-o",
            "p.safetensors",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let json = sb
        .cmd()
        .args([
            "probe",
            "train.csv",
            "test.csv",
            "--label-column",
            "label",
            "--model",
            "p.safetensors",
        ])
        .args(["--json", "-o", "pred.csv"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["features"], 2);
    assert_eq!(v["l2_search"].as_array().unwrap().len(), 4);
    assert!(v["test_accuracy"].as_f64().unwrap() > 0.95, "{v}");
    assert!(v["converged"].as_bool().unwrap());
    let pred = std::fs::read_to_string(sb.path("pred.csv")).unwrap();
    assert!(pred.starts_with("label,predicted,p_a,p_b,p_c\n"), "{pred}");
    assert_eq!(pred.lines().count(), 61);
    let keep = ["train.csv", "test.csv", "p.safetensors", "pred.csv"];
    fails(
        &sb,
        &["probe", "train.csv", "test.csv", "--drop", "label"],
        "no labels",
        &keep,
    );
    fails(
        &sb,
        &[
            "probe",
            "train.csv",
            "test.csv",
            "--label-column",
            "label",
            "--model",
            "p.safetensors",
            "--topk-encode",
            "2",
        ],
        "has no top-k",
        &keep,
    );
}

#[test]
fn hashing_search_and_retrieval() {
    let sb = Sandbox::new();
    clusters(&sb, "train.csv", 150, 1);
    clusters(&sb, "test.csv", 30, 2);
    sb.write(
        "db-labels.csv",
        &std::iter::once("label\n".to_string())
            .chain((0..150).map(|i| format!("{}\n", ["a", "b", "c"][i % 3])))
            .collect::<String>(),
    );
    sb.write(
        "q-labels.csv",
        &std::iter::once("label\n".to_string())
            .chain((0..30).map(|i| format!("{}\n", ["a", "b", "c"][i % 3])))
            .collect::<String>(),
    );
    // A binary code learned with each method, and the ITQ baseline.
    for method in ["noise:2", "ste"] {
        let out = sb
            .cmd()
            .args([
                "train",
                "train.csv",
                "--label-column",
                "label",
                "--hidden",
                "16",
                "--code",
                "8",
            ])
            .args([
                "--code-activation",
                "sigmoid",
                "--binary-code",
                method,
                "--epochs",
                "60",
                "--batch-size",
                "16",
            ])
            .args(["--lr", "0.01", "--seed", "1", "-q", "-o", "b.safetensors"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let codes = sb
            .cmd()
            .args([
                "encode",
                "b.safetensors",
                "test.csv",
                "--label-column",
                "label",
                "-o",
                "codes.csv",
            ])
            .output()
            .unwrap();
        assert!(codes.status.success());
        let text = std::fs::read_to_string(sb.path("codes.csv")).unwrap();
        assert!(
            text.lines()
                .skip(1)
                .all(|l| l.split(',').skip(1).all(|v| v == "0" || v == "1")),
            "{text}"
        );
    }
    let out = sb
        .cmd()
        .args([
            "pca",
            "train.csv",
            "--label-column",
            "label",
            "--components",
            "8",
            "--itq",
            "20",
            "-o",
            "itq.safetensors",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    for m in ["b", "itq"] {
        snapshot!(sb.cmd().args([
            "hash",
            &format!("{m}.safetensors"),
            "train.csv",
            "--label-column",
            "label",
            "-o",
            &format!("{m}-db.hgh")
        ]));
        sb.cmd()
            .args([
                "hash",
                &format!("{m}.safetensors"),
                "test.csv",
                "--label-column",
                "label",
                "-o",
                &format!("{m}-q.hgh"),
            ])
            .output()
            .unwrap();
    }
    snapshot!(sb.cmd().args([
        "eval-retrieval",
        "itq-db.hgh",
        "--labels",
        "db-labels.csv",
        "--query-codes",
        "itq-q.hgh",
        "--query-labels",
        "q-labels.csv",
        "--k",
        "10"
    ]));
    let json = sb
        .cmd()
        .args([
            "eval-retrieval",
            "itq-db.hgh",
            "--labels",
            "db-labels.csv",
            "--queries",
            "30",
            "--json",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(v["map"].as_f64().unwrap() > 0.9, "{v}");
    assert_eq!(v["database"], 120);
    let out = sb
        .cmd()
        .args(["search", "itq-db.hgh", "itq-q.hgh", "-k", "3", "-o", "hits.csv"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let hits = std::fs::read_to_string(sb.path("hits.csv")).unwrap();
    assert!(hits.starts_with("query,rank,item,distance\n"));
    assert_eq!(hits.lines().count(), 1 + 30 * 3);
    let keep = [
        "train.csv",
        "test.csv",
        "db-labels.csv",
        "q-labels.csv",
        "b.safetensors",
        "codes.csv",
        "itq.safetensors",
        "b-db.hgh",
        "b-q.hgh",
        "itq-db.hgh",
        "itq-q.hgh",
        "hits.csv",
    ];
    fails(
        &sb,
        &["search", "itq-db.hgh", "train.csv", "-o", "x.csv"],
        "not a .hgh code file",
        &keep,
    );
    fails(
        &sb,
        &[
            "eval-retrieval",
            "itq-db.hgh",
            "--labels",
            "q-labels.csv",
            "--queries",
            "3",
        ],
        "30 labels for the 150 codes",
        &keep,
    );
    fails(
        &sb,
        &[
            "train",
            "train.csv",
            "--label-column",
            "label",
            "--code",
            "4",
            "--binary-code",
            "ste",
            "-o",
            "z.safetensors",
        ],
        "binary code needs sigmoid",
        &keep,
    );
}

#[test]
fn pretrain_finetune_predict_and_eval() {
    let sb = Sandbox::new();
    clusters(&sb, "train.csv", 150, 1);
    clusters(&sb, "test.csv", 60, 2);
    snapshot!(
        sb.cmd()
            .args([
                "pretrain",
                "train.csv",
                "--drop",
                "label",
                "--hidden",
                "6,4",
                "--noise",
                "mask:0.2"
            ])
            .args([
                "--epochs",
                "20",
                "--batch-size",
                "16",
                "--lr",
                "0.01",
                "--seed",
                "1",
                "-o",
                "sda.safetensors"
            ])
    );
    let out = sb.cmd().args(["inspect", "sda.safetensors"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("autoencoder 8-6-4-6-8"), "{text}");
    for (extra, name) in [(&[][..], "c.safetensors"), (&["--from-scratch"][..], "s.safetensors")] {
        let out = sb
            .cmd()
            .args([
                "finetune",
                "sda.safetensors",
                "train.csv",
                "--label-column",
                "label",
                "--epochs",
                "30",
            ])
            .args([
                "--batch-size",
                "16",
                "--lr",
                "0.01",
                "--freeze-epochs",
                "2",
                "--seed",
                "1",
                "-q",
                "-o",
                name,
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    snapshot!(
        sb.cmd()
            .args(["eval", "c.safetensors", "test.csv", "--label-column", "label"])
    );
    let out = sb
        .cmd()
        .args([
            "predict",
            "c.safetensors",
            "test.csv",
            "--label-column",
            "label",
            "-o",
            "p.csv",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let p = std::fs::read_to_string(sb.path("p.csv")).unwrap();
    assert!(p.starts_with("label,predicted,p_a,p_b,p_c\n"), "{p}");
    let right = p
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split(',').collect();
            f[0] == f[1]
        })
        .count();
    assert!(right >= 57, "{right} of 60");
    let keep = [
        "train.csv",
        "test.csv",
        "sda.safetensors",
        "c.safetensors",
        "s.safetensors",
        "p.csv",
    ];
    fails(
        &sb,
        &[
            "predict",
            "sda.safetensors",
            "test.csv",
            "--drop",
            "label",
            "-o",
            "q.csv",
        ],
        "an autoencoder, not a classifier",
        &keep,
    );
    fails(
        &sb,
        &["encode", "c.safetensors", "test.csv", "--drop", "label", "-o", "q.csv"],
        "a classifier, not an autoencoder",
        &keep,
    );
    fails(
        &sb,
        &[
            "finetune",
            "sda.safetensors",
            "train.csv",
            "--label-column",
            "label",
            "--classes",
            "2",
            "-o",
            "q.safetensors",
        ],
        "label `a` is not one of the classes 0, 1",
        &keep,
    );
    fails(
        &sb,
        &[
            "finetune",
            "sda.safetensors",
            "train.csv",
            "--drop",
            "label",
            "-o",
            "q.safetensors",
        ],
        "no labels",
        &keep,
    );
}

#[test]
fn tabular_categories_missing_values_and_constant_columns() {
    let sb = Sandbox::new();
    let mut rng = Rng::new(5);
    let mut text = String::from("amount,channel,region,version\n");
    for i in 0..300 {
        let channel = ["web", "store", "phone"][i % 3];
        let base = [0.2, 0.5, 0.8][i % 3];
        let amount = if i % 17 == 0 {
            "NA".to_string()
        } else {
            format!("{:.3}", base + 0.05 * rng.normal())
        };
        text.push_str(&format!("{amount},{channel},{},7\n", ["north", "south"][i % 2]));
    }
    sb.write("train.csv", &text);
    sb.write(
        "new.csv",
        "amount,channel,region,version\n0.21,web,north,7\n0.5,fax,south,7\n,store,north,7\n0.9,web,south,7\n",
    );
    snapshot!(
        sb.cmd()
            .args([
                "train",
                "train.csv",
                "--categorical",
                "auto",
                "--impute",
                "mean",
                "--hidden",
                "8"
            ])
            .args([
                "--code",
                "3",
                "--epochs",
                "40",
                "--batch-size",
                "16",
                "--lr",
                "0.01",
                "--seed",
                "1",
                "-q",
                "-o",
                "m.safetensors"
            ])
    );
    let out = sb
        .cmd()
        .args(["score", "m.safetensors", "new.csv", "--per-feature", "-o", "s.csv"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = std::fs::read_to_string(sb.path("s.csv")).unwrap();
    let header: Vec<&str> = s.lines().next().unwrap().split(',').collect();
    assert_eq!(header[0], "top_feature");
    assert!(
        header.contains(&"amount.missing.share") && header.contains(&"channel=<other>.expected"),
        "{header:?}"
    );
    assert!(
        !header.iter().any(|h| h.starts_with("version")),
        "the constant column is dropped: {header:?}"
    );
    let rows: Vec<Vec<&str>> = s.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let score = |r: &Vec<&str>| r[1].parse::<f64>().unwrap();
    // The unseen channel and the web amount far from its usual value stand out; their culprits
    // are named.
    assert_eq!(rows[1][0], "channel=<other>");
    assert!(score(&rows[1]) > 3.0 * score(&rows[0]), "{s}");
    assert!(score(&rows[3]) > 3.0 * score(&rows[0]), "{s}");
    // A missing amount is filled and flagged, not an error.
    assert!(score(&rows[2]).is_finite());
    sb.write("bad.csv", "amount,channel,region,version\nabc,web,north,7\n");
    fails(
        &sb,
        &["score", "m.safetensors", "bad.csv"],
        "bad.csv:2:1",
        &["train.csv", "new.csv", "m.safetensors", "s.csv", "bad.csv"],
    );
    sb.write("nocol.csv", "amount,region\n1,north\n");
    fails(
        &sb,
        &["score", "m.safetensors", "nocol.csv"],
        "no column `channel`",
        &["train.csv", "new.csv", "m.safetensors", "s.csv", "bad.csv", "nocol.csv"],
    );
}

#[test]
fn itq_on_an_autoencoders_codes_is_one_model() {
    let sb = Sandbox::new();
    clusters(&sb, "train.csv", 150, 1);
    let out = sb
        .cmd()
        .args([
            "train",
            "train.csv",
            "--label-column",
            "label",
            "--code",
            "12",
            "--code-activation",
            "relu",
        ])
        .args([
            "--noise",
            "mask:0.3",
            "--epochs",
            "30",
            "--batch-size",
            "16",
            "--seed",
            "1",
            "-q",
            "-o",
            "dn.safetensors",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = sb
        .cmd()
        .args([
            "pca",
            "train.csv",
            "--label-column",
            "label",
            "--on",
            "dn.safetensors",
            "--components",
            "4",
        ])
        .args(["--itq", "20", "-o", "s.safetensors"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let inspect = sb.cmd().args(["inspect", "s.safetensors"]).output().unwrap();
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(text.starts_with("autoencoder 8-12-4-12-8"), "{text}");
    // The stacked model hashes raw rows; its codes equal ITQ applied to the AE's codes.
    let out = sb
        .cmd()
        .args([
            "encode",
            "dn.safetensors",
            "train.csv",
            "--drop",
            "label",
            "-o",
            "codes.npy",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = sb
        .cmd()
        .args([
            "pca",
            "codes.npy",
            "--components",
            "4",
            "--itq",
            "20",
            "-o",
            "i.safetensors",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    for (m, data, extra) in [
        ("s", "train.csv", &["--label-column", "label"][..]),
        ("i", "codes.npy", &[][..]),
    ] {
        let out = sb
            .cmd()
            .args(["hash", &format!("{m}.safetensors"), data])
            .args(extra)
            .args(["-o", &format!("{m}.hgh")])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(
        std::fs::read(sb.path("s.hgh")).unwrap(),
        std::fs::read(sb.path("i.hgh")).unwrap()
    );
}

#[test]
fn encode_keeps_columns_for_downstream_models() {
    let sb = Sandbox::new();
    let out = train_small(&sb, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = sb
        .cmd()
        .args([
            "encode",
            "m.safetensors",
            "t.csv",
            "--keep-columns",
            "label,a",
            "-o",
            "codes.csv",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(sb.path("codes.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap(), "label,a,code0,code1");
    assert!(lines.next().unwrap().starts_with("even,"));
    fails(
        &sb,
        &[
            "encode",
            "m.safetensors",
            "t.csv",
            "--keep-columns",
            "nope",
            "-o",
            "c2.csv",
        ],
        "no column `nope`",
        &["t.csv", "m.safetensors", "codes.csv"],
    );
}

/// `n` binary 8x8 gray PNGs in folder `name`: a bright 3x3 square at a position that varies,
/// and (with `invert`) the same pictures inverted.
pub(crate) fn square_images(sb: &Sandbox, name: &str, n: usize, invert: bool) -> PathBuf {
    let dir = sb.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..n {
        let (x0, y0) = ((i % 5) as u32, ((i / 5) % 5) as u32);
        let img = image::GrayImage::from_fn(8, 8, |x, y| {
            let on = (x0..x0 + 3).contains(&x) && (y0..y0 + 3).contains(&y);
            image::Luma([if on != invert { 255 } else { 0 }])
        });
        img.save(dir.join(format!("img{i:02}.png"))).unwrap();
    }
    dir
}

pub(crate) const SMALL_CONV: &str = r#"
activation = "relu"
loss = "bce"

[[encoder]]
type = "conv"
filters = 4
kernel = 3
stride = 2
padding = 1

[[encoder]]
type = "flatten"

[[encoder]]
type = "dense"
name = "code"
units = 6

[[decoder]]
type = "dense"
units = 64

[[decoder]]
type = "reshape"
shape = [4, 4, 4]

[[decoder]]
type = "conv_transpose"
name = "image"
filters = 1
kernel = 3
stride = 2
padding = 1
output_padding = 1
"#;

#[test]
fn conv_autoencoders_images_denoise_inpaint_and_targets() {
    let sb = Sandbox::new();
    square_images(&sb, "imgs", 24, false);
    square_images(&sb, "inv", 24, true);
    sb.write("arch.toml", SMALL_CONV);
    let train = |extra: &[&str], out: &str| {
        let o = sb
            .cmd()
            .args([
                "train",
                "imgs",
                "--arch",
                "arch.toml",
                "--epochs",
                "30",
                "--batch-size",
                "8",
            ])
            .args(["--lr", "0.01", "--seed", "1", "-q", "-o", out])
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    train(&[], "conv.safetensors");
    snapshot!(sb.cmd().args(["inspect", "conv.safetensors"]));

    // denoise: a folder of PNGs named as the inputs, one per image.
    let o = sb
        .cmd()
        .args(["denoise", "conv.safetensors", "imgs", "-o", "clean"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let clean = std::fs::read_dir(sb.path("clean")).unwrap().count();
    assert_eq!(clean, 24);
    assert!(sb.path("clean/img07.png").exists());

    // inpaint keeps every known pixel and fills the rectangle from the reconstruction.
    let o = sb
        .cmd()
        .args([
            "inpaint",
            "conv.safetensors",
            "imgs",
            "--rect",
            "2,2,3,3",
            "--json",
            "-o",
            "filled.npy",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m["values"], 24 * 9);
    let input = hourglass::data::load(&sb.path("imgs"), &Default::default()).unwrap().x;
    let filled = hourglass::data::load(&sb.path("filled.npy"), &Default::default())
        .unwrap()
        .x;
    let mut changed = 0;
    for r in 0..24 {
        for p in 0..64 {
            let inside = (2..5).contains(&(p / 8)) && (2..5).contains(&(p % 8));
            if !inside {
                assert_eq!(filled.row(r)[p], input.row(r)[p], "row {r} pixel {p} was known");
            } else if filled.row(r)[p] != input.row(r)[p] {
                changed += 1;
            }
        }
    }
    assert!(changed > 0, "the region comes from the model");

    // Paired targets: learn to invert the pictures; eval reports IoU against the targets,
    // and the paired model beats the plain autoencoder on them.
    train(&["--target", "inv"], "invert.safetensors");
    let iou = |model: &str| -> f64 {
        let o = sb
            .cmd()
            .args(["eval", model, "imgs", "--target", "inv", "--json"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["iou"].as_f64().unwrap()
    };
    let (paired, plain) = (iou("invert.safetensors"), iou("conv.safetensors"));
    assert!(paired > 0.9 && paired > plain + 0.5, "paired {paired} plain {plain}");
}

#[test]
fn architecture_and_image_mistakes_are_named() {
    let sb = Sandbox::new();
    square_images(&sb, "imgs", 4, false);
    let mut keep = vec!["imgs"];
    let bad = |name: &str, text: String| {
        sb.write(name, &text);
        name.to_string()
    };
    let cases = [
        (
            bad("t1.toml", SMALL_CONV.replace("units = 64", "units = 63")),
            "layer decoder[1] (reshape): cannot reshape 63 (63 values) to 4x4x4 (64 values)",
        ),
        (
            bad(
                "t2.toml",
                SMALL_CONV.replace("output_padding = 1", "output_padding = 0"),
            ),
            "the decoder's output is 1x7x7 (49 values) but the input is 1x8x8 (64 values)",
        ),
        (
            bad("t3.toml", SMALL_CONV.replace("filters = 4", "filters = [4]")),
            "t3.toml",
        ),
        (
            bad("t4.toml", SMALL_CONV.replace("type = \"flatten\"", "type = \"flat\"")),
            "unknown variant `flat`",
        ),
    ];
    let names: Vec<String> = cases.iter().map(|c| c.0.clone()).collect();
    keep.extend(names.iter().map(String::as_str));
    for (file, want) in &cases {
        let err = fails(
            &sb,
            &["train", "imgs", "--arch", file, "-o", "m.safetensors"],
            want,
            &keep,
        );
        assert!(err.contains(file.as_str()), "{err}");
    }
    // Targets that do not pair with the inputs.
    square_images(&sb, "few", 3, true);
    keep.push("few");
    fails(
        &sb,
        &["train", "imgs", "--code", "2", "--target", "few", "-o", "m.safetensors"],
        "training targets: expected 4 rows (as the inputs) x 64 columns (the model's output), got 3 rows x 64 columns",
        &keep,
    );
    // A folder whose images differ in size: named, with the way out.
    image::GrayImage::new(9, 8).save(sb.path("imgs/odd.png")).unwrap();
    fails(
        &sb,
        &["train", "imgs", "--code", "2", "-o", "m.safetensors"],
        "odd.png: 9x8 pixels (width x height), but",
        &keep,
    );
    let o = sb
        .cmd()
        .args([
            "train",
            "imgs",
            "--code",
            "2",
            "--epochs",
            "1",
            "--image-shape",
            "8,8",
            "-o",
            "m.safetensors",
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("note: resized 1 of 5 images"));
}

#[test]
fn paired_targets_of_another_width_rgb_images_to_gray_masks() {
    let sb = Sandbox::new();
    // RGB pictures: a red 3x3 square on a blue background; the targets: its gray mask.
    std::fs::create_dir_all(sb.path("rgb")).unwrap();
    for i in 0..24u32 {
        let (x0, y0) = (i % 5, (i / 5) % 5);
        let img = image::RgbImage::from_fn(8, 8, |x, y| {
            let on = (x0..x0 + 3).contains(&x) && (y0..y0 + 3).contains(&y);
            image::Rgb(if on { [255, 0, 0] } else { [0, 0, 255] })
        });
        img.save(sb.path(&format!("rgb/img{i:02}.png"))).unwrap();
    }
    square_images(&sb, "masks", 24, false);
    // The architecture file's decoder ends in one channel; the output shape comes from the
    // targets.
    sb.write("arch.toml", SMALL_CONV);
    let train = |extra: &[&str], out: &str| {
        let o = sb
            .cmd()
            .args([
                "train",
                "rgb",
                "--target",
                "masks",
                "--epochs",
                "150",
                "--batch-size",
                "8",
            ])
            .args(["--lr", "0.01", "--seed", "1", "-q", "-o", out])
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    train(&["--arch", "arch.toml"], "conv.safetensors");
    train(&["--hidden", "16", "--code", "4", "--loss", "bce"], "mlp.safetensors");
    for model in ["conv.safetensors", "mlp.safetensors"] {
        let o = sb
            .cmd()
            .args(["eval", model, "rgb", "--target", "masks", "--json"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let iou = v["iou"].as_f64().unwrap();
        assert!(iou > 0.8, "{model}: IoU {iou}");
        // 192 values in, 64 out: nothing to compare with the input.
        let present = sb.files();
        let keep: Vec<&str> = present.iter().map(String::as_str).collect();
        let err = fails(
            &sb,
            &["eval", model, "rgb"],
            "maps 192 input values to 64 output values",
            &keep,
        );
        assert!(err.contains("--target"), "{err}");
    }
    let o = sb
        .cmd()
        .args(["reconstruct", "conv.safetensors", "rgb", "-o", "masks.npy"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let m = hourglass::data::load(&sb.path("masks.npy"), &Default::default()).unwrap();
    assert_eq!(m.x.shape(), (24, 64));
}

#[test]
fn high_cardinality_categories_are_hashed() {
    let sb = Sandbox::new();
    let mut rng = Rng::new(6);
    let mut text = String::from("amount,customer,channel\n");
    for i in 0..200 {
        let channel = ["web", "store", "phone"][i % 3];
        text.push_str(&format!("{:.3},c{},{channel}\n", 0.5 + 0.1 * rng.normal(), i % 80));
    }
    sb.write("train.csv", &text);
    sb.write(
        "new.csv",
        "amount,customer,channel\n0.5,c3,web\n0.4,never-seen,store\n0.6,,phone\n",
    );
    let out = sb
        .cmd()
        .args(["train", "train.csv", "--categorical", "auto", "--max-categories", "10"])
        .args([
            "--hash-buckets",
            "16",
            "--code",
            "2",
            "--epochs",
            "3",
            "-q",
            "-o",
            "m.safetensors",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("column `customer`: 80 categories, hashed into 16 features `customer#0`..`customer#15`"),
        "{err}"
    );
    let out = sb.cmd().args(["inspect", "m.safetensors"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("3 columns -> 21 features; categorical: customer (hashed, 16), channel (3)"),
        "{text}"
    );
    // Seen, unseen and missing customers all encode.
    let out = sb
        .cmd()
        .args(["encode", "m.safetensors", "new.csv", "-o", "codes.csv"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(sb.path("codes.csv")).unwrap().lines().count(),
        4
    );
    fails(
        &sb,
        &[
            "train",
            "train.csv",
            "--hash-buckets",
            "8",
            "--code",
            "2",
            "-o",
            "x.safetensors",
        ],
        "invalid --hash-buckets 8: hashing applies to categorical columns",
        &["train.csv", "new.csv", "m.safetensors", "codes.csv"],
    );
}

/// Noise is applied in the network's units in `eval` and `show` as in `train`: with
/// `--scale standard` on features of standard deviation 10, `gaussian:0.5` adds noise of
/// standard deviation 5 in the data's units (before the fix, `eval` added 0.5 to the raw rows).
#[test]
fn eval_noise_is_in_the_networks_units() {
    let sb = Sandbox::new();
    let mut rng = Rng::new(3);
    let mut text = String::from("a,b,c,d\n");
    for _ in 0..400 {
        let u = rng.normal();
        let row = [10.0 * u, 10.0 * rng.normal(), -10.0 * u, 10.0 * rng.normal()];
        text.push_str(&row.map(|v| format!("{v:.4}")).join(","));
        text.push('\n');
    }
    sb.write("wide.csv", &text);
    let o = sb
        .cmd()
        .args([
            "train", "wide.csv", "--code", "2", "--scale", "standard", "--epochs", "2",
        ])
        .args(["--output-activation", "identity", "-q", "-o", "m.safetensors"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = sb
        .cmd()
        .args(["eval", "m.safetensors", "wide.csv", "--noise", "gaussian:0.5", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let noisy = v["noisy_mse"].as_f64().unwrap();
    // (0.5 * 10)^2 = 25, up to the sample's standard deviations.
    assert!((noisy - 25.0).abs() < 3.0, "noisy-input MSE {noisy}, expected about 25");
}

/// Every command's help, so that a flag cannot change or vanish unnoticed.
#[test]
fn help_texts() {
    let commands = [
        "",
        "train",
        "encode",
        "decode",
        "reconstruct",
        "eval",
        "inspect",
        "pca",
        "filters",
        "show",
        "score",
        "calibrate",
        "select",
        "probe",
        "hash",
        "search",
        "eval-retrieval",
        "pretrain",
        "finetune",
        "predict",
        "denoise",
        "inpaint",
    ];
    for c in commands {
        let mut cmd = Command::new(get_cargo_bin("hourglass"));
        cmd.env("NO_COLOR", "1");
        if !c.is_empty() {
            cmd.arg(c);
        }
        let o = cmd.arg("--help").output().unwrap();
        assert!(o.status.success());
        let name = if c.is_empty() {
            "help".to_string()
        } else {
            format!("help_{c}")
        };
        insta::assert_snapshot!(name, String::from_utf8(o.stdout).unwrap());
    }
}

/// A closed stdout (`hourglass score … | head -1`) ends the command quietly.
#[test]
fn a_closed_pipe_ends_quietly() {
    let sb = Sandbox::new();
    assert!(train_small(&sb, &[]).status.success());
    let mut child = sb
        .cmd()
        .args(["inspect", "m.safetensors", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end before the command writes.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `export` writes an ONNX file that reads back with the model's outputs, refuses outputs the
/// model does not have without writing anything, and `report` writes one page with nothing
/// outside it. (onnxruntime's agreement is checked from Python: python/tests/test_onnx.py.)
#[test]
fn export_and_report_write_their_files() {
    use prost::Message;
    let sb = Sandbox::new();
    assert!(train_small(&sb, &[]).status.success());
    let out = sb
        .cmd()
        .args(["export", "m.safetensors", "-o", "m.onnx"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("outputs: code, reconstruction, score"), "{stdout}");
    let bytes = std::fs::read(sb.path("m.onnx")).unwrap();
    let m = hourglass::onnx::proto::ModelProto::decode(bytes.as_slice()).unwrap();
    let g = m.graph.unwrap();
    let outputs: Vec<&str> = g.output.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(outputs, ["code", "reconstruction", "score"]);
    let before = sb.files();
    let keep: Vec<&str> = before.iter().map(String::as_str).collect();
    let msg = fails(
        &sb,
        &["export", "m.safetensors", "-o", "bad.onnx", "--outputs", "anomaly"],
        "--outputs",
        &keep,
    );
    assert!(msg.contains("calibrate"), "{msg}");

    let out = sb
        .cmd()
        .args([
            "report",
            "m.safetensors",
            "t.csv",
            "--label-column",
            "label",
            "--anomaly-labels",
            "odd",
            "-o",
            "r.html",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(sb.path("r.html")).unwrap();
    for s in [
        "Model card",
        "Loss per epoch",
        "Reconstruction error per row",
        "ROC curve (AUC",
        "What carries the error",
    ] {
        assert!(html.contains(s), "no {s}");
    }
    assert!(!html.contains("http") && !html.contains("<script"));
}

/// Parquet in, Parquet out: a table of every numeric kind trains and scores as the same values
/// written as CSV do; only the chosen columns are decoded (a timestamp column beside them is
/// never read), and the refusals name the column. Scores, codes and reconstructions stream in
/// chunks to Parquet, NPY and CSV.
#[test]
fn parquet_tables_in_and_out() {
    let sb = Sandbox::new();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/types.parquet");
    std::fs::copy(&fixture, sb.path("t.parquet")).unwrap();
    // The fixture's numbers (tests/data/make-parquet.py) as CSV.
    sb.write(
        "t.csv",
        "y,i8,u32,i64,b,dec\n0.5,-128,0,-1099511627776,1,1.25\n1.5,0,1,0,0,-3.5\n\
         2.5,1,4000000000,5,1,0.01\n3.5,2,7,6,1,100\n4.5,127,8,1099511627776,0,7.77\n",
    );
    let run = |args: &[&str]| {
        let o = sb.cmd().args(args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let cols = "y,i8,u32,i64,b,dec";
    let train = [
        "--hidden", "4", "--code", "2", "--epochs", "3", "--seed", "1", "--scale", "standard", "-q",
    ];
    run(&[
        &["train", "t.parquet", "--columns", cols, "-o", "p.safetensors"][..],
        &train,
    ]
    .concat());
    run(&[&["train", "t.csv", "-o", "c.safetensors"][..], &train].concat());
    let p = run(&["score", "p.safetensors", "t.parquet", "--json"]);
    let c = run(&["score", "c.safetensors", "t.csv", "--json"]);
    assert_eq!(p, c, "the same model and scores from Parquet as from CSV");
    // The model knows its columns by name: scoring needs no --columns, in any format.
    run(&["calibrate", "p.safetensors", "t.parquet", "--contamination", "0.2"]);
    run(&["score", "p.safetensors", "t.parquet", "-o", "s.parquet"]);
    run(&["score", "p.safetensors", "t.csv", "-o", "s.csv"]);
    run(&["encode", "p.safetensors", "t.parquet", "-o", "codes.npy"]);
    run(&["reconstruct", "p.safetensors", "t.parquet", "-o", "r.parquet"]);
    let s = hourglass::data::load(&sb.path("s.parquet"), &Default::default()).unwrap();
    let s_csv = hourglass::data::load(&sb.path("s.csv"), &Default::default()).unwrap();
    assert_eq!(s.names, vec!["score", "anomaly"]);
    assert_eq!(s.x.as_slice(), s_csv.x.as_slice());
    assert_eq!(
        s.x.as_slice().chunks(2).filter(|r| r[1] == 1.0).count(),
        1,
        "one row of five flagged"
    );
    let codes = hourglass::data::load(&sb.path("codes.npy"), &Default::default()).unwrap();
    assert_eq!(codes.x.shape(), (5, 2));
    let r = hourglass::data::load(&sb.path("r.parquet"), &Default::default()).unwrap();
    assert_eq!(r.names, cols.split(',').collect::<Vec<_>>());
    // A table model: text categories and a null, imputed.
    run(&[
        "train",
        "t.parquet",
        "--columns",
        "x,y,s",
        "--categorical",
        "s",
        "--impute",
        "median",
        "--code",
        "2",
        "--epochs",
        "2",
        "-q",
        "-o",
        "tab.safetensors",
    ]);
    run(&[
        "score",
        "tab.safetensors",
        "t.parquet",
        "--per-feature",
        "-o",
        "e.parquet",
    ]);
    // Trained without holding the rows: a model that scores the same file.
    let out = run(&[
        &[
            "train",
            "t.parquet",
            "--columns",
            cols,
            "--stream",
            "-o",
            "st.safetensors",
        ][..],
        &train,
    ]
    .concat());
    assert!(out.contains("on 5 rows streamed (0 held out)"), "{out}");
    run(&["score", "st.safetensors", "t.parquet", "-o", "st.csv"]);
    // Refusals name the column and write nothing.
    let before = sb.files();
    let keep: Vec<&str> = before.iter().map(String::as_str).collect();
    fails(
        &sb,
        &["train", "t.parquet", "--code", "2", "-o", "x.safetensors"],
        "column `ts`",
        &keep,
    );
    let e = fails(
        &sb,
        &[
            "train",
            "t.parquet",
            "--columns",
            "y,s",
            "--code",
            "1",
            "-o",
            "x.safetensors",
        ],
        "column `s`",
        &keep,
    );
    assert!(e.contains("--categorical"), "{e}");
    fails(
        &sb,
        &[
            "train",
            "t.parquet",
            "--columns",
            "y,x",
            "--code",
            "1",
            "-o",
            "x.safetensors",
        ],
        "row 2, column `x`",
        &keep,
    );
    std::fs::write(sb.path("bad.parquet"), b"PAR1 not really").unwrap();
    let before = sb.files();
    let keep: Vec<&str> = before.iter().map(String::as_str).collect();
    fails(
        &sb,
        &["score", "p.safetensors", "bad.parquet", "-o", "x.csv"],
        "bad.parquet",
        &keep,
    );
}

/// `eval` streams its rows: on a table of two chunks (70,000 rows of 4 values) its figures are
/// those of the whole table in memory (the squared errors summed in the same order).
#[test]
fn eval_streams_in_chunks_with_the_whole_tables_figures() {
    let sb = Sandbox::new();
    let mut rng = Rng::new(3);
    let mut text = String::from("a,b,c,d\n");
    for _ in 0..70_000 {
        let (u, v) = (rng.uniform(), rng.uniform());
        text.push_str(&format!("{u:.4},{v:.4},{:.4},{:.4}\n", u * v, 0.5 * (u + v)));
    }
    let path = sb.write("big.csv", &text);
    let small: String = text.lines().take(301).map(|l| format!("{l}\n")).collect();
    sb.write("small.csv", &small);
    let o = sb
        .cmd()
        .args(["train", "small.csv", "--code", "2", "--epochs", "2", "-q", "-o", "m.hg"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = sb.cmd().args(["eval", "m.hg", "big.csv", "--json"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let file = hourglass::format::load(&sb.path("m.hg")).unwrap();
    let x = hourglass::data::load(&path, &Default::default()).unwrap().x;
    assert!(x.rows() > hourglass::stream::chunk_rows(4), "more than one chunk");
    let want = hourglass::metrics::reconstruction(&x, &file.model.reconstruct(&x).unwrap());
    let codes = hourglass::metrics::code(&file.model.encode(&x).unwrap(), file.model.config().code_activation());
    assert_eq!(got["n"], 70_000);
    assert_eq!(got["mse"].as_f64().unwrap(), want.mse);
    assert_eq!(got["l0"].as_f64().unwrap(), codes.l0);
    let bce = got["bce"].as_f64().unwrap();
    assert!(
        (bce - want.bce.unwrap()).abs() < 1e-12 * bce.abs(),
        "{bce} {:?}",
        want.bce
    );
}

/// `train --stream` with the table encoding fits the encoding in-memory training fits
/// (categories, missing values imputed by the median, a constant column dropped), from CSV and
/// from Parquet, and its model scores the file.
#[test]
fn streamed_training_fits_the_in_memory_table_encoding() {
    let sb = Sandbox::new();
    let mut rng = Rng::new(8);
    let mut text = String::from("x,colour,size,k\n");
    for i in 0..500 {
        let colour = ["red", "green", "blue", "NA", ""][rng.below(5)];
        let size = if i % 7 == 3 {
            String::new()
        } else {
            format!("{:.2}", rng.uniform() * 10.0 - 3.0)
        };
        text.push_str(&format!("{:.3},{colour},{size},1\n", rng.uniform()));
    }
    sb.write("t.csv", &text);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/types.parquet");
    std::fs::copy(&fixture, sb.path("t.parquet")).unwrap();
    let run = |args: &[&str]| {
        let o = sb.cmd().args(args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let common = [
        "--categorical",
        "auto",
        "--impute",
        "median",
        "--code",
        "2",
        "--epochs",
        "2",
        "-q",
    ];
    for (data, extra) in [("t.csv", &[][..]), ("t.parquet", &["--columns", "x,y,s"][..])] {
        run(&[&["train", data, "-o", "mem.hg"][..], extra, &common].concat());
        let notes = run(&[&["train", data, "--stream", "-o", "st.hg"][..], extra, &common].concat());
        let mem = hourglass::format::load(&sb.path("mem.hg")).unwrap();
        let st = hourglass::format::load(&sb.path("st.hg")).unwrap();
        assert!(st.tabular.is_some(), "{data}");
        assert_eq!(st.tabular, mem.tabular, "{data}: the same encoding");
        assert_eq!(st.provenance.feature_names, mem.provenance.feature_names);
        if data == "t.csv" {
            assert!(notes.contains("column `k` is constant"), "{notes}");
        }
        run(&["score", "st.hg", data, "-o", "s.csv"]);
    }
    fails(
        &sb,
        &[
            "train",
            "t.csv",
            "--stream",
            "--hash-buckets",
            "4",
            "--code",
            "2",
            "-o",
            "x.hg",
        ],
        "hashing applies to categorical columns",
        &["mem.hg", "s.csv", "st.hg", "t.csv", "t.parquet"],
    );
}

/// Asking for bf16 at the machine's own level: where a bf16 unit exists (AMX tiles, or
/// AVX512-BF16 vectors) it runs, with no note, and the report names the unit; elsewhere the
/// note and f32. Either way the record says what this machine really ran.
#[test]
fn bf16_runs_on_whichever_unit_the_cpu_has_and_says_which() {
    let sb = Sandbox::new();
    sb.table("t.csv");
    let o = sb
        .cmd()
        .args(["train", "t.csv", "--drop", "label", "--code", "2", "--epochs", "1"])
        .args(["--precision", "bf16", "-q", "-o", "m.hg"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let ran = hourglass::Precision::Bf16;
    let unit = ran.bf16_unit();
    assert_eq!(err.contains("f32 GEMMs run instead"), unit.is_none(), "{err}");
    let report = hourglass::format::load(&sb.path("m.hg"))
        .unwrap()
        .provenance
        .report
        .unwrap();
    assert_eq!(report.precision, Some(ran.effective()));
    let kernels = report.kernels.unwrap();
    match unit {
        Some(u) => assert!(kernels.ends_with(&format!(" + {}", u.name())), "{kernels}"),
        // No bf16 unit named (the level's own name may hold a `+`, as `avx2+fma` does).
        None => assert_eq!(kernels, hourglass::kernels::level().name(), "{kernels}"),
    }
}

/// Asking for bf16 where it cannot run (here: the SIMD level lowered to AVX2, on any CPU) says
/// so once, trains in f32, and the model file and the log record what ran.
#[test]
fn an_unavailable_precision_is_named_and_recorded() {
    let sb = Sandbox::new();
    sb.table("t.csv");
    let o = sb
        .cmd()
        .env("HOURGLASS_SIMD", "avx2")
        .args([
            "train",
            "t.csv",
            "--drop",
            "label",
            "--code",
            "2",
            "--epochs",
            "1",
            "--precision",
            "bf16",
        ])
        .args(["-q", "--log", "log.jsonl", "-o", "m.hg"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(
        err.matches("precision bf16 was asked for, f32 GEMMs run instead")
            .count(),
        1,
        "{err}"
    );
    let file = hourglass::format::load(&sb.path("m.hg")).unwrap();
    let report = file.provenance.report.unwrap();
    assert_eq!(report.precision, Some(hourglass::Precision::F32));
    assert_eq!(report.kernels.as_deref(), Some("avx2+fma"));
    let log = std::fs::read_to_string(sb.path("log.jsonl")).unwrap();
    assert!(log.contains(r#""precision":"f32","kernels":"avx2+fma""#), "{log}");
    let o = sb.cmd().args(["inspect", "m.hg"]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("ran in           f32 (bf16 asked for), kernels avx2+fma"),
        "{out}"
    );
}

#[test]
fn variational_autoencoder_end_to_end() {
    let sb = Sandbox::new();
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mnist-test-1000-images-idx3-ubyte.gz");
    let images = images.to_str().unwrap();
    let train = |extra: &[&str], out: &str| {
        let mut args = vec![
            "train",
            images,
            "--hidden",
            "64",
            "--code",
            "4",
            "--activation",
            "tanh",
            "--loss",
            "bce",
            "--vae",
            "--binarize",
            "--batch-size",
            "100",
            "-q",
            "-o",
            out,
        ];
        args.extend_from_slice(extra);
        sb.cmd().args(&args).output().unwrap()
    };
    let out = train(&["--epochs", "1"], "one.safetensors");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = train(&["--epochs", "6", "--kl-warmup", "2"], "m.safetensors");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let eval = |model: &str| {
        let out = sb
            .cmd()
            .args(["eval", model, images, "--json", "--samples", "20"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let (early, late) = (eval("one.safetensors"), eval("m.safetensors"));
    let f = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or_else(|| panic!("{k} in {v}"));
    assert!(f(&late, "elbo") > f(&early, "elbo"), "{early} -> {late}");
    assert!(f(&late, "log_likelihood") >= f(&late, "elbo"), "{late}");
    assert!(f(&late, "kl") > 0.0);
    assert_eq!(f(&late, "samples"), 20.0);
    assert!((f(&late, "elbo") + f(&late, "reconstruction_nll") + f(&late, "kl")).abs() < 1e-6);
    // The same seed, the same figures.
    assert_eq!(eval("m.safetensors"), late);
    let inspect = sb.cmd().args(["inspect", "m.safetensors"]).output().unwrap();
    assert!(String::from_utf8_lossy(&inspect.stdout).contains("gaussian"));
    // The IWAE objective: stored with the code, listed by inspect; it learns, and a capacity
    // target (a KL term it does not have) is refused with exit code 2.
    let out = train(&["--epochs", "3", "--iwae", "5"], "iwae.safetensors");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let inspect = sb.cmd().args(["inspect", "iwae.safetensors"]).output().unwrap();
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(text.contains("trained on the IWAE bound, 5 samples"), "{text}");
    let iwae = eval("iwae.safetensors");
    assert!(
        f(&iwae, "log_likelihood") > f(&early, "log_likelihood"),
        "{early} -> {iwae}"
    );
    let out = train(
        &["--epochs", "1", "--iwae", "5", "--kl-capacity", "2"],
        "bad.safetensors",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("capacity"));
    assert!(!sb.path("bad.safetensors").exists());
    // Samples from the prior and a traversal: deterministic grids of 28x28 tiles.
    for (args, side) in [
        (vec!["-n", "9"], 3 * 56 + 4),
        (vec!["--traverse", "-n", "4"], 9 * 56 + 10),
    ] {
        let run = |png: &str| {
            let mut a = vec!["sample", "m.safetensors", "-o", png];
            a.extend_from_slice(&args);
            let out = sb.cmd().args(&a).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            std::fs::read(sb.path(png)).unwrap()
        };
        let (a, b) = (run("a.png"), run("b.png"));
        assert_eq!(&a[1..4], b"PNG");
        assert_eq!(u32::from_be_bytes(a[16..20].try_into().unwrap()), side);
        assert_eq!(a, b);
    }
    let out = sb
        .cmd()
        .args(["sample", "m.safetensors", "--traverse", "--data", images, "-o", "c.png"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Samples as data: rows of the model's width.
    let out = sb
        .cmd()
        .args(["sample", "m.safetensors", "-n", "5", "-o", "s.csv"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(sb.path("s.csv")).unwrap();
    assert_eq!(text.lines().count(), 6);
    assert_eq!(text.lines().nth(1).unwrap().split(',').count(), 784);
    // A table's VAE samples rows under the table's column names.
    sb.table("t.csv");
    let out = sb
        .cmd()
        .args([
            "train",
            "t.csv",
            "--label-column",
            "label",
            "--hidden",
            "8",
            "--code",
            "2",
            "--vae",
        ])
        .args(["--epochs", "2", "-q", "-o", "table.safetensors"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = sb
        .cmd()
        .args(["sample", "table.safetensors", "-n", "3", "-o", "rows.csv"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = std::fs::read_to_string(sb.path("rows.csv")).unwrap();
    assert_eq!(rows.lines().next().unwrap(), "a,b,c,d,e,f");
    assert_eq!(rows.lines().count(), 4);
    // Encoding writes the mean: the code is 4 wide.
    let out = sb
        .cmd()
        .args(["encode", "m.safetensors", images, "-o", "codes.csv"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let codes = std::fs::read_to_string(sb.path("codes.csv")).unwrap();
    assert_eq!(codes.lines().nth(1).unwrap().split(',').count(), 4);
    let out = sb
        .cmd()
        .args(["export", "m.safetensors", "-o", "m.onnx"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    sb.cmd()
        .args([
            "train",
            images,
            "--code",
            "4",
            "-q",
            "--epochs",
            "1",
            "-o",
            "plain.safetensors",
        ])
        .output()
        .unwrap();
    // Likelihood scores: one per row, finite, the same for a row alone; a model calibrated on
    // them scores and flags, and its export is refused by name (an ONNX graph draws no codes).
    let out = sb
        .cmd()
        .args(["score", "m.safetensors", images, "--metric", "nll", "-o", "nll.csv"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let nll = std::fs::read_to_string(sb.path("nll.csv")).unwrap();
    let first: Vec<f64> = nll
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(first.len(), 1000);
    assert!(first.iter().all(|v| v.is_finite() && *v > 0.0));
    let out = sb
        .cmd()
        .args([
            "calibrate",
            "m.safetensors",
            images,
            "--metric",
            "nll",
            "--contamination",
            "0.05",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let keep: Vec<String> = sb.files();
    let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
    fails(
        &sb,
        &["export", "m.safetensors", "-o", "x.onnx"],
        "an ONNX graph cannot compute",
        &keep,
    );
    fails(
        &sb,
        &["score", "m.safetensors", images, "--per-feature", "-o", "x.csv"],
        "per-feature shares need an error",
        &keep,
    );
    // The convolutional example: trains, evaluates and exports.
    let arch = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/conv-vae.toml");
    let out = sb
        .cmd()
        .args([
            "train",
            images,
            "--arch",
            arch.to_str().unwrap(),
            "--binarize",
            "--epochs",
            "1",
            "-q",
        ])
        .args(["-o", "conv.safetensors"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let conv = eval("conv.safetensors");
    assert!(f(&conv, "log_likelihood").is_finite() && f(&conv, "kl") > 0.0, "{conv}");
    let out = sb
        .cmd()
        .args(["export", "conv.safetensors", "-o", "conv.onnx"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let keep: Vec<String> = sb.files();
    let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
    fails(
        &sb,
        &["sample", "plain.safetensors", "-o", "x.png"],
        "train with --vae",
        &keep,
    );
    fails(
        &sb,
        &[
            "train",
            images,
            "--code",
            "4",
            "--vae",
            "--code-reg",
            "l1=0.1",
            "-o",
            "x.safetensors",
        ],
        "a Gaussian (variational) code takes none",
        &keep,
    );
    fails(
        &sb,
        &[
            "train",
            images,
            "--code",
            "4",
            "--vae",
            "--tied",
            "--hidden",
            "8",
            "-o",
            "x.safetensors",
        ],
        "tied weights",
        &keep,
    );
}

/// Activation matrices in safetensors files: a tensor picked by name trains a (k-sparse)
/// dictionary, and every command reads the file the same way; mistakes name the tensors.
#[test]
fn activations_from_a_safetensors_file() {
    use hourglass::tensorfile::{TensorData, write_typed};
    let sb = Sandbox::new();
    let mut rng = Rng::new(9);
    let acts: Vec<f32> = (0..200 * 16).map(|_| rng.normal()).collect();
    let other = [0.0f32; 3];
    let bytes = write_typed(
        Default::default(),
        &mut [
            ("blocks.2.mlp".into(), vec![200, 16], TensorData::F32(&acts)),
            ("tokens".into(), vec![3], TensorData::F32(&other)),
        ],
    )
    .unwrap();
    std::fs::write(sb.path("acts.safetensors"), bytes).unwrap();
    let out = sb
        .cmd()
        .args([
            "train",
            "acts.safetensors",
            "--columns",
            "blocks.2.mlp",
            "--code",
            "64",
            "--topk",
            "4",
        ])
        .args([
            "--output-activation",
            "identity",
            "--unit-norm-decoder",
            "--epochs",
            "2",
            "-q",
            "-o",
            "sae.hg",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = sb
        .cmd()
        .args([
            "eval",
            "sae.hg",
            "acts.safetensors",
            "--columns",
            "blocks.2.mlp",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["n"], 200);
    assert!(v["fvu"].as_f64().unwrap() > 0.0);
    assert!(v["l0"].as_f64().unwrap() <= 4.0 + 1e-9);
    let keep = ["acts.safetensors", "sae.hg"];
    fails(
        &sb,
        &["train", "acts.safetensors", "--code", "4", "-o", "x.hg"],
        "2 tensors (blocks.2.mlp, tokens): name one with --columns NAME",
        &keep,
    );
    fails(
        &sb,
        &[
            "train",
            "acts.safetensors",
            "--columns",
            "blocks.3",
            "--code",
            "4",
            "-o",
            "x.hg",
        ],
        "no tensor `blocks.3`",
        &keep,
    );
}

/// A BatchTopK dictionary with the AuxK loss, from the command line: the threshold is stored
/// and shown, eval reports the firing histogram, `top-rows` ranks rows per unit (printed,
/// JSON, CSV), and mistakes are named.
#[test]
fn a_batch_topk_dictionary_with_auxk() {
    use hourglass::tensorfile::{TensorData, write_typed};
    let sb = Sandbox::new();
    let mut rng = Rng::new(4);
    let acts: Vec<f32> = (0..300 * 12).map(|_| rng.normal()).collect();
    let bytes = write_typed(
        Default::default(),
        &mut [("resid".into(), vec![300, 12], TensorData::F32(&acts))],
    )
    .unwrap();
    std::fs::write(sb.path("acts.safetensors"), bytes).unwrap();
    let run = |args: &[&str]| {
        let out = sb.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    run(&[
        "train",
        "acts.safetensors",
        "--code",
        "48",
        "--code-activation",
        "relu",
        "--output-activation",
        "identity",
        "--code-reg",
        "batchtopk=3,auxk=6",
        "--unit-norm-decoder",
        "--tied-init",
        "--pre-bias",
        "--epochs",
        "3",
        "-q",
        "-o",
        "sae.hg",
    ]);
    let inspect = run(&["inspect", "sae.hg"]);
    assert!(inspect.contains("batch top-k 3 (encode: values >= "), "{inspect}");
    assert!(inspect.contains("auxk 6 (alpha 0.03125"), "{inspect}");
    assert!(
        inspect.contains("dictionary       unit-norm atoms, tied init, pre-encoder bias"),
        "{inspect}"
    );
    assert!(inspect.contains("most active      units "), "{inspect}");
    let v: serde_json::Value = serde_json::from_str(&run(&["eval", "sae.hg", "acts.safetensors", "--json"])).unwrap();
    let hist = v["firing_histogram"].as_array().unwrap();
    let units: u64 = hist.iter().map(|b| b["units"].as_u64().unwrap()).sum();
    assert_eq!(units, 48);
    let l0 = v["l0"].as_f64().unwrap();
    assert!(l0 > 1.0 && l0 < 6.0, "BatchTopK keeps about k per row: {l0}");
    let top: serde_json::Value = serde_json::from_str(&run(&[
        "top-rows",
        "sae.hg",
        "acts.safetensors",
        "--units",
        "0,7",
        "-n",
        "4",
        "--json",
    ]))
    .unwrap();
    let units = top["units"].as_array().unwrap();
    assert_eq!(
        (units[0]["unit"].as_u64(), units[1]["unit"].as_u64()),
        (Some(0), Some(7))
    );
    for u in units {
        let vals: Vec<f64> = u["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["activation"].as_f64().unwrap())
            .collect();
        assert_eq!(vals.len(), 4);
        assert!(vals.windows(2).all(|w| w[0] >= w[1]), "{vals:?}");
        assert!(
            u["rows"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["row"].as_u64().unwrap() < 300)
        );
    }
    run(&[
        "top-rows",
        "sae.hg",
        "acts.safetensors",
        "--units",
        "3",
        "-o",
        "top.csv",
    ]);
    let csv = std::fs::read_to_string(sb.path("top.csv")).unwrap();
    assert_eq!(csv.lines().count(), 11);
    assert!(csv.starts_with("unit,rank,row,activation\n3,1,"), "{csv}");
    let keep = ["acts.safetensors", "sae.hg", "top.csv"];
    fails(
        &sb,
        &["top-rows", "sae.hg", "acts.safetensors", "--units", "48"],
        "the code has units 0 ..= 47",
        &keep,
    );
    fails(
        &sb,
        &[
            "train",
            "acts.safetensors",
            "--code",
            "8",
            "--hidden",
            "6",
            "--code-reg",
            "topk=2,auxk=2",
            "-o",
            "x.hg",
        ],
        "right below the output layer",
        &keep,
    );
}

/// `--precision int8` on the inference commands: close to f32 (scores, codes, AUC), says what
/// runs in int8 and on which unit, gives the same bytes at every SIMD level (the integer
/// products are exact), and refuses an unknown precision with exit 2.
#[test]
fn int8_inference_is_close_to_f32_exact_across_levels_and_says_so() {
    let sb = Sandbox::new();
    anomaly_table(&sb, "normal.csv", 400, 0, 3);
    anomaly_table(&sb, "mixed.csv", 200, 20, 4);
    let out = sb
        .cmd()
        .args([
            "train",
            "normal.csv",
            "--label-column",
            "is_anomaly",
            "--hidden",
            "16",
            "--code",
            "3",
        ])
        .args([
            "--epochs",
            "60",
            "--batch-size",
            "32",
            "--lr",
            "0.01",
            "--seed",
            "1",
            "-q",
            "-o",
            "m.hg",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let score = |precision: &str| {
        let o = sb
            .cmd()
            .args(["score", "m.hg", "mixed.csv", "--label-column", "is_anomaly", "--json"])
            .args(["--precision", precision])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (v, String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let (f, f_err) = score("f32");
    let (q, q_err) = score("int8");
    assert!(!f_err.contains("int8"), "{f_err}");
    let unit = hourglass::kernels::int8::Unit::here().name();
    assert!(
        q_err.contains("inference in int8: 4 of 4 layers") && q_err.contains(unit),
        "{q_err}"
    );
    let (ms_f, ms_q) = (f["mean_score"].as_f64().unwrap(), q["mean_score"].as_f64().unwrap());
    assert!((ms_q / ms_f - 1.0).abs() < 0.05, "mean score {ms_q} vs {ms_f}");
    let (auc_f, auc_q) = (
        f["detection"]["roc_auc"].as_f64().unwrap(),
        q["detection"]["roc_auc"].as_f64().unwrap(),
    );
    assert!(
        auc_f > 0.9 && (auc_q - auc_f).abs() < 0.02,
        "ROC-AUC {auc_q} vs {auc_f}"
    );
    // Codes: within a few quantization steps of f32; the same bytes at every level.
    let encode = |precision: &str, out: &str, simd: Option<&str>| {
        let mut c = sb.cmd();
        if let Some(s) = simd {
            c.env("HOURGLASS_SIMD", s);
        }
        let o = c
            .args(["encode", "m.hg", "mixed.csv", "--label-column", "is_anomaly", "-o", out])
            .args(["--precision", precision])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read_to_string(sb.path(out)).unwrap()
    };
    let values = |text: &str| -> Vec<f64> {
        text.lines()
            .skip(1)
            .flat_map(|l| l.split(',').filter_map(|v| v.parse::<f64>().ok()).collect::<Vec<_>>())
            .collect()
    };
    let (cf, cq) = (
        values(&encode("f32", "f.csv", None)),
        values(&encode("int8", "q.csv", None)),
    );
    assert_eq!(cf.len(), cq.len());
    let scale = cf.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let worst = cf.iter().zip(&cq).fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        worst > 0.0 && worst < 0.05 * scale,
        "largest code difference {worst} (codes up to {scale})"
    );
    let native = encode("int8", "q.csv", None);
    for level in ["avx2", "portable"] {
        assert_eq!(
            encode("int8", "q_level.csv", Some(level)),
            native,
            "int8 codes at {level}"
        );
    }
    let o = sb
        .cmd()
        .args(["encode", "m.hg", "mixed.csv", "-o", "x.csv", "--precision", "bf16"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("expected f32 or int8"));
    assert!(!sb.path("x.csv").exists());
}
