//! Tests of streaming: chunked inference, spilled order statistics, streamed training rows.

use super::train::rows_split;
use super::*;
use crate::data::scale::{Scaler, Scaling};
use crate::model::Mlp;
use crate::score::{ScoreMetric, ThresholdRule};

#[test]
fn spilled_order_statistics_are_exact() {
    let mut rng = crate::rng::Rng::new(5);
    let mut v: Vec<f64> = (0..700).map(|_| (rng.uniform() as f64 - 0.3) * 1e3).collect();
    v.extend([
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e-310,
        -1e-310,
        5.0,
        5.0,
        5.0,
    ]);
    let mut spill = Spill::new().unwrap();
    spill.push(&v[..300]).unwrap();
    spill.push(&v[300..]).unwrap();
    let mut sorted = v.clone();
    sorted.sort_by(f64::total_cmp);
    for (k, want) in sorted.iter().enumerate() {
        assert_eq!(spill.kth(k).unwrap().to_bits(), want.to_bits(), "k = {k}");
    }
    assert!(spill.kth(v.len()).is_err());
    assert_eq!(spill.count_above(5.0).unwrap(), v.iter().filter(|&&s| s > 5.0).count());
    // The file can still grow after reading.
    spill.push(&[-1e9]).unwrap();
    assert_eq!(spill.len(), v.len() + 1);
    assert_eq!(spill.kth(1).unwrap(), -1e9, "above -inf only");
}

fn model() -> ModelFile {
    let mut m = Mlp::new(3, 2).with_hidden(&[4]).config().init(3).unwrap();
    let x = Matrix::from_vec(2, 3, vec![0.0, 1.0, 2.0, 3.0, 5.0, 4.0]).unwrap();
    m.set_scaler(Scaler::fit(Scaling::Standard, &x)).unwrap();
    let mut f = ModelFile::new(m);
    f.provenance.feature_names = Some(vec!["a".into(), "b".into(), "c".into()]);
    f
}

fn table(rows: usize) -> String {
    let mut s = String::from("id,c,b,a\n");
    for i in 0..rows {
        let v = i as f32 * 0.37;
        s += &format!("r{i},{},{},{}\n", v.sin(), (v * 0.5).cos(), v % 3.0);
    }
    s
}

