//! Time series end to end: `train --window` on a generated two-channel series, then `score`
//! per step and per window, `encode`, `inspect`, and the errors.

use crate::cli::Sandbox;

/// `steps` steps of two channels in their own units (a sine in volts around 230, a cosine in
/// amperes around 5) and a label column: a burst of noise at steps `[a, b)` is labelled 1.
fn series(steps: usize, burst: Option<(usize, usize)>) -> String {
    let mut rng = hourglass::rng::Rng::new(5);
    let mut text = String::from("time,volts,amps,label\n");
    for t in 0..steps {
        let phase = t as f32 * std::f32::consts::TAU / 24.0;
        let inside = burst.is_some_and(|(a, b)| (a..b).contains(&t));
        let jolt = if inside {
            3.0 * rng.normal()
        } else {
            0.02 * rng.normal()
        };
        let v = 230.0 + 10.0 * phase.sin() + 10.0 * jolt;
        let i = 5.0 + phase.cos() + jolt;
        text.push_str(&format!("{t},{v:.4},{i:.5},{}\n", u8::from(inside)));
    }
    text
}

pub(crate) fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn windows_train_score_each_step_and_encode_each_window() {
    let sb = Sandbox::new();
    sb.write("normal.csv", &series(600, None));
    sb.write("test.csv", &series(400, Some((250, 262))));
    let sel = ["--drop", "time", "--label-column", "label"];
    ok(&sb
        .cmd()
        .args([
            "train",
            "normal.csv",
            "--window",
            "24",
            "--stride",
            "2",
            "--hidden",
            "16",
            "--code",
            "4",
        ])
        .args(["--epochs", "60", "-q", "-o", "m.hg"])
        .args(sel)
        .output()
        .unwrap());
    let inspect = ok(&sb.cmd().args(["inspect", "m.hg"]).output().unwrap());
    assert!(
        inspect.contains("windows          24 steps of 2 channels (trained 2 apart"),
        "{inspect}"
    );
    assert!(inspect.contains("scaling          standard"), "{inspect}");
    let json = ok(&sb.cmd().args(["inspect", "m.hg", "--json"]).output().unwrap());
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["windows"]["length"], 24);
    assert_eq!(v["provenance"]["data_shape"][0], (600 - 24) / 2 + 1);

    // One score per step, in the file's order, with its own label; the burst stands out.
    let out = ok(&sb
        .cmd()
        .args(["score", "m.hg", "test.csv", "--json", "-o", "steps.csv"])
        .args(sel)
        .output()
        .unwrap());
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["n"], 400);
    assert_eq!(v["detection"]["anomalies"], 12);
    let auc = v["detection"]["roc_auc"].as_f64().unwrap();
    assert!(auc > 0.95, "step ROC-AUC {auc}");
    let text = std::fs::read_to_string(sb.path("steps.csv")).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows[0], "label,score");
    assert_eq!(rows.len(), 401);
    assert!(rows[251].starts_with("1,") && rows[1].starts_with("0,"));

    // Calibrated on the normal series' 600 steps, the threshold flags at most 5 % of them.
    let out = ok(&sb
        .cmd()
        .args([
            "calibrate",
            "m.hg",
            "normal.csv",
            "--contamination",
            "0.05",
            "--drop",
            "time,label",
        ])
        .output()
        .unwrap());
    assert!(out.contains("of 600 calibration rows"), "{out}");
    let out = ok(&sb
        .cmd()
        .args(["score", "m.hg", "normal.csv", "--json", "--drop", "time,label"])
        .output()
        .unwrap());
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let flagged = v["flagged"].as_u64().unwrap();
    assert!((20..=30).contains(&flagged), "{flagged} of 600 steps flagged");

    // Per window: 377 windows, each labelled by its last step.
    let out = ok(&sb
        .cmd()
        .args(["score", "m.hg", "test.csv", "--json", "--per-window"])
        .args(sel)
        .output()
        .unwrap());
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["n"], 400 - 24 + 1);
    assert_eq!(v["detection"]["anomalies"], 12);

    // The report scores steps as `score` does, against the steps' labels.
    ok(&sb
        .cmd()
        .args(["report", "m.hg", "test.csv", "-o", "r.html"])
        .args(sel)
        .output()
        .unwrap());
    let html = std::fs::read_to_string(sb.path("r.html")).unwrap();
    for want in [
        "Reconstruction error per step",
        "400 steps of",
        "mean score of the 377 windows",
        "Detection against the labels",
    ] {
        assert!(html.contains(want), "{want}");
    }

    // Codes per window; the model reads the channels by name, in any column order.
    sb.write(
        "shuffled.csv",
        &series(50, None)
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                format!("{},{},{}\n", f[2], f[0], f[1])
            })
            .collect::<String>(),
    );
    sb.write(
        "ordered.csv",
        &series(50, None)
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                format!("{},{}\n", f[1], f[2])
            })
            .collect::<String>(),
    );
    ok(&sb
        .cmd()
        .args(["encode", "m.hg", "shuffled.csv", "-o", "a.csv"])
        .output()
        .unwrap());
    ok(&sb
        .cmd()
        .args(["encode", "m.hg", "ordered.csv", "-o", "b.csv"])
        .output()
        .unwrap());
    let a = std::fs::read_to_string(sb.path("a.csv")).unwrap();
    assert_eq!(a.lines().count(), 1 + 50 - 24 + 1);
    assert_eq!(a, std::fs::read_to_string(sb.path("b.csv")).unwrap());
    // Kept columns follow the windows: each code row keeps its window's last step.
    ok(&sb
        .cmd()
        .args([
            "encode",
            "m.hg",
            "test.csv",
            "--drop",
            "time,label",
            "--keep-columns",
            "time",
            "-o",
            "k.csv",
        ])
        .output()
        .unwrap());
    let k = std::fs::read_to_string(sb.path("k.csv")).unwrap();
    let times: Vec<&str> = k.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(times.len(), 400 - 24 + 1);
    assert_eq!((times[0], times[times.len() - 1]), ("23", "399"));
}

