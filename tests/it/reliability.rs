//! The promises of RELIABILITY.md, end to end through the binary: every defect that hostile
//! testing found (issue 15) stays fixed, and an interrupted run resumes to the same bytes.

use crate::cli::{SMALL_CONV, Sandbox, square_images, train_small};
use hourglass::Rng;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and expects exit code 2 with one error (one line, or clap's usage block for an
/// argument it refuses) containing every one of `needles`.
#[track_caller]
fn refused(c: &mut Command, needles: &[&str]) -> String {
    let o = c.output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "expected exit 2, stderr: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.matches("error").count(), 1, "one error: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "`{n}` not in: {err}");
    }
    err
}

#[track_caller]
fn ok(c: &mut Command) -> Output {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

/// Rewrites the JSON metadata of a model or checkpoint file, keeping its tensors.
fn tamper(path: &Path, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    edit(header["__metadata__"].as_object_mut().unwrap());
    let mut text = serde_json::to_string(&header).unwrap();
    text.push_str(&" ".repeat((8 - text.len() % 8) % 8));
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&bytes[8 + n..]);
    std::fs::write(path, out).unwrap();
}

/// Edits one JSON-valued metadata entry (`model`, `provenance`, `scaler`, `tabular`).
fn tamper_json(path: &Path, key: &str, edit: impl FnOnce(&mut Value)) {
    tamper(path, |meta| {
        let mut v: Value = serde_json::from_str(meta[key].as_str().unwrap()).unwrap();
        edit(&mut v);
        meta.insert(key.into(), Value::String(v.to_string()));
    });
}

/// `rows` rows of 16 features in [0, 1] on a 3-dimensional manifold, as CSV with a header.
fn manifold(sb: &Sandbox, name: &str, rows: usize) -> PathBuf {
    let mut rng = Rng::new(5);
    let mut text: String = (0..16).map(|j| format!("f{j}")).collect::<Vec<_>>().join(",");
    text.push('\n');
    for _ in 0..rows {
        let (a, b, c) = (rng.uniform(), rng.uniform(), rng.uniform());
        let row: Vec<String> = (0..16)
            .map(|j| {
                let t = j as f32 / 15.0;
                format!("{:.4}", (a * t + b * (1.0 - t) + c * t * (1.0 - t)) / 1.5)
            })
            .collect();
        text.push_str(&row.join(","));
        text.push('\n');
    }
    sb.write(name, &text)
}

#[test]
fn absurd_widths_are_errors_not_aborts() {
    let sb = Sandbox::new();
    assert!(train_small(&sb, &[]).status.success());
    refused(
        sb.cmd()
            .args(["train", "t.csv", "--label-column", "label", "--hidden", "10000000000"])
            .args(["--code", "2", "-o", "big.safetensors"]),
        &["too large"],
    );
    // An architecture file of 1e12 units.
    sb.write(
        "big.toml",
        "[[encoder]]\ntype = \"dense\"\nunits = 1000000000000\n[[decoder]]\ntype = \"dense\"\nunits = 6\n",
    );
    refused(
        sb.cmd()
            .args(["train", "t.csv", "--label-column", "label", "--arch", "big.toml"])
            .args(["-o", "big.safetensors"]),
        &["too large"],
    );
    // Hashed categories into 2^32 - 1 buckets.
    refused(
        sb.cmd()
            .args(["train", "t.csv", "--categorical", "label", "--max-categories", "1"])
            .args(["--hash-buckets", "4294967295", "--code", "2", "-o", "big.safetensors"]),
        &["too large"],
    );
    // A model file whose metadata declares 1e12 hidden units, or 100000 (more than the file
    // holds): refused before anything of that size is made.
    for units in [1_000_000_000_000u64, 100_000] {
        let tampered = sb.path("tampered.safetensors");
        std::fs::copy(sb.path("m.safetensors"), &tampered).unwrap();
        tamper_json(&tampered, "model", |m| m["arch"]["encoder"][0]["units"] = units.into());
        let err = refused(
            sb.cmd().args([
                "encode",
                "tampered.safetensors",
                "t.csv",
                "--label-column",
                "label",
                "-o",
                "c.csv",
            ]),
            &["tampered.safetensors"],
        );
        assert!(err.contains("too large") || err.contains("tensor"), "{err}");
    }
    assert!(!sb.files().contains(&"big.safetensors".to_string()));
}