#[test]
fn chunks_give_what_the_whole_file_gives() {
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("t.csv");
    std::fs::write(&csv_path, table(1000)).unwrap();
    let file = model();
    let sel = ColumnSelection {
        label_column: Some("id".into()),
        ..Default::default()
    };
    let whole = load::for_model(&file, &csv_path, &sel).unwrap().data;
    let mut src = Source::for_model(&file, &csv_path, &sel).unwrap();
    src.rows = 300; // four chunks, the last one short
    let (mut rows, mut labels, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(c) = src.next_chunk().unwrap() {
        sizes.push(c.x.rows());
        rows.extend_from_slice(c.x.as_slice());
        labels.extend(c.labels.unwrap());
    }
    assert_eq!(sizes, vec![300, 300, 300, 100]);
    assert_eq!(rows, whole.x.as_slice(), "columns by the training names, in chunks");
    assert_eq!(labels, whole.labels.unwrap());

    // The same table as Parquet, through a Sink: the same rows again.
    let pq_path = dir.path().join("t.parquet");
    let names: Vec<String> = ["c", "b", "a"].map(String::from).to_vec();
    let mut sink = Sink::create(&pq_path, &names, &["id".to_string()]).unwrap();
    let raw = csv::read_raw(&csv_path, &ColumnSelection::default()).unwrap();
    let ids: Vec<String> = (0..raw.rows()).map(|i| raw.get(i, 0).to_string()).collect();
    let t = csv::read(
        &csv_path,
        &ColumnSelection {
            drop: vec!["id".into()],
            ..Default::default()
        },
    )
    .unwrap();
    sink.write(&t.matrix, &[ids]).unwrap();
    assert!(!pq_path.exists(), "nothing in place before finish");
    sink.finish().unwrap();
    let mut src = Source::for_model(&file, &pq_path, &sel).unwrap();
    src.rows = 256;
    assert_eq!(src.total_rows(), Some(1000));
    let mut rows = Vec::new();
    while let Some(c) = src.next_chunk().unwrap() {
        rows.extend_from_slice(c.x.as_slice());
    }
    assert_eq!(rows, whole.x.as_slice());

    // Calibrated from chunks, the threshold is the in-memory one.
    let rule = ThresholdRule::Contamination(0.05);
    let mut src = Source::for_model(&file, &pq_path, &sel).unwrap();
    src.rows = 99;
    let streamed = calibrate(&file, &mut src, ScoreMetric::Mse, rule, None).unwrap();
    let direct = crate::score::calibrate(&file.model, &whole.x, ScoreMetric::Mse, rule, None).unwrap();
    assert_eq!(streamed, direct);
}

fn npy_file(path: &Path, descr: &str, shape: &[usize], data: &[u8]) {
    let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
    let mut h = format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': ({},), }}",
        dims.join(", ")
    );
    while (h.len() + 11) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(h.len() as u16).to_le_bytes());
    bytes.extend_from_slice(h.as_bytes());
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn npy_arrays_stream_as_they_load() {
    let dir = tempfile::tempdir().unwrap();
    let f64s = dir.path().join("x.npy");
    let values: Vec<f64> = (0..3000).map(|i| (i as f64 * 0.731).sin()).collect();
    npy_file(
        &f64s,
        "<f8",
        &[1000, 3],
        &values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
    );
    let images = dir.path().join("im.npy");
    let pixels: Vec<u8> = (0..50 * 12).map(|i| (i * 37 % 256) as u8).collect();
    npy_file(&images, "|u1", &[50, 2, 2, 3], &pixels);
    let wide = ModelFile::new(Mlp::new(12, 2).config().init(1).unwrap());
    for (file, path) in [(model(), &f64s), (wide, &images)] {
        let whole = load::for_model(&file, path, &ColumnSelection::default()).unwrap().data;
        let mut src = Source::for_model(&file, path, &ColumnSelection::default()).unwrap();
        src.rows = 7;
        let mut rows = Vec::new();
        while let Some(c) = src.next_chunk().unwrap() {
            rows.extend_from_slice(c.x.as_slice());
        }
        assert_eq!(rows, whole.x.as_slice(), "{}", path.display());
    }
    // A non-finite value is found with its row, in whichever chunk it is.
    let mut bad = values.clone();
    bad[3 * 700 + 1] = f64::NAN;
    npy_file(
        &f64s,
        "<f8",
        &[1000, 3],
        &bad.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
    );
    let mut src = Source::for_model(&model(), &f64s, &ColumnSelection::default()).unwrap();
    src.rows = 64;
    let err = loop {
        match src.next_chunk() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the NaN was not found"),
            Err(e) => break e.to_string(),
        }
    };
    assert!(err.contains("row 701, column 2"), "{err}");
    let sel = ColumnSelection {
        columns: Some(vec!["a".into()]),
        ..Default::default()
    };
    assert!(
        Source::for_model(&model(), &f64s, &sel).is_err(),
        "columns apply to tables"
    );
}

#[test]
fn an_npy_sink_learns_its_row_count_at_the_end_and_an_unfinished_one_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.npy");
    let names = vec!["x".to_string(), "y".to_string()];
    let mut sink = Sink::create(&path, &names, &[]).unwrap();
    for k in 0..3 {
        let m = Matrix::from_vec(2, 2, vec![k as f32, 1.0, 2.0, -3.5]).unwrap();
        sink.write(&m, &[]).unwrap();
    }
    assert!(sink.write(&Matrix::zeros(1, 3), &[]).is_err());
    sink.finish().unwrap();
    let a = crate::data::npy::read(&path, false).unwrap();
    assert_eq!(a.shape, vec![6, 2]);
    assert_eq!(a.matrix.row(4), &[2.0, 1.0]);
    let other = dir.path().join("p.csv");
    let mut sink = Sink::create(&other, &names, &[]).unwrap();
    sink.write(&Matrix::zeros(1, 2), &[]).unwrap();
    drop(sink);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "only o.npy");
    assert!(Sink::create(&dir.path().join("o.npy"), &names, &["id".into()]).is_err());
    assert!(Sink::create(&dir.path().join("o.txt"), &names, &[]).is_err());
}

