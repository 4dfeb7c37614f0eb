//! The Parquet reader and writer on the committed fixtures and on files damaged on purpose or
//! found by the fuzzer.

use super::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn cols(names: &[&str]) -> ColumnSelection {
    ColumnSelection {
        columns: Some(names.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    }
}

#[test]
fn every_readable_kind_becomes_the_fields_a_csv_would_hold() {
    let sel = cols(&["x", "y", "i8", "u32", "i64", "b", "s", "dec"]);
    let raw = read_raw(&fixture("types.parquet"), &sel).unwrap();
    let rows: Vec<Vec<&str>> = (0..raw.rows())
        .map(|i| (0..8).map(|j| raw.get(i, j)).collect())
        .collect();
    assert_eq!(
        rows,
        vec![
            vec!["1.5", "0.5", "-128", "0", "-1099511627776", "1", "north", "1.25"],
            vec!["", "1.5", "0", "1", "0", "0", "south", "-3.5"],
            vec!["-2.25", "2.5", "1", "4000000000", "5", "1", "", "0.01"],
            vec!["0.0000001", "3.5", "2", "7", "6", "1", "north", "100"],
            vec!["3", "4.5", "127", "8", "1099511627776", "0", "east", "7.77"],
        ]
    );
    assert_eq!(raw.lines, vec![2, 3, 4, 5, 6]);
    assert_eq!(raw.file_columns, vec![1, 2, 3, 4, 5, 6, 7, 8]);
}

#[test]
fn refused_kinds_are_named_and_unchosen_ones_never_read() {
    let path = fixture("types.parquet");
    let err = read_raw(&path, &ColumnSelection::default()).unwrap_err().to_string();
    assert!(
        err.contains("column `ts`") && err.contains("convert it to a number"),
        "{err}"
    );
    let sel = ColumnSelection {
        drop: vec!["ts".into()],
        ..Default::default()
    };
    let err = read_raw(&path, &sel).unwrap_err().to_string();
    assert!(err.contains("column `lst`") && err.contains("nested"), "{err}");
    let sel = ColumnSelection {
        drop: vec!["ts".into(), "lst".into()],
        label_column: Some("s".into()),
        ..Default::default()
    };
    let raw = read_raw(&path, &sel).unwrap();
    assert_eq!(raw.names, vec!["x", "y", "i8", "u32", "i64", "b", "dec"]);
    let err = read_raw(&path, &cols(&["nope"])).unwrap_err().to_string();
    assert!(err.contains("nope") && err.contains("i64"), "{err}");
    // Numbers only: text needs --categorical, a null needs --impute.
    let err = read(&path, &cols(&["y", "s"])).unwrap_err();
    assert!(
        err.to_string()
            .contains("column `s`: expected numbers, found a text column"),
        "{err}"
    );
    assert!(format!("{err:?}").contains("Categorical"), "{err:?}");
    let err = read(&path, &cols(&["y", "x"])).unwrap_err();
    assert!(err.to_string().contains("row 2, column `x`: a missing value"), "{err}");
    let t = read(&path, &cols(&["u32", "b"])).unwrap();
    assert_eq!(t.matrix.as_slice(), &[0.0, 1.0, 1.0, 0.0, 4e9, 1.0, 7.0, 1.0, 8.0, 0.0]);
    // A label column of text beside numbers.
    let sel = ColumnSelection {
        columns: Some(vec!["y".into()]),
        label_column: Some("s".into()),
        ..Default::default()
    };
    let t = read(&path, &sel).unwrap();
    assert_eq!(t.labels.unwrap(), vec!["north", "south", "", "north", "east"]);
}

#[test]
fn every_codec_reads_the_same_numbers() {
    for codec in ["snappy", "gzip", "zstd", "none"] {
        let t = read(
            &fixture(&format!("codecs-{codec}.parquet")),
            &ColumnSelection::default(),
        )
        .unwrap();
        assert_eq!(t.names, vec!["a", "b"], "{codec}");
        assert_eq!(t.matrix.as_slice(), &[1.0, 0.25, 2.0, 0.5, 3.0, 0.75], "{codec}");
    }
}

#[test]
fn chunks_cross_row_groups_in_order() {
    let f = ParquetFile::open(&fixture("types.parquet")).unwrap();
    assert_eq!(f.rows(), 5);
    let mut chunks = f.into_chunks(&[2, 6], 3);
    let mut lens = Vec::new();
    let mut text = Vec::new();
    while let Some(c) = chunks.next().transpose().unwrap() {
        lens.push(c[0].len());
        text.extend(fields(&c[1]));
    }
    assert_eq!(lens, vec![3, 2]);
    assert_eq!(text, vec!["north", "south", "", "north", "east"]);
    assert_eq!(chunks.rows_done(), 5);
}

#[test]
fn written_chunks_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.parquet");
    let file = File::create(&path).unwrap();
    let names = vec!["code0".to_string(), "code 1".to_string()];
    let mut w = ChunkWriter::new(&path, file, &names, &["id".to_string()]).unwrap();
    let a = Matrix::from_vec(2, 2, vec![1.0, -2.5, 3.0, 0.125]).unwrap();
    let b = Matrix::from_vec(1, 2, vec![f32::MIN_POSITIVE, 7.0]).unwrap();
    w.write(&path, &a, &[vec!["r1".into(), "r,2".into()]]).unwrap();
    w.write(&path, &b, &[vec!["ü".into()]]).unwrap();
    w.finish(&path).unwrap();
    let sel = ColumnSelection {
        label_column: Some("id".into()),
        ..Default::default()
    };
    let t = read(&path, &sel).unwrap();
    assert_eq!(t.names, names);
    assert_eq!(t.matrix.as_slice(), &[1.0, -2.5, 3.0, 0.125, f32::MIN_POSITIVE, 7.0]);
    assert_eq!(t.labels.unwrap(), vec!["r1", "r,2", "ü"]);
}