#[test]
fn image_shapes_that_overflow_are_refused() {
    let sb = Sandbox::new();
    square_images(&sb, "imgs", 4, false);
    ok(sb
        .cmd()
        .args(["train", "imgs", "--code", "4", "--epochs", "1", "-o", "m.safetensors"]));
    // 12297829382473034672 * 3 wraps to 784 in 64 bits.
    refused(
        sb.cmd()
            .args([
                "show",
                "m.safetensors",
                "imgs",
                "--image-shape",
                "12297829382473034672,3",
            ])
            .args(["-o", "s.png"]),
        &["image-shape"],
    );
    refused(
        sb.cmd()
            .args(["train", "imgs", "--image-shape", "100000,100000"])
            .args(["--code", "4", "-o", "x.safetensors"]),
        &["too large"],
    );
    // An architecture file of 1e12 filters.
    sb.write(
        "filters.toml",
        "[[encoder]]\ntype = \"conv\"\nfilters = 1000000000000\nkernel = 3\n[[encoder]]\ntype = \"flatten\"\n\
         [[decoder]]\ntype = \"dense\"\nunits = 64\n",
    );
    refused(
        sb.cmd()
            .args(["train", "imgs", "--arch", "filters.toml", "-o", "f.safetensors"]),
        &["too large"],
    );
    // The same product in a model's provenance, with no flag.
    tamper_json(&sb.path("m.safetensors"), "provenance", |p| {
        p["image_shape"] = serde_json::json!([12297829382473034672u64, 3, 1]);
    });
    let o = sb
        .cmd()
        .args(["show", "m.safetensors", "imgs", "-o", "s.png"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!sb.path("s.png").exists());
}

#[test]
fn an_output_onto_a_device_stays_a_device() {
    use std::os::unix::fs::FileTypeExt;
    let sb = Sandbox::new();
    assert!(train_small(&sb, &[]).status.success());
    ok(sb.cmd().args([
        "encode",
        "m.safetensors",
        "t.csv",
        "--label-column",
        "label",
        "-o",
        "/dev/null",
    ]));
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
}

#[test]
fn compressed_and_image_bombs_are_refused_before_inflating() {
    use std::io::Write;
    let sb = Sandbox::new();
    assert!(train_small(&sb, &[]).status.success());
    // A gzip IDX of 20000 images of 100x100 zeros (200 MB inflated, ~200 KB on disk).
    let (n, h, w) = (20_000u32, 100u32, 100u32);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&[0, 0, 8, 3]).unwrap();
    for d in [n, h, w] {
        gz.write_all(&d.to_be_bytes()).unwrap();
    }
    let zeros = vec![0u8; (h * w) as usize];
    for _ in 0..n {
        gz.write_all(&zeros).unwrap();
    }
    std::fs::write(sb.path("bomb-idx3-ubyte.gz"), gz.finish().unwrap()).unwrap();
    // Of the wrong width for the model: refused from the header, before inflating.
    let t0 = Instant::now();
    refused(
        sb.cmd()
            .args(["encode", "m.safetensors", "bomb-idx3-ubyte.gz", "-o", "c.csv"]),
        &["bomb-idx3-ubyte.gz", "10000"],
    );
    assert!(t0.elapsed() < Duration::from_secs(20));
    // Over the memory limit: refused from the header.
    refused(
        sb.cmd().env("HOURGLASS_MEMORY_LIMIT", "64M").args([
            "train",
            "bomb-idx3-ubyte.gz",
            "--code",
            "2",
            "-o",
            "b.safetensors",
        ]),
        &["too large"],
    );
    // A 4000x4000 PNG (16 MB of pixels, a few KB on disk) under a 16 MB limit.
    let dir = sb.path("big");
    std::fs::create_dir(&dir).unwrap();
    image::GrayImage::new(4000, 4000).save(dir.join("a.png")).unwrap();
    refused(
        sb.cmd()
            .env("HOURGLASS_MEMORY_LIMIT", "16M")
            .args(["train", "big", "--code", "2", "-o", "b.safetensors"]),
        &["too large"],
    );
    // A corrupt gzip stream is called that.
    let mut bytes = std::fs::read(sb.path("bomb-idx3-ubyte.gz")).unwrap();
    bytes.truncate(60);
    bytes.extend_from_slice(&[0xff; 64]);
    std::fs::write(sb.path("corrupt-idx3-ubyte.gz"), bytes).unwrap();
    refused(
        sb.cmd()
            .args(["train", "corrupt-idx3-ubyte.gz", "--code", "2", "-o", "c.safetensors"]),
        &["corrupt-idx3-ubyte.gz", "corrupt gzip data"],
    );
}