#[test]
fn streamed_training_rows_are_every_training_row_once_an_epoch_and_the_scaler_is_exact() {
    use crate::train::RowStream;
    let dir = tempfile::tempdir().unwrap();
    let n = 3000;
    let values: Vec<f64> = (0..n * 3)
        .map(|i| (i as f64 * 0.377).sin() * (1.0 + (i % 7) as f64))
        .collect();
    let npy = dir.path().join("x.npy");
    npy_file(
        &npy,
        "<f8",
        &[n, 3],
        &values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
    );
    let csv_path = dir.path().join("x.csv");
    let mut text = String::from("a,b,c\n");
    let x = crate::data::load(&npy, &ColumnSelection::default()).unwrap().x;
    for i in 0..n {
        let r = x.row(i);
        text += &format!("{},{},{}\n", r[0], r[1], r[2]);
    }
    std::fs::write(&csv_path, text).unwrap();
    let pq_path = dir.path().join("x.parquet");
    let mut w = pq::ChunkWriter::new(
        &pq_path,
        std::fs::File::create(&pq_path).unwrap(),
        &["a".into(), "b".into(), "c".into()],
        &[],
    )
    .unwrap();
    for part in [0..1000, 1000..1700, 1700..n] {
        let rows: Vec<usize> = part.collect();
        w.write(&pq_path, &x.select_rows(&rows), &[]).unwrap();
    }
    w.finish(&pq_path).unwrap();
    let scaling = crate::data::scale::Scaling::Standard;
    let mut models = Vec::new();
    for path in [&npy, &csv_path, &pq_path] {
        let mut t = TrainingRows::open(path, &ColumnSelection::default(), scaling, 0.2, 9).unwrap();
        let (train, held) = rows_split(&x, 0, t.rows.held);
        assert_eq!(
            (t.rows.rows(), t.held_out),
            (train.len(), held.len()),
            "{}",
            path.display()
        );
        assert!(
            (500..700).contains(&held.len()),
            "about a fifth held out: {}",
            held.len()
        );
        let expected = crate::data::scale::Scaler::fit(scaling, &x.select_rows(&train));
        assert_eq!(t.scaler, expected, "the scaler of the training rows, exactly");
        let mut want = x.select_rows(&train);
        expected.transform(&mut want);
        let key = |r: &[f32]| r.iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
        let mut want: Vec<Vec<u32>> = (0..want.rows()).map(|i| key(want.row(i))).collect();
        want.sort();
        t.rows.chunk = 256; // blocks of 1,024 rows: several per epoch
        let mut rng = crate::rng::Rng::new(4);
        let mut firsts = Vec::new();
        for _ in 0..2 {
            t.rows.begin_epoch(&mut rng).unwrap();
            let mut got = Vec::new();
            let mut buf = vec![0f32; 100 * 3];
            loop {
                let k = t.rows.next_rows(&mut buf).unwrap();
                if k == 0 {
                    break;
                }
                got.extend(buf[..k * 3].chunks(3).map(key));
            }
            firsts.push(got[..10].to_vec());
            got.sort();
            assert_eq!(got, want, "{}: each training row once", path.display());
        }
        assert_ne!(firsts[0], firsts[1], "another order each epoch");
        assert_eq!(t.valid.as_ref().unwrap().rows(), held.len());
        // A seed gives the same model, whatever the thread count.
        let mut model = Mlp::new(3, 2).with_hidden(&[8]).config().init(1).unwrap();
        model.set_scaler(t.scaler.clone()).unwrap();
        let cfg = crate::train::TrainConfig {
            epochs: 2,
            batch_size: 64,
            seed: 3,
            ..Default::default()
        };
        let report = crate::with_threads(Some(1), || {
            crate::train::fit_stream(&mut model, &mut t.rows, t.valid.clone(), t.sample.clone(), &cfg, |_| ())
        })
        .unwrap()
        .unwrap();
        assert_eq!(report.train_rows, train.len());
        assert!(report.history[1].valid_loss.is_some());
        models.push((path.clone(), model));
    }
    // The same rows from NPY and Parquet segments of other sizes train other orders, but
    // each file trains the same model again at two threads.
    let (path, one) = &models[2];
    let mut t = TrainingRows::open(path, &ColumnSelection::default(), scaling, 0.2, 9).unwrap();
    t.rows.chunk = 256;
    let mut two = Mlp::new(3, 2).with_hidden(&[8]).config().init(1).unwrap();
    two.set_scaler(t.scaler.clone()).unwrap();
    let cfg = crate::train::TrainConfig {
        epochs: 2,
        batch_size: 64,
        seed: 3,
        ..Default::default()
    };
    crate::with_threads(Some(2), || {
        crate::train::fit_stream(&mut two, &mut t.rows, t.valid.clone(), t.sample.clone(), &cfg, |_| ())
    })
    .unwrap()
    .unwrap();
    assert_eq!(one.layers, two.layers);
}

