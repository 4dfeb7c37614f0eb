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
    /// Read the file as a text cut into these tokens (see [`super::text`]): a table of one
    /// categorical column, its vocabulary the `max_categories` most frequent tokens.
    pub text: Option<super::text::TextTokens>,
}

impl TabularOptions {
    /// Whether these settings ask for a table encoding (categorical columns, imputation, or a
    /// text read as tokens).
    pub fn asked(&self) -> bool {
        self.categorical != CategoricalColumns::None || self.impute.is_some() || self.text.is_some()
    }

    /// The refusal of these settings for `path`, which is not a table (an array, images).
    pub fn not_a_table(&self, path: &Path) -> Error {
        let name = if self.impute.is_some() { "impute" } else { "categorical" };
        Error::setting(
            name,
            path.display(),
            "categorical columns and imputation apply to CSV and Parquet tables only",
        )
    }

    /// Checks the settings that cannot go together.
    ///
    /// # Errors
    /// [`Error::Setting`] for 0 hash buckets, hashing without categorical columns, or a text
    /// with column settings.
    pub fn check(&self) -> Result<()> {
        if let Some(t) = &self.text
            && (self.categorical != CategoricalColumns::None || self.impute.is_some() || self.hash_buckets.is_some())
        {
            return Err(Error::setting(
                "text",
                t.unit,
                "a text's tokens are its one categorical column: other categorical columns, imputation and hashing do not apply",
            ));
        }
        if self.hash_buckets == Some(0) {
            return Err(Error::setting("hash_buckets", 0, "must be at least 1"));
        }
        if let Some(n) = self.hash_buckets
            && self.categorical == CategoricalColumns::None
        {
            return Err(Error::setting(
                "hash_buckets",
                n,
                "hashing applies to categorical columns: name them, or choose them automatically",
            ));
        }
        Ok(())
    }
}