#[test]
fn write_errors_on_stdout_are_one_line_or_quiet() {
    let sb = Sandbox::new();
    assert!(train_small(&sb, &[]).status.success());
    // A full disk: exit 2, one line, no panic.
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let o = sb
        .cmd()
        .args(["inspect", "m.safetensors", "--json"])
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim_end().lines().count(), 1, "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));
    // Training to a full stdout saves the model, then reports the write error.
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let o = sb
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
        ])
        .args(["-o", "m2.safetensors", "-q"])
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(sb.path("m2.safetensors").exists());
    // `| head -c 100`: the reader takes some bytes and closes the pipe.
    let mut child = sb
        .cmd()
        .args(["inspect", "m.safetensors", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 100];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn work_and_threads_are_bounded() {
    let sb = Sandbox::new();
    assert!(train_small(&sb, &[]).status.success());
    std::fs::write(sb.path("y.csv"), "label\n".to_string() + &"a\nb\n".repeat(30)).unwrap();
    refused(
        sb.cmd()
            .args(["probe", "t.csv", "t.csv", "--label-column", "label", "--l2", "inf"]),
        &["--l2"],
    );
    refused(
        sb.cmd()
            .args(["train", "t.csv", "--label-column", "label", "--code", "2"])
            .args([
                "--image-shape",
                "2,3",
                "--noise",
                "block:1x1:100000000",
                "-o",
                "n.safetensors",
            ]),
        &["block"],
    );
    let t0 = Instant::now();
    refused(
        sb.cmd().args(["--threads", "10000", "inspect", "m.safetensors"]),
        &["--threads"],
    );
    assert!(t0.elapsed() < Duration::from_secs(10));
}

#[test]
fn corner_cases_that_panicked_are_errors() {
    let sb = Sandbox::new();
    assert!(train_small(&sb, &[]).status.success());
    sb.write("one.csv", "a,b\n0.5,0.25\n");
    refused(
        sb.cmd().args([
            "train",
            "one.csv",
            "--code",
            "1",
            "--valid-fraction",
            "0.2",
            "-o",
            "o.safetensors",
        ]),
        &["2 rows"],
    );
    refused(
        sb.cmd()
            .args([
                "select",
                manifold(&sb, "x.csv", 300).to_str().unwrap(),
                "--rows",
                "500..",
            ])
            .args(["-o", "s.csv"]),
        &["--rows 500.."],
    );
    // A table encoding whose hashed column has 0 buckets.
    let s = Sandbox::new();
    s.write(
        "cat.csv",
        &("x,c\n".to_string() + &(0..40).map(|i| format!("{},v{i}\n", i % 7)).collect::<String>()),
    );
    ok(s.cmd()
        .args(["train", "cat.csv", "--categorical", "c", "--max-categories", "2"])
        .args([
            "--hash-buckets",
            "4",
            "--code",
            "2",
            "--epochs",
            "1",
            "-o",
            "c.safetensors",
        ]));
    tamper_json(&s.path("c.safetensors"), "tabular", |t| {
        let cols = t["columns"].as_array_mut().unwrap();
        for c in cols {
            if c.get("buckets").is_some() {
                c["buckets"] = 0.into();
            }
            if let Some(k) = c.get_mut("kind").and_then(|k| k.get_mut("buckets")) {
                *k = 0.into();
            }
        }
    });
    let o = s
        .cmd()
        .args(["encode", "c.safetensors", "cat.csv", "-o", "e.csv"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}

#[test]
fn pca_and_itq_do_not_depend_on_the_thread_count() {
    // 1000 MNIST rows: a 784 x 784 covariance, large enough for the decomposition to split
    // its work (with 300 rows, 638 weights differed between 1 and 2 threads).
    let sb = Sandbox::new();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mnist-test-1000-images-idx3-ubyte.gz");
    let data = data.to_str().unwrap();
    for (threads, out) in [
        ("1", "p1.safetensors"),
        ("2", "p2.safetensors"),
        ("3", "p3.safetensors"),
    ] {
        ok(sb
            .cmd()
            .args(["--threads", threads, "pca", data, "--components", "16", "--itq", "10"])
            .args(["-o", out]));
    }
    let bytes = |n: &str| std::fs::read(sb.path(n)).unwrap();
    assert!(
        bytes("p1.safetensors") == bytes("p2.safetensors"),
        "p1.safetensors and p2.safetensors differ"
    );
    assert!(
        bytes("p1.safetensors") == bytes("p3.safetensors"),
        "p1.safetensors and p3.safetensors differ"
    );
}

#[test]
fn denoise_keeps_inputs_whose_names_differ_in_case_apart() {
    let sb = Sandbox::new();
    let dir = square_images(&sb, "imgs", 4, false);
    std::fs::copy(dir.join("img00.png"), dir.join("img00.PNG")).unwrap();
    ok(sb
        .cmd()
        .args(["train", "imgs", "--code", "4", "--epochs", "1", "-o", "m.safetensors"]));
    ok(sb.cmd().args(["denoise", "m.safetensors", "imgs", "-o", "out"]));
    let written = std::fs::read_dir(sb.path("out")).unwrap().count();
    assert_eq!(written, 5);
}

#[test]
fn invalid_values_are_refused() {
    let sb = Sandbox::new();
    assert!(train_small(&sb, &[]).status.success());
    let train = |extra: &[&str]| {
        let mut c = sb.cmd();
        c.args([
            "train",
            "t.csv",
            "--label-column",
            "label",
            "--code",
            "2",
            "-o",
            "x.safetensors",
        ])
        .args(extra);
        c
    };
    refused(&mut train(&["--schedule", "cosine:-1"]), &["cosine"]);
    std::fs::write(
        sb.path("y.csv"),
        (0..60).map(|i| format!("{}\n", i % 2)).collect::<String>(),
    )
    .unwrap();
    refused(
        sb.cmd()
            .args(["finetune", "m.safetensors", "t.csv", "--label-column", "label"])
            .args(["--weight-decay=-1", "-o", "c.safetensors"]),
        &["weight"],
    );
    // A reshape whose product wraps to the right width.
    sb.write(
        "wrap.toml",
        "[[encoder]]\ntype = \"dense\"\nunits = 4\n[[decoder]]\ntype = \"dense\"\nunits = 6\n\
         [[decoder]]\ntype = \"reshape\"\nshape = [6148914691236517206, 3, 1]\n",
    );
    let o = train(&[]).args(["--arch", "wrap.toml"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // A rectangle whose corner wraps around.
    square_images(&sb, "imgs", 3, false);
    ok(sb
        .cmd()
        .args(["train", "imgs", "--code", "4", "--epochs", "1", "-o", "i.safetensors"]));
    refused(
        sb.cmd()
            .args([
                "inpaint",
                "i.safetensors",
                "imgs",
                "--rect",
                "18446744073709551615,0,2,2",
            ])
            .args(["-o", "in.npy"]),
        &["rect"],
    );
    // Scalers of the wrong length or with zero scales, in autoencoders and classifiers.
    ok(sb
        .cmd()
        .args([
            "train",
            "t.csv",
            "--label-column",
            "label",
            "--code",
            "2",
            "--scale",
            "standard",
        ])
        .args(["-o", "s.safetensors"]));
    for (name, edit) in [("short.safetensors", 0usize), ("zero.safetensors", 1)] {
        std::fs::copy(sb.path("s.safetensors"), sb.path(name)).unwrap();
        tamper_json(&sb.path(name), "scaler", |s| match edit {
            0 => {
                s["scale"].as_array_mut().unwrap().pop();
            }
            _ => s["scale"][0] = 0.0.into(),
        });
        let err = refused(
            sb.cmd()
                .args(["encode", name, "t.csv", "--label-column", "label", "-o", "c.csv"]),
            &[name, "scale"],
        );
        assert!(!err.contains("6 vs 6"), "the lengths that differ are named: {err}");
    }
    ok(sb
        .cmd()
        .args([
            "finetune",
            "s.safetensors",
            "t.csv",
            "--label-column",
            "label",
            "--epochs",
            "1",
        ])
        .args(["-o", "cls.safetensors"]));
    let cls = std::fs::read(sb.path("cls.safetensors")).unwrap();
    let n = u64::from_le_bytes(cls[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&cls[8..8 + n]).unwrap();
    let key = header["__metadata__"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, v)| v.as_str().is_some_and(|s| s.contains("\"scale\"")))
        .map(|(k, _)| k.clone())
        .expect("the classifier stores a scaler");
    tamper(&sb.path("cls.safetensors"), |meta| {
        let text = meta[&key].as_str().unwrap().to_owned();
        let mut v: Value = serde_json::from_str(&text).unwrap();
        let scaler = if v.get("scale").is_some() {
            &mut v
        } else {
            &mut v["scaler"]
        };
        scaler["scale"].as_array_mut().unwrap().pop();
        meta.insert(key.clone(), Value::String(v.to_string()));
    });
    refused(
        sb.cmd().args([
            "predict",
            "cls.safetensors",
            "t.csv",
            "--label-column",
            "label",
            "-o",
            "p.csv",
        ]),
        &["cls.safetensors"],
    );
    // Codes with bits set past the code width.
    ok(sb.cmd().args([
        "hash",
        "m.safetensors",
        "t.csv",
        "--label-column",
        "label",
        "-o",
        "c.hgh",
    ]));
    let mut codes = std::fs::read(sb.path("c.hgh")).unwrap();
    let last = codes.len() - 1;
    codes[last] |= 0x80;
    std::fs::write(sb.path("c.hgh"), codes).unwrap();
    refused(sb.cmd().args(["search", "c.hgh", "c.hgh", "-o", "s.csv"]), &["c.hgh"]);
}

#[test]
fn multi_file_outputs_are_all_or_nothing() {
    let sb = Sandbox::new();
    assert!(train_small(&sb, &[]).status.success());
    sb.write("bad-labels.csv", "1\n0\n");
    let o = sb
        .cmd()
        .args(["score", "m.safetensors", "t.csv", "--label-column", "label"])
        .args(["--labels", "bad-labels.csv", "-o", "scores.csv"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!sb.path("scores.csv").exists());
    manifold(&sb, "x.csv", 30);
    sb.write("y.csv", &(0..30).map(|i| format!("{}\n", i % 3)).collect::<String>());
    refused(
        sb.cmd()
            .args(["select", "x.csv", "--labels", "y.csv", "--rows", "0..10"])
            .args(["--labels-output", "l.csv", "-o", "missing/rows.csv"]),
        &["missing"],
    );
    assert!(!sb.path("l.csv").exists());
    assert!(sb.files().iter().all(|f| !f.contains(".tmp")), "{:?}", sb.files());
}

#[test]
fn error_lines_are_short_and_say_what_is_wrong() {
    let sb = Sandbox::new();
    sb.write("nl.csv", "a,b\n1,\"x\ny\"\n");
    let err = refused(
        sb.cmd().args(["train", "nl.csv", "--code", "1", "-o", "m.safetensors"]),
        &["nl.csv"],
    );
    assert!(err.contains("\\n"), "{err}");
    let field = "9".repeat(5 << 20) + "x";
    sb.write("wide.csv", &format!("a,b\n1,{field}\n"));
    let err = refused(
        sb.cmd()
            .args(["train", "wide.csv", "--code", "1", "-o", "m.safetensors"]),
        &["wide.csv"],
    );
    assert!(err.len() < 400, "{} bytes", err.len());
    // A labels file without a header whose first label is text.
    assert!(train_small(&sb, &[]).status.success());
    sb.write(
        "labels.csv",
        &(0..60)
            .map(|i| if i % 2 == 0 { "cat\n" } else { "dog\n" })
            .collect::<String>(),
    );
    let o = ok(sb
        .cmd()
        .args(["score", "m.safetensors", "t.csv", "--label-column", "label"])
        .args(["--labels", "labels.csv", "--anomaly-labels", "cat", "--json"]));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["detection"]["anomalies"], 30, "every `cat` row is a label: {v}");
    // A line that never ends: bounded by the memory limit, not an allocation failure.
    sb.write("endless.csv", &"1".repeat(3 << 20));
    refused(
        sb.cmd().env("HOURGLASS_MEMORY_LIMIT", "8M").args([
            "train",
            "endless.csv",
            "--code",
            "1",
            "-o",
            "e.safetensors",
        ]),
        &["endless.csv"],
    );
}

#[test]
fn long_output_names_and_file_modes() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    assert!(train_small(&sb, &[]).status.success());
    let name = format!("{}.csv", "n".repeat(251));
    ok(sb.cmd().args([
        "encode",
        "m.safetensors",
        "t.csv",
        "--label-column",
        "label",
        "-o",
        &name,
    ]));
    assert!(sb.path(&name).exists());
    let m = sb.path("m.safetensors");
    std::fs::set_permissions(&m, std::fs::Permissions::from_mode(0o600)).unwrap();
    ok(sb.cmd().args([
        "calibrate",
        "m.safetensors",
        "t.csv",
        "--label-column",
        "label",
        "--contamination",
        "0.1",
    ]));
    assert_eq!(std::fs::metadata(&m).unwrap().permissions().mode() & 0o777, 0o600);
}

/// The arguments of a run long enough to interrupt: 600 rows, up to 1000 epochs of 34 batches
/// (early stopping ends it sooner; either way it lasts well past the first checkpoint).
fn long_run(data: &str) -> Vec<String> {
    [
        "train",
        data,
        "--hidden",
        "24",
        "--code",
        "4",
        "--epochs",
        "1000",
        "--batch-size",
        "16",
        "--noise",
        "gaussian:0.05",
        "--valid-fraction",
        "0.1",
        "--patience",
        "30",
        "--seed",
        "9",
        "-q",
    ]
    .map(String::from)
    .to_vec()
}

/// Starts `args`, waits until `path` exists, then sends `signal` (`KILL`, `INT`).
fn interrupt(sb: &Sandbox, args: &[String], path: &Path, signal: &str) -> std::process::ExitStatus {
    let mut child = sb
        .cmd()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !path.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its first checkpoint"
        );
        assert!(t0.elapsed() < Duration::from_secs(120), "no checkpoint after 120 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    let killed = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    if signal != "KILL" {
        eprintln!("{}", stderr(&out));
    }
    out.status
}

#[test]
fn a_run_killed_mid_epoch_resumes_to_the_same_bytes() {
    let sb = Sandbox::new();
    manifold(&sb, "x.csv", 600);
    let mut reference = long_run("x.csv");
    reference.extend(["-o".into(), "ref.safetensors".into()]);
    ok(sb.cmd().args(&reference));
    // Same seed, same bytes.
    let mut again = long_run("x.csv");
    again.extend(["-o".into(), "again.safetensors".into()]);
    ok(sb.cmd().args(&again));
    let bytes = |n: &str| std::fs::read(sb.path(n)).unwrap();
    assert!(
        bytes("ref.safetensors") == bytes("again.safetensors"),
        "ref.safetensors and again.safetensors differ"
    );

    let mut run = long_run("x.csv");
    run.extend(
        [
            "-o",
            "m.safetensors",
            "--checkpoint",
            "ck",
            "--checkpoint-every",
            "0.02s",
            "--log",
            "m.log",
        ]
        .map(String::from),
    );
    let status = interrupt(&sb, &run, &sb.path("ck"), "KILL");
    assert!(!status.success());
    assert!(!sb.path("m.safetensors").exists());
    let ck = hourglass::Checkpoint::load(&sb.path("ck")).unwrap();
    assert!(ck.next_batch() > 0, "a mid-epoch checkpoint");
    let logged = std::fs::read_to_string(sb.path("m.log")).unwrap().lines().count();
    assert!(
        logged + 1 >= ck.epoch(),
        "the log has every finished epoch: {logged} lines, epoch {}",
        ck.epoch()
    );
    // Resume alone, with another thread count: the run's arguments come from the checkpoint.
    ok(sb.cmd().args(["--threads", "1", "train", "--resume", "ck"]));
    assert!(
        bytes("ref.safetensors") == bytes("m.safetensors"),
        "ref.safetensors and m.safetensors differ"
    );
    let log = std::fs::read_to_string(sb.path("m.log")).unwrap();
    let epochs: Vec<u64> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["epoch"].as_u64().unwrap())
        .collect();
    let finished = hourglass::format::load(&sb.path("ref.safetensors"))
        .unwrap()
        .provenance
        .report
        .unwrap()
        .history
        .len() as u64;
    assert!(finished > 2, "{finished} epochs");
    assert_eq!(epochs, (1..=finished).collect::<Vec<u64>>(), "one log line per epoch");
    // A checkpoint is not continued with other settings or data.
    let mut other = long_run("x.csv");
    let seed = other.iter().position(|a| a == "--seed").unwrap() + 1;
    other[seed] = "10".into();
    other.extend(["-o", "o.safetensors", "--resume", "ck"].map(String::from));
    refused(sb.cmd().args(&other), &["seed"]);
}

#[test]
fn sigint_saves_a_checkpoint_and_the_model_then_resumes_to_the_same_bytes() {
    let sb = Sandbox::new();
    manifold(&sb, "x.csv", 600);
    let mut reference = long_run("x.csv");
    reference.extend(["-o".into(), "ref.safetensors".into()]);
    ok(sb.cmd().args(&reference));
    // Interrupt once the first epoch is logged (so a model can be saved).
    let mut run = long_run("x.csv");
    run.extend(["-o", "m.safetensors", "--log", "m.log"].map(String::from));
    let mut child = sb.cmd().args(&run).stderr(Stdio::piped()).spawn().unwrap();
    let t0 = Instant::now();
    while std::fs::read_to_string(sb.path("m.log")).map_or(true, |l| l.is_empty()) {
        assert!(child.try_wait().unwrap().is_none(), "the run ended too soon");
        assert!(t0.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("hourglass train --resume m.safetensors.checkpoint"),
        "{err}"
    );
    assert!(sb.path("m.safetensors").exists(), "the best model so far is saved");
    assert!(sb.files().iter().all(|f| !f.contains(".tmp")), "{:?}", sb.files());
    ok(sb.cmd().args(["train", "--resume", "m.safetensors.checkpoint"]));
    assert!(
        std::fs::read(sb.path("ref.safetensors")).unwrap() == std::fs::read(sb.path("m.safetensors")).unwrap(),
        "the resumed model differs"
    );
}

/// Runs `args` (a training command without `-o`) once through, and once with a checkpoint
/// every 20 ms, killed (SIGKILL) after its first one and resumed alone: the two model files
/// must have the same bytes. Files are named after `tag`.
fn killed_and_resumed_is_uninterrupted(sb: &Sandbox, args: &[&str], tag: &str) {
    let (reference, out, ck) = (
        format!("{tag}-ref.safetensors"),
        format!("{tag}.safetensors"),
        format!("{tag}.ck"),
    );
    ok(sb.cmd().args(args).args(["-o", &reference]));
    let mut run: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    run.extend(["-o", &out, "--checkpoint", &ck, "--checkpoint-every", "0.02s"].map(String::from));
    assert!(!interrupt(sb, &run, &sb.path(&ck), "KILL").success());
    ok(sb.cmd().args([args[0], "--resume", &ck]));
    assert!(
        std::fs::read(sb.path(&reference)).unwrap() == std::fs::read(sb.path(&out)).unwrap(),
        "{tag}: the resumed model differs from the uninterrupted one"
    );
}

#[test]
fn convolutional_and_finetune_runs_resume_to_the_same_bytes() {
    let sb = Sandbox::new();
    square_images(&sb, "imgs", 100, false);
    sb.write("conv.toml", SMALL_CONV);
    let conv = [
        "train",
        "imgs",
        "--arch",
        "conv.toml",
        "--epochs",
        "1000",
        "--batch-size",
        "2",
        "--seed",
        "4",
        "-q",
    ];
    killed_and_resumed_is_uninterrupted(&sb, &conv, "conv");
    // Fine-tuning a classifier from that autoencoder, with a freeze phase and dropout.
    let labels: String = (0..100).map(|i| format!("{}\n", (i % 5) / 3)).collect();
    sb.write("y.csv", &labels);
    let finetune = [
        "finetune",
        "conv-ref.safetensors",
        "imgs",
        "--labels",
        "y.csv",
        "--epochs",
        "1000",
        "--freeze-epochs",
        "3",
        "--batch-size",
        "2",
        "--dropout",
        "0.2",
        "--seed",
        "2",
        "-q",
    ];
    killed_and_resumed_is_uninterrupted(&sb, &finetune, "classifier");
}

#[test]
fn empty_arrays_with_overflowing_shapes_are_refused() {
    // Found by the `npy`, `idx` and `csv` fuzz targets: with no rows, the other dimensions
    // are not bounded by the data, and their product overflowed.
    let sb = Sandbox::new();
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4294967296, 4294967296), }";
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    let pad = (64 - (10 + header.len() + 1) % 64) % 64;
    let text = format!("{header}{}\n", " ".repeat(pad));
    npy.extend_from_slice(&(text.len() as u16).to_le_bytes());
    npy.extend_from_slice(text.as_bytes());
    std::fs::write(sb.path("e.npy"), npy).unwrap();
    let mut idx = vec![0, 0, 8, 4];
    for d in [0u32, u32::MAX, u32::MAX, u32::MAX] {
        idx.extend_from_slice(&d.to_be_bytes());
    }
    std::fs::write(sb.path("e-idx4-ubyte"), idx).unwrap();
    for file in ["e.npy", "e-idx4-ubyte"] {
        refused(
            sb.cmd().args(["train", file, "--code", "2", "-o", "m.safetensors"]),
            &[file],
        );
    }
}