/// A rank's shard: its row groups when there are enough, else every N-th row; the
/// shards together are every row once. IDX files stream and shard as they load.
#[test]
fn shards_split_the_rows_and_idx_files_stream() {
    let dir = tempfile::tempdir().unwrap();
    let n = 300;
    let x = Matrix::from_vec(n, 2, (0..2 * n).map(|i| i as f32).collect()).unwrap();
    let pq_path = dir.path().join("x.parquet");
    let mut w = pq::ChunkWriter::new(
        &pq_path,
        std::fs::File::create(&pq_path).unwrap(),
        &["a".into(), "b".into()],
        &[],
    )
    .unwrap();
    for part in [0..100, 100..170, 170..n] {
        w.write(&pq_path, &x.select_rows(&part.collect::<Vec<_>>()), &[])
            .unwrap();
    }
    w.finish(&pq_path).unwrap();
    let sel = ColumnSelection::default();
    let rows = |m: &Matrix| (0..m.rows()).map(|i| m.row(i)[0] as usize / 2).collect::<Vec<_>>();
    // Three row groups, two ranks: groups 0 and 2, then group 1.
    let s0 = TrainingRows::shard(&pq_path, &sel, &Default::default(), 0, 2).unwrap();
    let s1 = TrainingRows::shard(&pq_path, &sel, &Default::default(), 1, 2).unwrap();
    assert_eq!(rows(&s0.x), (0..100).chain(170..n).collect::<Vec<_>>());
    assert_eq!(rows(&s1.x), (100..170).collect::<Vec<_>>());
    assert_eq!(
        (s0.total, s0.names.clone()),
        (n, vec!["a".to_string(), "b".to_string()])
    );
    // Four ranks, three groups: every fourth row.
    let s3 = TrainingRows::shard(&pq_path, &sel, &Default::default(), 3, 4).unwrap();
    assert_eq!(rows(&s3.x), (3..n).step_by(4).collect::<Vec<_>>());
    // An IDX array of 300 images of 2 x 3: chunks as the whole file, shards by rows.
    let idx = dir.path().join("x.idx");
    let bytes: Vec<u8> = (0..n * 6).map(|i| (i % 251) as u8).collect();
    crate::data::idx::write_u8(&idx, &[n, 2, 3], &bytes).unwrap();
    let whole = crate::data::load(&idx, &sel).unwrap().x;
    let file = ModelFile {
        model: Mlp::new(6, 2).config().init(1).unwrap(),
        provenance: Default::default(),
        anomaly: None,
        tabular: None,
        windows: None,
        neighbours: None,
    };
    let mut src = Source::for_model(&file, &idx, &sel).unwrap();
    src.rows = 128;
    let mut got = Vec::new();
    while let Some(c) = src.next_chunk().unwrap() {
        assert!(c.x.rows() <= 128);
        got.extend_from_slice(c.x.as_slice());
    }
    assert_eq!(got, whole.as_slice());
    let s = TrainingRows::shard(&idx, &sel, &Default::default(), 1, 3).unwrap();
    assert_eq!(s.x, whole.select_rows(&(1..n).step_by(3).collect::<Vec<_>>()));
    assert_eq!(s.image_shape, Some((2, 3, 1)));
    // A truncated IDX file is refused when the chunk reaches the missing bytes.
    std::fs::write(&idx, &std::fs::read(&idx).unwrap()[..16 + 6 * 200]).unwrap();
    let mut src = Source::for_model(&file, &idx, &sel).unwrap();
    src.rows = 128;
    assert!(src.next_chunk().unwrap().is_some());
    let e = src.next_chunk().unwrap_err().to_string();
    assert!(e.contains("the file has 1200"), "{e}");
}

