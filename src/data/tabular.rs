//! Tables as they come: categorical columns (one-hot, with a bucket for rare and unseen
//! values), missing values (filled with the training mean or median, plus an indicator
//! column), and constant columns (dropped). Fitted on the training CSV and stored in the model
//! file, so every later command encodes its input the same way.

use super::csv::RawTable;
pub use super::csv::is_missing;
use crate::error::{Error, Hint, Result};
use crate::tensor::Matrix;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// The one-hot column of categories that were rare in training or never seen.
pub const OTHER: &str = "<other>";

/// Which columns are categorical.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum CategoricalColumns {
    /// None: a text value is an error.
    #[default]
    None,
    /// Every column with a value that is neither a number nor missing.
    Auto,
    /// These columns (by name).
    Names(Vec<String>),
}

/// The statistic that fills missing numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Impute {
    /// Mean of the column's training values.
    Mean,
    /// Median of the column's training values.
    Median,
}

impl std::str::FromStr for Impute {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "mean" => Ok(Impute::Mean),
            "median" => Ok(Impute::Median),
            _ => Err(format!("unknown imputation `{s}`; expected mean or median")),
        }
    }
}

/// How [`Tabular::fit`] treats the columns.
#[derive(Clone, Debug, PartialEq)]
pub struct TabularOptions {
    /// Categorical columns.
    pub categorical: CategoricalColumns,
    /// Fill missing numbers (`None`: a missing number is an error).
    pub impute: Option<Impute>,
    /// Keep at most this many categories per column (the most frequent); the rest go to
    /// [`OTHER`].
    pub max_categories: usize,
    /// Columns with more categories than `max_categories` are hashed into this many buckets
    /// instead ([`Column::Hashed`]); `None` keeps the most frequent and pools the rest.
    pub hash_buckets: Option<usize>,
}

impl Default for TabularOptions {
    fn default() -> Self {
        TabularOptions {
            categorical: CategoricalColumns::None,
            impute: None,
            max_categories: 50,
            hash_buckets: None,
        }
    }
}

/// How one input column becomes features.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Column {
    /// A number; `fill` replaces a missing value, and `indicator` adds `NAME.missing` (0/1).
    Numeric {
        /// Column name.
        name: String,
        /// Value used for a missing field (the training mean or median).
        fill: Option<f32>,
        /// Whether a `NAME.missing` indicator feature follows.
        indicator: bool,
    },
    /// One-hot over `categories`, then `NAME=<other>` for anything else (missing included
    /// unless the empty category was common in training).
    Categorical {
        /// Column name.
        name: String,
        /// Known categories, most frequent first.
        categories: Vec<String>,
    },
    /// Feature hashing for many categories: the value (missing = the empty string) sets
    /// feature `NAME#h` with `h` = [`category_hash`] mod `buckets`. Any value, seen in
    /// training or not, lands in a bucket; nothing but the bucket count is stored.
    Hashed {
        /// Column name.
        name: String,
        /// Number of buckets (features).
        buckets: usize,
    },
}

/// The category a field stands for: missing values (see [`is_missing`]) are the empty one.
fn category_key(v: &str) -> &str {
    if is_missing(v) { "" } else { v }
}