impl Default for TabularOptions {
    fn default() -> Self {
        TabularOptions {
            categorical: CategoricalColumns::None,
            impute: None,
            max_categories: 50,
            hash_buckets: None,
            text: None,
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
    /// A text read as tokens (see [`super::text`]): the table is its one token column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<super::text::TextTokens>,
}

impl Tabular {
    /// The vocabulary of a text's encoding (see [`super::text`]): its one categorical
    /// column's categories then [`OTHER`], in the order of the one-hot channels; `None` when
    /// the encoding is not one column of categories.
    pub fn vocabulary(&self) -> Option<Vec<&str>> {
        match self.columns.as_slice() {
            [Column::Categorical { categories, .. }] => {
                Some(categories.iter().map(String::as_str).chain([OTHER]).collect())
            }
            _ => None,
        }
    }

    /// Fits the encoding to training rows; returns it with notes for the user (dropped
    /// columns, imputed columns, capped categories).
    ///
    /// # Errors
    /// [`Error::Parse`] naming line and column for a text value in a numeric column or a
    /// missing value without `impute`; [`Error::Config`] for an unknown categorical column.
    pub fn fit(path: &Path, raw: &RawTable, opts: &TabularOptions) -> Result<(Tabular, Vec<String>)> {
        let mut fit = TabularFit::new(path, &raw.names, opts, usize::MAX)?;
        fit.add(raw)?;
        if fit.needs_second_pass() {
            fit.add_second(raw);
        }
        fit.finish()
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

/// The statistics of one column while a [`TabularFit`] reads the rows.
#[derive(Debug)]
struct ColumnFit {
    /// Named as categorical, or (with automatic choice) a text value was seen.
    categorical: bool,
    /// Counts of the column's categories (missing values are the empty one); `None` once
    /// there were more distinct values than the fit's cap.
    counts: Option<HashMap<String, usize>>,
    /// The column's first value that is not a usable number, as the error it would be.
    bad: Option<Error>,
    missing: usize,
    present: usize,
    first: f32,
    constant: bool,
    sum: f64,
    /// Medians: counts of the values' order keys by their high 16 bits (pass 1), then by their
    /// low 16 bits within the median's high bits (pass 2).
    high: Vec<u32>,
    low: Vec<u32>,
}

/// The order key of a finite f32 (`total_cmp`'s order as an unsigned number).
fn order_key(v: f32) -> u32 {
    let b = v.to_bits();
    if b >> 31 == 1 { !b } else { b | 0x8000_0000 }
}

fn from_order_key(k: u32) -> f32 {
    f32::from_bits(if k >> 31 == 1 { k & 0x7fff_ffff } else { !k })
}

/// [`Tabular::fit`] over rows that come in chunks ([`TabularFit::add`] each, in file order),
/// with the same result: exact category counts (while a column has at most `cap` distinct
/// values), means summed in row order, and exact medians by a radix select over the values'
/// order keys, which needs a second pass over the rows ([`TabularFit::add_second`]) when
/// [`TabularFit::needs_second_pass`] says so.
#[derive(Debug)]
pub struct TabularFit {
    path: std::path::PathBuf,
    names: Vec<String>,
    opts: TabularOptions,
    cap: usize,
    columns: Vec<ColumnFit>,
    /// Pass 2: each column's median order key's high 16 bits and the rank within them.
    targets: Vec<Option<(u32, usize)>>,
}

impl TabularFit {
    /// Nothing read yet, for a table of columns `names`; a column with more than `cap`
    /// distinct values stops counting them (a categorical one must then be hashed).
    ///
    /// # Errors
    /// [`Error::Setting`] for a categorical column that is not in the table.
    pub fn new(path: &Path, names: &[String], opts: &TabularOptions, cap: usize) -> Result<TabularFit> {
        if let CategoricalColumns::Names(asked) = &opts.categorical
            && let Some(bad) = asked.iter().find(|n| !names.contains(n))
        {
            return Err(Error::setting(
                "categorical",
                bad,
                format!(
                    "{}: no such column; the columns are {}",
                    path.display(),
                    names.join(", ")
                ),
            ));
        }
        let median = opts.impute == Some(Impute::Median);
        if median {
            crate::bounds::check_alloc(
                names.len().saturating_mul(1 << 17),
                4,
                format_args!("the medians of {} columns", names.len()),
            )?;
        }
        let columns = names
            .iter()
            .map(|name| {
                let named = matches!(&opts.categorical, CategoricalColumns::Names(n) if n.contains(name));
                ColumnFit {
                    categorical: named,
                    counts: (opts.categorical != CategoricalColumns::None
                        && (named || opts.categorical == CategoricalColumns::Auto))
                        .then(HashMap::new),
                    bad: None,
                    missing: 0,
                    present: 0,
                    first: 0.0,
                    constant: true,
                    sum: 0.0,
                    high: if median { vec![0; 1 << 16] } else { Vec::new() },
                    low: Vec::new(),
                }
            })
            .collect();
        Ok(TabularFit {
            path: path.into(),
            names: names.to_vec(),
            opts: opts.clone(),
            cap,
            columns,
            targets: Vec::new(),
        })
    }

    /// Adds rows (pass 1).
    ///
    /// # Errors
    /// [`Error::Data`] when the chunk's columns are not the table's.
    pub fn add(&mut self, raw: &RawTable) -> Result<()> {
        if raw.names != self.names {
            return Err(Error::data(&self.path, "a chunk's columns differ from the table's"));
        }
        let auto = self.opts.categorical == CategoricalColumns::Auto;
        let impute = self.opts.impute.is_some();
        for (j, c) in self.columns.iter_mut().enumerate() {
            let name = &self.names[j];
            for i in 0..raw.rows() {
                let v = raw.get(i, j);
                let missing = is_missing(v);
                let mut overflow = false;
                if let Some(counts) = &mut c.counts {
                    let key = category_key(v);
                    if let Some(n) = counts.get_mut(key) {
                        *n += 1;
                    } else if counts.len() < self.cap {
                        counts.insert(key.to_string(), 1);
                    } else {
                        overflow = true;
                    }
                }
                if overflow {
                    c.counts = None;
                }
                if auto && !c.categorical && !missing && v.parse::<f64>().is_err() {
                    c.categorical = true;
                }
                // A categorical column needs no numbers (with automatic choice, from its
                // first text value on).
                if c.categorical {
                    continue;
                }
                if missing && impute {
                    c.missing += 1;
                    continue;
                }
                match number(&self.path, raw, (i, j), name, true) {
                    Ok(x) => {
                        if c.present == 0 {
                            c.first = x;
                        } else if x != c.first {
                            c.constant = false;
                        }
                        c.present += 1;
                        c.sum += f64::from(x);
                        if !c.high.is_empty() {
                            c.high[(order_key(x) >> 16) as usize] += 1;
                        }
                    }
                    Err(e) => {
                        c.bad.get_or_insert(e);
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether the medians need [`TabularFit::add_second`]: a second pass over the same rows.
    pub fn needs_second_pass(&self) -> bool {
        self.opts.impute == Some(Impute::Median)
            && self
                .columns
                .iter()
                .any(|c| !c.categorical && c.bad.is_none() && c.present > 0)
    }

    /// Adds rows to pass 2 (the same rows as pass 1, in the same order).
    pub fn add_second(&mut self, raw: &RawTable) {
        if self.targets.is_empty() {
            // The median is the value of rank present / 2 in order (as a sort would give).
            self.targets = self
                .columns
                .iter()
                .map(|c| {
                    if c.categorical || c.bad.is_some() || c.present == 0 || c.high.is_empty() {
                        return None;
                    }
                    let mut rank = c.present / 2;
                    for (hi, &n) in c.high.iter().enumerate() {
                        if rank < n as usize {
                            return Some((hi as u32, rank));
                        }
                        rank -= n as usize;
                    }
                    None
                })
                .collect();
            for (c, t) in self.columns.iter_mut().zip(&self.targets) {
                if t.is_some() {
                    c.low = vec![0; 1 << 16];
                }
            }
        }
        for (j, (c, t)) in self.columns.iter_mut().zip(&self.targets).enumerate() {
            let Some((hi, _)) = *t else { continue };
            for i in 0..raw.rows() {
                if let Ok(x) = raw.get(i, j).parse::<f32>()
                    && x.is_finite()
                    && !is_missing(raw.get(i, j))
                {
                    let k = order_key(x);
                    if k >> 16 == hi {
                        c.low[(k & 0xffff) as usize] += 1;
                    }
                }
            }
        }
    }

    /// The fitted encoding and the notes for the user.
    ///
    /// # Errors
    /// As [`Tabular::fit`]; [`Error::Data`] for a categorical column with more than the cap's
    /// distinct values and no hashing to put them in.
    pub fn finish(self) -> Result<(Tabular, Vec<String>)> {
        let opts = &self.opts;
        let mut columns = Vec::new();
        let mut dropped = Vec::new();
        let mut notes = Vec::new();
        let mut targets = self.targets.into_iter().chain(std::iter::repeat(None));
        for (name, c) in self.names.iter().zip(self.columns) {
            let target = targets.next().flatten();
            if c.categorical {
                let Some(counts) = c.counts else {
                    let Some(buckets) = opts.hash_buckets else {
                        return Err(Error::data(
                            &self.path,
                            format!(
                                "column `{name}` has more than {} distinct values: read in chunks, its most frequent categories cannot be counted exactly; hash it (hash_buckets) instead",
                                self.cap
                            ),
                        ));
                    };
                    notes.push(format!(
                        "column `{name}`: more than {} categories, hashed into {buckets} features `{name}#0`..`{name}#{}`",
                        self.cap,
                        buckets - 1
                    ));
                    columns.push(Column::Hashed {
                        name: name.clone(),
                        buckets,
                    });
                    continue;
                };
                let mut cats: Vec<(String, usize)> = counts.into_iter().collect();
                cats.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
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
                    categories: cats.into_iter().map(|(c, _)| c).collect(),
                });
                continue;
            }
            if let Some(e) = c.bad {
                return Err(e);
            }
            if c.present == 0 {
                dropped.push(name.clone());
                notes.push(format!("column `{name}` is missing in every row: dropped"));
                continue;
            }
            if c.constant && c.missing == 0 {
                dropped.push(name.clone());
                notes.push(format!(
                    "column `{name}` is constant ({}) in the training data: dropped",
                    c.first
                ));
                continue;
            }
            let fill = match opts.impute {
                None => None,
                Some(Impute::Mean) => Some((c.sum / c.present as f64) as f32),
                Some(Impute::Median) => {
                    let (hi, mut rank) = target
                        .ok_or_else(|| Error::data(&self.path, "the medians need a second pass over the rows"))?;
                    let mut lo = 0;
                    for (k, &n) in c.low.iter().enumerate() {
                        if rank < n as usize {
                            lo = k as u32;
                            break;
                        }
                        rank -= n as usize;
                    }
                    Some(from_order_key(hi << 16 | lo))
                }
            };
            if c.missing > 0 {
                notes.push(format!(
                    "column `{name}`: {} missing values filled with {} and flagged in `{name}.missing`",
                    c.missing,
                    fill.unwrap_or(0.0)
                ));
            }
            columns.push(Column::Numeric {
                name: name.clone(),
                fill,
                indicator: c.missing > 0,
            });
        }
        if columns.is_empty() {
            return Err(Error::data(
                &self.path,
                "every column is constant; nothing to learn from",
            ));
        }
        Ok((
            Tabular {
                columns,
                dropped,
                text: None,
            },
            notes,
        ))
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
mod tests;