#[test]
fn a_dictionary_larger_than_its_page_is_refused_before_it_is_allocated() {
    // Found by the fuzzer: a dictionary page of doubles whose header declares about two
    // billion values; the crate sized the dictionary (16 GB) before reading them.
    let path = fixture("huge-dictionary.parquet");
    let err = read_raw(&path, &Default::default()).unwrap_err().to_string();
    assert!(
        err.contains("huge-dictionary.parquet") && err.contains("a damaged dictionary page"),
        "{err}"
    );
}

#[test]
fn a_header_skipping_past_the_end_fails_at_once() {
    // Found by the fuzzer: a page header whose unknown field is a list of about two
    // billion doubles, at the end of the file. The crate skips each double by reading
    // eight bytes that are not there; reading nothing is not an error to it, so this took
    // minutes before reads past the end failed (`source::tests`). The dictionary check now
    // reads its first page and refuses it sooner.
    let path = fixture("endless-header.parquet");
    let err = read_raw(&path, &Default::default()).unwrap_err().to_string();
    assert!(err.contains("endless-header.parquet"), "{err}");
    assert!(crate::data::load(&path, &Default::default()).is_err());
}

#[test]
fn a_damaged_file_is_an_error_not_a_panic() {
    let bytes = std::fs::read(fixture("types.parquet")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.parquet");
    for cut in [4, 8, bytes.len() / 2, bytes.len() - 9, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        assert!(read_raw(&path, &cols(&["x", "s"])).is_err(), "cut at {cut}");
    }
    // Values damaged in the middle: whatever is read, no panic.
    let mut bad = bytes.clone();
    for b in &mut bad[100..400] {
        *b ^= 0x5a;
    }
    std::fs::write(&path, &bad).unwrap();
    let _ = read_raw(&path, &cols(&["x", "y", "i8", "u32", "i64", "b", "s", "dec"]));
}
