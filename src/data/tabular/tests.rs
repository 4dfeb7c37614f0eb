//! Tests of the table encoding: categories, imputation, constant columns, hashing, and the
//! fit over chunks against the fit in memory.

use super::*;
use crate::data::csv::{ColumnSelection, read_raw};

fn table(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.csv");
    std::fs::write(&p, text).unwrap();
    (dir, p)
}

#[test]
fn categories_missing_values_and_constant_columns() {
    let (_d, p) = table("age,color,k,size\n30,red,1,\n40,blue,1,2\n,red,1,4\nNA,green,1,6\n");
    let raw = read_raw(&p, &ColumnSelection::default()).unwrap();
    let opts = TabularOptions {
        categorical: CategoricalColumns::Auto,
        impute: Some(Impute::Mean),
        max_categories: 2,
        hash_buckets: None,
        text: None,
    };
    let (t, notes) = Tabular::fit(&p, &raw, &opts).unwrap();
    assert_eq!(t.dropped, ["k"]);
    assert_eq!(
        t.feature_names(),
        [
            "age",
            "age.missing",
            "color=red",
            "color=blue",
            "color=<other>",
            "size",
            "size.missing"
        ]
    );
    assert!(notes.iter().any(|n| n.contains("`k` is constant")), "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("3 categories")), "{notes:?}");
    let m = t.transform(&p, &raw).unwrap();
    // Row 3: age missing -> mean 35 and flagged; green is rare -> <other>; size 6.
    assert_eq!(m.row(3), [35.0, 1.0, 0.0, 0.0, 1.0, 6.0, 0.0]);
    assert_eq!(m.row(0), [30.0, 0.0, 1.0, 0.0, 0.0, 4.0, 1.0]);
    // Unseen category at scoring time -> <other>.
    let (_d2, q) = table("age,color,size\n50,purple,3\n");
    let raw2 = read_raw(
        &q,
        &ColumnSelection {
            columns: Some(t.input_names()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        t.transform(&q, &raw2).unwrap().row(0),
        [50.0, 0.0, 0.0, 0.0, 1.0, 3.0, 0.0]
    );
}

/// High-cardinality columns are hashed into buckets (FNV-1a, checked against its published
/// test vectors); seen and unseen values set exactly one bucket; low-cardinality columns
/// stay one-hot.
#[test]
fn many_categories_are_hashed_into_buckets() {
    assert_eq!(category_hash(""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(category_hash("a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(category_hash("foobar"), 0x8594_4171_f739_67e8);
    let (_d, path) = table("city,size,color\nparis,1,red\nlyon,2,blue\nnice,3,red\nbrest,4,blue\n");
    let raw = read_raw(&path, &ColumnSelection::default()).unwrap();
    let opts = TabularOptions {
        categorical: CategoricalColumns::Auto,
        max_categories: 3,
        hash_buckets: Some(8),
        ..TabularOptions::default()
    };
    let (tab, notes) = Tabular::fit(&path, &raw, &opts).unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("column `city`: 4 categories, hashed into 8 features"))
    );
    let names = tab.feature_names();
    assert_eq!(names[..8], (0..8).map(|h| format!("city#{h}")).collect::<Vec<_>>()[..]);
    assert_eq!(&names[8..], ["size", "color=blue", "color=red", "color=<other>"]);
    let (_d2, path2) = table("city,size,color\nparis,5,red\ntoulouse,6,red\n,7,blue\n");
    let raw2 = read_raw(&path2, &ColumnSelection::default()).unwrap();
    let m = tab.transform(&path2, &raw2).unwrap();
    for (i, city) in ["paris", "toulouse", ""].iter().enumerate() {
        let row = &m.row(i)[..8];
        let bucket = (category_hash(city) % 8) as usize;
        assert_eq!(row.iter().sum::<f32>(), 1.0);
        assert_eq!(row[bucket], 1.0, "{city}");
    }
    // The encoding survives the model file's JSON.
    let back: Tabular = serde_json::from_str(&serde_json::to_string(&tab).unwrap()).unwrap();
    assert_eq!(back, tab);
}

#[test]
fn text_in_a_numeric_column_is_named_with_a_hint() {
    let (_d, p) = table("a,b\n1,2\n3,x\n");
    let raw = read_raw(&p, &ColumnSelection::default()).unwrap();
    let e = Tabular::fit(&p, &raw, &TabularOptions::default()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Hinted {
                hint: Hint::Categorical,
                ..
            }
        ),
        "{e:?}"
    );
    let err = e.to_string();
    assert!(err.contains("t.csv:3:2") && err.contains("`categorical`"), "{err}");
    let (_d, p) = table("a,b\n1,2\n3,\n");
    let raw = read_raw(&p, &ColumnSelection::default()).unwrap();
    let e = Tabular::fit(&p, &raw, &TabularOptions::default()).unwrap_err();
    assert!(matches!(e, Error::Hinted { hint: Hint::Impute, .. }), "{e:?}");
    let err = e.to_string();
    assert!(err.contains("t.csv:3:2") && err.contains("`impute`"), "{err}");
}

/// Rows `range` of `raw`, as a chunk of the file would hold them.
fn rows_of(raw: &RawTable, range: std::ops::Range<usize>) -> RawTable {
    let w = raw.names.len();
    RawTable {
        names: raw.names.clone(),
        file_columns: raw.file_columns.clone(),
        fields: raw.fields[range.start * w..range.end * w].to_vec(),
        lines: raw.lines[range.clone()].to_vec(),
        has_header: raw.has_header,
        labels: None,
    }
}

/// Read in chunks of any size, the fit is the whole table's: categories and their order,
/// means, exact medians (of negative, tied and signed-zero values), dropped columns, notes;
/// a categorical column with more distinct values than the cap is hashed, or refused.
#[test]
fn fits_in_chunks_equal_the_whole_fit() {
    let mut rng = crate::rng::Rng::new(11);
    let mut text = String::from("num,neg,cat,mixed,const,gaps\n");
    for i in 0..203 {
        let num = format!("{:.3}", rng.uniform() * 100.0);
        let neg = ["-0", "0", "-2.5", "3", "-2.5"][rng.below(5)];
        let cat = ["red", "blue", "green", "NA", "blue"][rng.below(5)];
        let mixed = if i == 150 {
            "word".to_string()
        } else {
            format!("{}", rng.below(9))
        };
        let gaps = if rng.uniform() < 0.3 {
            "".to_string()
        } else {
            format!("{:.2}", rng.uniform() - 0.5)
        };
        text.push_str(&format!("{num},{neg},{cat},{mixed},7,{gaps}\n"));
    }
    let (_d, p) = table(&text);
    let raw = read_raw(&p, &ColumnSelection::default()).unwrap();
    for impute in [None, Some(Impute::Mean), Some(Impute::Median)] {
        for categorical in [
            CategoricalColumns::Auto,
            CategoricalColumns::Names(vec!["cat".into(), "mixed".into()]),
        ] {
            let opts = TabularOptions {
                categorical,
                impute,
                max_categories: 4,
                hash_buckets: None,
                text: None,
            };
            let whole = Tabular::fit(&p, &raw, &opts);
            for chunk in [1, 7, 64, 203] {
                let mut fit = TabularFit::new(&p, &raw.names, &opts, 1000).unwrap();
                let parts: Vec<RawTable> = (0..203)
                    .step_by(chunk)
                    .map(|a| rows_of(&raw, a..(a + chunk).min(203)))
                    .collect();
                let got = (|| {
                    for part in &parts {
                        fit.add(part)?;
                    }
                    if fit.needs_second_pass() {
                        for part in &parts {
                            fit.add_second(part);
                        }
                    }
                    fit.finish()
                })();
                match (&whole, &got) {
                    (Ok(w), Ok(g)) => assert_eq!(w, g, "{impute:?} chunks of {chunk}"),
                    (Err(w), Err(g)) => assert_eq!(w.to_string(), g.to_string()),
                    _ => panic!("{impute:?} chunks of {chunk}: {whole:?} against {got:?}"),
                }
            }
        }
    }
    // The medians are the sorted values' middle ones, exactly.
    let opts = TabularOptions {
        categorical: CategoricalColumns::Auto,
        impute: Some(Impute::Median),
        ..Default::default()
    };
    let (tab, _) = Tabular::fit(&p, &raw, &opts).unwrap();
    let fills: Vec<Option<f32>> = tab
        .columns
        .iter()
        .filter_map(|c| match c {
            Column::Numeric { fill, .. } => Some(*fill),
            _ => None,
        })
        .collect();
    let j = raw.names.iter().position(|n| n == "neg").unwrap();
    let mut v: Vec<f32> = (0..203).map(|i| raw.get(i, j).parse().unwrap()).collect();
    v.sort_by(f32::total_cmp);
    assert_eq!(fills[1].unwrap().to_bits(), v[101].to_bits());
    // Past the cap a categorical column is hashed when hashing is on, else refused.
    let few = |hash_buckets| TabularOptions {
        categorical: CategoricalColumns::Names(vec!["num".into()]),
        hash_buckets,
        ..Default::default()
    };
    let one = ColumnSelection {
        columns: Some(vec!["num".into()]),
        ..Default::default()
    };
    let raw = read_raw(&p, &one).unwrap();
    let mut fit = TabularFit::new(&p, &raw.names, &few(Some(8)), 10).unwrap();
    fit.add(&raw).unwrap();
    let (tab, notes) = fit.finish().unwrap();
    assert_eq!(
        tab.columns[0],
        Column::Hashed {
            name: "num".into(),
            buckets: 8
        }
    );
    assert!(notes[0].contains("more than 10 categories"), "{notes:?}");
    let mut fit = TabularFit::new(&p, &raw.names, &few(None), 10).unwrap();
    fit.add(&raw).unwrap();
    let e = fit.finish().unwrap_err().to_string();
    assert!(e.contains("column `num` has more than 10 distinct values"), "{e}");
}
