//! A text end to end: `train --text` cuts it into characters, one-hot over a stored vocabulary,
//! and trains the default sequence autoencoder on its windows; `reconstruct` writes text back,
//! `eval` counts the characters that come back; and the errors.

use crate::cli::Sandbox;
use crate::series::ok;

/// 400 random characters of `abcd`, a line break every 50 (a space once read).
fn text() -> (String, String) {
    let mut rng = hourglass::rng::Rng::new(8);
    let mut file = String::new();
    let mut read = String::new();
    for i in 0..400 {
        if i > 0 && i % 50 == 0 {
            file.push('\n');
            read.push(' ');
        }
        let c = ['a', 'b', 'c', 'd'][rng.below(4)];
        file.push(c);
        read.push(c);
    }
    (file, read)
}

#[test]
fn a_text_trains_on_its_characters_and_is_written_back() {
    let sb = Sandbox::new();
    let (file, read) = text();
    sb.write("t.txt", &file);
    let train = ["train", "t.txt", "--text", "chars", "--window", "5"];
    let sizes = ["--hidden", "24", "--code", "12", "--epochs", "50"];
    ok(&sb
        .cmd()
        .args(train)
        .args(sizes)
        .args(["-q", "-o", "m.hg"])
        .output()
        .unwrap());
    // The default sequence autoencoder: a, b, c, d, the space and <other> at each of 5 steps.
    let inspect = ok(&sb.cmd().args(["inspect", "m.hg"]).output().unwrap());
    assert!(inspect.contains("loss ce"), "{inspect}");
    assert!(
        inspect.lines().any(|l| l.contains("lstm") && l.contains("6x1x5 -> 24")),
        "{inspect}"
    );
    assert!(inspect.contains("scaling          none"), "{inspect}");
    assert!(inspect.contains("text             chars; vocabulary of 6"), "{inspect}");
    // The whole text back: each character the most probable over the windows holding it.
    ok(&sb
        .cmd()
        .args(["reconstruct", "m.hg", "t.txt", "-o", "rec.txt"])
        .output()
        .unwrap());
    let rec = std::fs::read_to_string(sb.path("rec.txt")).unwrap();
    let rec = rec.trim_end_matches('\n');
    assert_eq!(rec.chars().count(), read.chars().count(), "{rec}");
    let same = rec.chars().zip(read.chars()).filter(|(a, b)| a == b).count();
    // Chance is about 25 %; a model that learned nothing of the order writes one letter.
    let share = same as f64 / read.len() as f64;
    assert!(share > 0.8, "{share:.3} of the characters came back:\n{rec}");
    // Each window as text: the input's characters in order, the share of them that came back.
    ok(&sb
        .cmd()
        .args(["reconstruct", "m.hg", "t.txt", "-o", "rec.csv"])
        .output()
        .unwrap());
    let csv = std::fs::read_to_string(sb.path("rec.csv")).unwrap();
    let rows: Vec<Vec<String>> = csv::Reader::from_reader(csv.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    assert_eq!(rows.len(), read.len() - 4);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r[0], read[i..i + 5], "window {i}");
        let same = r[0].chars().zip(r[1].chars()).filter(|(a, b)| a == b).count();
        assert_eq!(r[2].parse::<f64>().unwrap(), same as f64 / 5.0, "window {i}: {r:?}");
    }
    // `eval` counts the steps of every window whose most probable character is the input's.
    let out = ok(&sb.cmd().args(["eval", "m.hg", "t.txt", "--json"]).output().unwrap());
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["categorical"]["positions"], rows.len() * 5, "{out}");
    let windows: f64 = rows.iter().map(|r| r[2].parse::<f64>().unwrap()).sum::<f64>() / rows.len() as f64;
    assert!(
        (v["categorical"]["accuracy"].as_f64().unwrap() - windows).abs() < 1e-6,
        "{out}"
    );
    // `score` gives each token the mean score of the windows that hold it, the token first;
    // letters the training text never had stand out.
    let odd: String = read[..200].to_string() + "xyzxyz" + &read[200..];
    sb.write("odd.txt", &odd);
    ok(&sb
        .cmd()
        .args(["score", "m.hg", "odd.txt", "-o", "s.csv"])
        .output()
        .unwrap());
    let csv = std::fs::read_to_string(sb.path("s.csv")).unwrap();
    assert!(csv.starts_with("token,score\n"), "{csv}");
    let rows: Vec<(String, f64)> = csv::Reader::from_reader(csv.as_bytes())
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[1].parse().unwrap())
        })
        .collect();
    assert_eq!(rows.len(), odd.len());
    assert!(rows.iter().zip(odd.chars()).all(|((t, _), c)| *t == c.to_string()));
    let mean = |r: &[(String, f64)]| r.iter().map(|x| x.1).sum::<f64>() / r.len() as f64;
    let (inside, before) = (mean(&rows[200..206]), mean(&rows[..190]));
    assert!(
        inside > 3.0 * before,
        "unseen letters {inside:.4}, the text before {before:.4}"
    );
}

#[test]
fn text_errors_name_the_file_and_the_place() {
    let sb = Sandbox::new();
    sb.write("t.txt", "abc\nab");
    std::fs::write(sb.path("bad.txt"), b"abc\nab\xff").unwrap();
    // A text is cut into windows: --window is required.
    let out = sb
        .cmd()
        .args(["train", "t.txt", "--text", "chars", "-o", "m.hg"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--window"));
    // Bytes that are not UTF-8: the file, line and column.
    let out = sb
        .cmd()
        .args(["train", "bad.txt", "--text", "chars", "--window", "2", "-o", "m.hg"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.txt:2:3") && err.contains("UTF-8"), "{err}");
    assert!(!sb.path("m.hg").exists());
    // Streaming reads tables a chunk at a time; a text is read whole.
    let out = sb
        .cmd()
        .args([
            "train", "t.txt", "--text", "words", "--window", "2", "--stream", "-o", "m.hg",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