#[test]
fn series_errors_name_what_is_wrong() {
    let sb = Sandbox::new();
    sb.write("normal.csv", &series(100, None));
    sb.write("short.csv", &series(10, None));
    let train = |extra: &[&str]| {
        sb.cmd()
            .args([
                "train",
                "normal.csv",
                "--hidden",
                "8",
                "--code",
                "2",
                "--epochs",
                "1",
                "-q",
            ])
            .args(["--drop", "time,label", "-o", "m.hg"])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = train(&["--window", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 2 steps"));
    let out = train(&["--window", "200"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("normal.csv") && err.contains("100 rows") && err.contains("at least 200"),
        "{err}"
    );
    ok(&train(&["--window", "12"]));
    let out = sb
        .cmd()
        .args(["score", "m.hg", "short.csv", "--drop", "time,label"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("short.csv") && err.contains("10 rows") && err.contains("at least 12"),
        "{err}"
    );
    let out = sb
        .cmd()
        .args(["score", "m.hg", "normal.csv", "--drop", "time,label", "--per-feature"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--per-window"));
}

/// Windows of 24 steps of two channels through 1-D convolutions: 24 -> 12 -> 6 steps and back.
const CONV1D: &str = r#"
output_activation = "identity"
[[encoder]]
type = "conv1d"
filters = 8
kernel = 3
stride = 2
padding = 1
[[encoder]]
type = "conv1d"
filters = 8
kernel = 3
stride = 2
padding = 1
[[encoder]]
type = "flatten"
[[encoder]]
type = "dense"
units = 4
activation = "identity"
[[decoder]]
type = "dense"
units = 48
[[decoder]]
type = "reshape"
shape = [8, 1, 6]
[[decoder]]
type = "conv_transpose1d"
filters = 8
kernel = 3
stride = 2
padding = 1
output_padding = 1
[[decoder]]
type = "conv_transpose1d"
filters = 2
kernel = 3
stride = 2
padding = 1
output_padding = 1
"#;

/// Windows of 24 steps of two channels through a recurrent autoencoder: an LSTM reads each
/// window into its last state, a code of 4, repeated at every step of a GRU decoder, whose
/// states a 1-D convolution of width 1 maps back to the two channels.
const RECURRENT: &str = include_str!("../data/series-lstm-gru.toml");

/// Trains the architecture `arch` (as `arch.toml`) for 40 epochs on windows of 24 steps of the
/// normal series, checks that
/// `inspect` shows each of `layers` (a kind and its shapes), scores the series with a burst per
/// step, and returns the sandbox (the model is `m.hg`).
fn trains_on_windows_and_finds_the_burst(arch: &str, layers: &[(&str, &str)]) -> Sandbox {
    let sb = Sandbox::new();
    sb.write("normal.csv", &series(600, None));
    sb.write("test.csv", &series(400, Some((250, 262))));
    sb.write("arch.toml", arch);
    let sel = ["--drop", "time", "--label-column", "label"];
    ok(&sb
        .cmd()
        .args(["train", "normal.csv", "--window", "24", "--arch", "arch.toml"])
        .args(["--epochs", "40", "-q", "-o", "m.hg"])
        .args(sel)
        .output()
        .unwrap());
    let inspect = ok(&sb.cmd().args(["inspect", "m.hg"]).output().unwrap());
    for (kind, shapes) in layers {
        assert!(
            inspect.lines().any(|l| l.contains(kind) && l.contains(shapes)),
            "{kind} {shapes}: {inspect}"
        );
    }
    let out = ok(&sb
        .cmd()
        .args(["score", "m.hg", "test.csv", "--json"])
        .args(sel)
        .output()
        .unwrap());
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let auc = v["detection"]["roc_auc"].as_f64().unwrap();
    assert!(auc > 0.95, "step ROC-AUC {auc}");
    sb
}

#[test]
fn recurrent_autoencoders_train_on_windows_and_load_back() {
    let layers = [
        ("lstm", "2x1x24 -> 8 "),
        ("repeat", "4 -> 4x1x24"),
        ("gru", "4x1x24 -> 8x1x24"),
        ("conv1d", "8x1x24 -> 2x1x24"),
    ];
    let sb = trains_on_windows_and_finds_the_burst(RECURRENT, &layers);
    // Trained again on one thread: the same file, byte for byte.
    ok(&sb
        .cmd()
        .args(["train", "normal.csv", "--window", "24", "--arch", "arch.toml"])
        .args(["--epochs", "40", "-q", "-o", "one.hg", "--threads", "1"])
        .args(["--drop", "time,label"])
        .output()
        .unwrap());
    let (a, b) = (
        std::fs::read(sb.path("m.hg")).unwrap(),
        std::fs::read(sb.path("one.hg")).unwrap(),
    );
    assert!(a == b, "the model depends on the thread count");
    // A recurrent layer reads one-row sequences only, and says so.
    sb.write("rows.csv", "a,b,c,d,e,f\n1,2,3,4,5,6\n2,3,4,5,6,7\n");
    let out = sb
        .cmd()
        .args(["train", "rows.csv", "--arch", "arch.toml", "-q", "-o", "x.hg"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("encoder[0]") && err.contains("one-row sequences"), "{err}");
}

#[test]
fn one_d_convolutions_train_on_windows_and_load_back() {
    let layers = [("conv1d", "2x1x24 -> 8x1x12"), ("conv_transpose1d", "8x1x12 -> 2x1x24")];
    let sb = trains_on_windows_and_finds_the_burst(CONV1D, &layers);
    // A 1-D convolution reads one-row images only, and says so.
    sb.write("rows.csv", "a,b,c,d,e,f\n1,2,3,4,5,6\n2,3,4,5,6,7\n");
    let out = sb
        .cmd()
        .args([
            "train",
            "rows.csv",
            "--arch",
            "arch.toml",
            "--image-shape",
            "2,3",
            "-q",
            "-o",
            "x.hg",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a 1-D convolution reads one-row inputs"), "{err}");
}

/// A categorical sequence autoencoder: windows of 5 tokens drawn from 4, one-hot through
/// `--categorical`, an LSTM into a code of 12, a decoder LSTM, a width-1 `conv1d` to the 4
/// channels and a `softmax` layer over them at each step, trained with the cross-entropy
/// (`loss = "ce"`). The reconstruction is a distribution at every step, and its most probable
/// token is the input's at most steps; the model loads back and exports.
#[test]
fn token_windows_train_with_a_softmax_and_the_cross_entropy() {
    let sb = Sandbox::new();
    let mut rng = hourglass::rng::Rng::new(8);
    let tokens: Vec<char> = (0..400).map(|_| ['a', 'b', 'c', 'd'][rng.below(4)]).collect();
    let mut text = String::from("token\n");
    tokens.iter().for_each(|t| text.push_str(&format!("{t}\n")));
    sb.write("tokens.csv", &text);
    let arch = "loss = \"ce\"\n\
                [[encoder]]\ntype = \"lstm\"\nunits = 24\n\
                [[encoder]]\ntype = \"dense\"\nunits = 12\nactivation = \"tanh\"\n\
                [[decoder]]\ntype = \"repeat\"\nsteps = 5\n\
                [[decoder]]\ntype = \"lstm\"\nunits = 24\nreturn_sequences = true\n\
                [[decoder]]\ntype = \"conv1d\"\nfilters = 5\nkernel = 1\n\
                [[decoder]]\ntype = \"softmax\"\n";
    sb.write("arch.toml", arch);
    let train = [
        "train",
        "tokens.csv",
        "--categorical",
        "token",
        "--window",
        "5",
        "--scale",
        "none",
    ];
    ok(&sb
        .cmd()
        .args(train)
        .args([
            "--arch",
            "arch.toml",
            "--epochs",
            "150",
            "--lr",
            "0.01",
            "-q",
            "-o",
            "m.hg",
        ])
        .output()
        .unwrap());
    let inspect = ok(&sb.cmd().args(["inspect", "m.hg"]).output().unwrap());
    assert!(inspect.contains("loss ce"), "{inspect}");
    assert!(
        inspect
            .lines()
            .any(|l| l.contains("softmax") && l.contains("5x1x5 -> 5x1x5")),
        "{inspect}"
    );
    ok(&sb
        .cmd()
        .args(["reconstruct", "m.hg", "tokens.csv", "-o", "rec.csv"])
        .output()
        .unwrap());
    let rec = std::fs::read_to_string(sb.path("rec.csv")).unwrap();
    let mut lines = rec.lines();
    // Channel-major columns `token=a@0 … token=a@4, token=b@0 …`; one channel is the
    // vocabulary's `<other>`.
    let names: Vec<String> = lines.next().unwrap().split(',').map(str::to_string).collect();
    let channels: Vec<&str> = names
        .iter()
        .step_by(5)
        .map(|n| n.trim_start_matches("token=").trim_end_matches("@0"))
        .collect();
    assert_eq!(channels.len(), 5, "{names:?}");
    let (mut hits, mut steps) = (0, 0);
    for (i, line) in lines.enumerate() {
        let v: Vec<f64> = line.split(',').map(|f| f.parse().unwrap()).collect();
        for s in 0..5 {
            let p: Vec<f64> = (0..5).map(|c| v[c * 5 + s]).collect();
            assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-4, "window {i} step {s}: {p:?}");
            let best = (0..5).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
            hits += usize::from(channels[best] == tokens[i + s].to_string());
            steps += 1;
        }
    }
    assert_eq!(steps, 396 * 5);
    // Chance is 25 %; a model that learned nothing of the order writes one token everywhere.
    let share = hits as f64 / steps as f64;
    assert!(share > 0.8, "{share:.3} of the steps reconstructed");
    // `eval` reports the same share, and the cross-entropy per step.
    let out = ok(&sb
        .cmd()
        .args(["eval", "m.hg", "tokens.csv", "--json"])
        .output()
        .unwrap());
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let c = &v["categorical"];
    assert_eq!(c["positions"], steps, "{out}");
    assert!((c["accuracy"].as_f64().unwrap() - share).abs() < 1e-12, "{out}");
    let ce = c["cross_entropy"].as_f64().unwrap();
    assert!(ce > 0.0 && ce < 0.5, "{out}");
    // Without a softmax layer last, loss ce is refused with the reason.
    sb.write("bad.toml", &arch.replace("[[decoder]]\ntype = \"softmax\"\n", ""));
    let out = sb
        .cmd()
        .args(train)
        .args(["--arch", "bad.toml", "-q", "-o", "x.hg"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loss ce needs a softmax layer last"), "{err}");
}