/// FNV-1a (64-bit) of the UTF-8 bytes: a hash fixed by its definition, so a model hashes the
/// same way on every machine and in every version.
pub fn category_hash(value: &str) -> u64 {
    value.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The fitted encoding of a table, stored in the model file (metadata key `tabular`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tabular {
    /// Input columns in file order (their names select the columns of later files).
    pub columns: Vec<Column>,
    /// Constant columns left out.
    pub dropped: Vec<String>,
}

impl Tabular {
    /// Fits the encoding to training rows; returns it with notes for the user (dropped
    /// columns, imputed columns, capped categories).
    ///
    /// # Errors
    /// [`Error::Parse`] naming line and column for a text value in a numeric column or a
    /// missing value without `impute`; [`Error::Config`] for an unknown categorical column.
    pub fn fit(path: &Path, raw: &RawTable, opts: &TabularOptions) -> Result<(Tabular, Vec<String>)> {
        if let CategoricalColumns::Names(names) = &opts.categorical
            && let Some(bad) = names.iter().find(|n| !raw.names.contains(n))
        {
            return Err(Error::setting(
                "categorical",
                bad,
                format!(
                    "{}: no such column; the columns are {}",
                    path.display(),
                    raw.names.join(", ")
                ),
            ));
        }
        let mut columns = Vec::new();
        let mut dropped = Vec::new();
        let mut notes = Vec::new();
        for (j, name) in raw.names.iter().enumerate() {
            let values = || (0..raw.rows()).map(move |i| raw.get(i, j));
            let is_text = |v: &str| !is_missing(v) && v.parse::<f64>().is_err();
            let categorical = match &opts.categorical {
                CategoricalColumns::None => false,
                CategoricalColumns::Auto => values().any(is_text),
                CategoricalColumns::Names(n) => n.contains(name),
            };
            if categorical {
                let mut counts: HashMap<&str, usize> = HashMap::new();
                for v in values() {
                    *counts.entry(category_key(v)).or_default() += 1;
                }
                let mut cats: Vec<(&str, usize)> = counts.into_iter().collect();
                cats.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                if cats.len() <= 1 {
                    dropped.push(name.clone());
                    notes.push(format!("column `{name}` has one value in the training data: dropped"));
                    continue;
                }
                if let Some(buckets) = opts.hash_buckets
                    && cats.len() > opts.max_categories
                {
                    notes.push(format!(
                        "column `{name}`: {} categories, hashed into {buckets} features `{name}#0`..`{name}#{}`",
                        cats.len(),
                        buckets - 1
                    ));
                    columns.push(Column::Hashed {
                        name: name.clone(),
                        buckets,
                    });
                    continue;
                }
                if cats.len() > opts.max_categories {
                    notes.push(format!(
                        "column `{name}`: {} categories; the {} most frequent are kept, the rest are `{OTHER}`",
                        cats.len(),
                        opts.max_categories
                    ));
                    cats.truncate(opts.max_categories);
                }
                columns.push(Column::Categorical {
                    name: name.clone(),
                    categories: cats.into_iter().map(|(c, _)| c.to_string()).collect(),
                });
                continue;
            }
            let mut present = Vec::with_capacity(raw.rows());
            let mut missing = 0usize;
            for (i, v) in values().enumerate() {
                if is_missing(v) && opts.impute.is_some() {
                    missing += 1;
                    continue;
                }
                let x = number(path, raw, (i, j), name, true)?;
                present.push(x);
            }
            if present.is_empty() {
                dropped.push(name.clone());
                notes.push(format!("column `{name}` is missing in every row: dropped"));
                continue;
            }
            let constant = present.iter().all(|&v| v == present[0]);
            if constant && missing == 0 {
                dropped.push(name.clone());
                notes.push(format!(
                    "column `{name}` is constant ({}) in the training data: dropped",
                    present[0]
                ));
                continue;
            }
            let fill = opts.impute.map(|how| match how {
                Impute::Mean => (present.iter().map(|&v| f64::from(v)).sum::<f64>() / present.len() as f64) as f32,
                Impute::Median => {
                    let mut s = present.clone();
                    s.sort_by(f32::total_cmp);
                    s[s.len() / 2]
                }
            });
            if missing > 0 {
                notes.push(format!(
                    "column `{name}`: {missing} missing values filled with {} and flagged in `{name}.missing`",
                    fill.unwrap_or(0.0)
                ));
            }
            columns.push(Column::Numeric {
                name: name.clone(),
                fill,
                indicator: missing > 0,
            });
        }
        if columns.is_empty() {
            return Err(Error::data(path, "every column is constant; nothing to learn from"));
        }
        Ok((Tabular { columns, dropped }, notes))
    }

    /// Names of the input columns this encoding reads.
    pub fn input_names(&self) -> Vec<String> {
        self.columns
            .iter()
            .map(|c| match c {
                Column::Numeric { name, .. } | Column::Categorical { name, .. } | Column::Hashed { name, .. } => {
                    name.clone()
                }
            })
            .collect()
    }

    /// The number of encoded features, `None` when it overflows.
    pub fn width(&self) -> Option<usize> {
        self.columns.iter().try_fold(0usize, |w, c| {
            w.checked_add(match c {
                Column::Numeric { indicator, .. } => 1 + usize::from(*indicator),
                Column::Categorical { categories, .. } => categories.len().checked_add(1)?,
                Column::Hashed { buckets, .. } => *buckets,
            })
        })
    }

    /// Checks a stored encoding (from a model file) before it is used: every hashed column has
    /// buckets, and the features number `width` (the model's input width).
    ///
    /// # Errors
    /// What is wrong, for the file's error message.
    pub fn check(&self, width: usize) -> std::result::Result<(), String> {
        if let Some(name) = self.columns.iter().find_map(|c| match c {
            Column::Hashed { name, buckets: 0 } => Some(name),
            _ => None,
        }) {
            return Err(format!("column `{name}` is hashed into 0 buckets"));
        }
        match self.width() {
            Some(w) if w == width => Ok(()),
            Some(w) => Err(format!("it encodes {w} features, the model reads {width}")),
            None => Err("its feature count overflows".into()),
        }
    }

    /// Names of the encoded features: `NAME`, `NAME.missing`, `NAME=CATEGORY`, `NAME=<other>`,
    /// `NAME#BUCKET`.
    pub fn feature_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.columns {
            match c {
                Column::Numeric { name, indicator, .. } => {
                    out.push(name.clone());
                    if *indicator {
                        out.push(format!("{name}.missing"));
                    }
                }
                Column::Categorical { name, categories } => {
                    out.extend(categories.iter().map(|k| format!("{name}={k}")));
                    out.push(format!("{name}={OTHER}"));
                }
                Column::Hashed { name, buckets } => out.extend((0..*buckets).map(|h| format!("{name}#{h}"))),
            }
        }
        out
    }

    /// Encodes rows that have (at least) the columns [`Tabular::input_names`], found by name.
    ///
    /// # Errors
    /// [`Error::Data`] for a missing column; [`Error::Parse`] naming line and column for a text
    /// value in a numeric column, or a missing number in a column trained without imputation.
    pub fn transform(&self, path: &Path, raw: &RawTable) -> Result<Matrix> {
        let index: Vec<usize> = self
            .input_names()
            .iter()
            .map(|n| {
                raw.names.iter().position(|r| r == n).ok_or_else(|| {
                    Error::data(
                        path,
                        format!("no column `{n}`; the model reads {}", self.input_names().join(", ")),
                    )
                })
            })
            .collect::<Result<_>>()?;
        let width = self.width().ok_or_else(|| Error::TooLarge {
            what: "the encoded table".into(),
            detail: "its feature count overflows".into(),
        })?;
        let cells = crate::bounds::product(&[raw.rows(), width], "the encoded table")?;
        crate::bounds::check_alloc(
            cells,
            4,
            format_args!("the encoded table ({} rows x {width} features)", raw.rows()),
        )?;
        let mut m = Matrix::zeros(raw.rows(), width);
        for i in 0..raw.rows() {
            let row = m.row_mut(i);
            let mut at = 0;
            for (&j, c) in index.iter().zip(&self.columns) {
                let v = raw.get(i, j);
                match c {
                    Column::Numeric { name, fill, indicator } => {
                        let x = if is_missing(v) && fill.is_some() {
                            if *indicator {
                                row[at + 1] = 1.0;
                            }
                            fill.unwrap()
                        } else {
                            number(path, raw, (i, j), name, false)?
                        };
                        row[at] = x;
                        at += 1 + usize::from(*indicator);
                    }
                    Column::Categorical { categories, .. } => {
                        let key = category_key(v);
                        let k = categories.iter().position(|c| c == key).unwrap_or(categories.len());
                        row[at + k] = 1.0;
                        at += categories.len() + 1;
                    }
                    Column::Hashed { buckets, .. } => {
                        row[at + (category_hash(category_key(v)) % *buckets as u64) as usize] = 1.0;
                        at += buckets;
                    }
                }
            }
        }
        Ok(m)
    }
}

/// Field `(row, column)` of `raw` as a finite number, or an error at its line and column;
/// with `hint`, the message says which training option accepts such a value.
fn number(path: &Path, raw: &RawTable, (i, j): (usize, usize), name: &str, hint: bool) -> Result<f32> {
    let v = raw.get(i, j);
    v.parse::<f32>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| Error::Parse {
            path: path.into(),
            line: raw.lines[i],
            column: raw.file_columns[j],
            message: format!(
                "column `{name}`: expected a number, found {}",
                if v.is_empty() {
                    "an empty field".to_string()
                } else {
                    crate::data::csv::quote(v)
                },
            ),
        })
        .map_err(|e| match (hint, is_missing(v)) {
            (false, _) => e,
            (true, true) => e.with_hint(Hint::Impute),
            (true, false) => e.with_hint(Hint::Categorical),
        })
}

#[cfg(test)]
mod tests {
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
}