/// A model of windows reads a series in chunks shorter and longer than a window: the windows
/// and their labels are those of the series read whole, and each step's label comes once.
#[test]
fn windows_stream_across_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.csv");
    let mut text = String::from("a,b,label\n");
    for t in 0..40 {
        text.push_str(&format!("{t},{},{}\n", 100 + t, t % 3));
    }
    std::fs::write(&path, text).unwrap();
    let sel = ColumnSelection {
        label_column: Some("label".into()),
        ..Default::default()
    };
    let windows = crate::data::window::Windows { length: 6, stride: 4 };
    let file = ModelFile {
        model: Mlp::new(12, 2).config().init(1).unwrap(),
        provenance: Default::default(),
        anomaly: None,
        tabular: None,
        windows: Some(windows),
        neighbours: None,
    };
    let whole = load::for_model(&file, &path, &sel).unwrap().data;
    assert_eq!(whole.x.rows(), 35, "every window, stride 1");
    for rows in [1, 4, 6, 7, 1000] {
        let mut src = Source::for_model(&file, &path, &sel).unwrap();
        src.rows = rows;
        let (mut x, mut labels, mut steps) = (Vec::new(), Vec::new(), Vec::new());
        while let Some(c) = src.next_chunk().unwrap() {
            assert!(c.x.rows() > 0);
            x.extend_from_slice(c.x.as_slice());
            labels.extend(c.labels.unwrap());
            steps.extend(c.step_labels.unwrap());
        }
        assert_eq!(x, whole.x.as_slice(), "chunks of {rows}");
        assert_eq!(Some(labels), whole.labels);
        assert_eq!(steps, (0..40).map(|t| (t % 3).to_string()).collect::<Vec<_>>());
    }
}

#[test]
fn a_loss_of_values_in_0_1_checks_the_streamed_batches() {
    // The loss comes from the model (an architecture file's, say), not from a reading flag:
    // streamed rows outside [0, 1] are refused under bce, and train under mse.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.csv");
    let rows: String = (0..300)
        .map(|i| format!("{},{}\n", (i % 7) as f32 * 0.5, (i % 3) as f32 * 0.1))
        .collect();
    std::fs::write(&path, format!("a,b\n{rows}")).unwrap();
    let cfg = crate::train::TrainConfig {
        epochs: 1,
        batch_size: 32,
        ..Default::default()
    };
    for (loss, refused) in [(crate::Loss::Bce, true), (crate::Loss::Mse, false)] {
        let mut t = TrainingRows::open(&path, &ColumnSelection::default(), Scaling::None, 0.0, 1).unwrap();
        let mut model = Mlp::new(2, 1)
            .with_activations(
                crate::Activation::Relu,
                crate::Activation::Identity,
                crate::Activation::Sigmoid,
            )
            .with_loss(loss)
            .config()
            .init(1)
            .unwrap();
        let r = crate::train::fit_stream(&mut model, &mut t.rows, None, t.sample.clone(), &cfg, |_| ());
        match r {
            Err(e) => assert!(
                refused && e.to_string().contains("loss bce needs values in [0, 1]"),
                "{e}"
            ),
            Ok(_) => assert!(!refused, "values up to 3 trained under bce"),
        }
    }
}
