//! `hourglass hash`, `search` and `eval-retrieval`.

use super::{load_model, outln, read_for};
use crate::args::{EvalRetrievalArgs, HashArgs, SearchArgs};
use anyhow::{Context, Result, bail};
use hourglass::Matrix;
use hourglass::hash::{self, Codes};
use rayon::prelude::*;
use std::path::Path;

pub fn hash(a: HashArgs) -> Result<()> {
    let file = load_model(&a.model)?;
    let mut data = Vec::new();
    let mut rows = 0;
    for path in &a.data {
        let ds = read_for(&file, path, &a.columns.selection())?.data;
        rows += ds.x.rows();
        data.extend(ds.x.into_vec());
    }
    let x = Matrix::from_vec(rows, file.model.input_dim(), data)?;
    let (codes, threshold) = Codes::of(&file.model, &x)?;
    codes
        .save(&a.output)
        .with_context(|| format!("cannot write {}", a.output.display()))?;
    note!(
        "wrote {rows} codes of {} bits to {} (code > {threshold}; {:.1} % of bits set)",
        codes.bits,
        a.output.display(),
        100.0 * codes.fraction_set()
    );
    Ok(())
}

pub fn search(a: SearchArgs) -> Result<()> {
    let db = Codes::load(&a.codes)?;
    let q = Codes::load(&a.queries)?;
    if q.bits != db.bits {
        bail!(
            "{}: codes of {} bits, the database {} has {}",
            a.queries.display(),
            q.bits,
            a.codes.display(),
            db.bits
        );
    }
    let t0 = std::time::Instant::now();
    let hits: Vec<Vec<hash::Hit>> = (0..q.rows())
        .into_par_iter()
        .map(|i| hash::search(&db, q.row(i), a.k, a.radius))
        .collect();
    let secs = t0.elapsed().as_secs_f64();
    let mut text = String::from("query,rank,item,distance\n");
    for (i, hs) in hits.iter().enumerate() {
        for (r, h) in hs.iter().enumerate() {
            text.push_str(&format!("{i},{},{},{}\n", r + 1, h.item, h.distance));
        }
    }
    hourglass::fsutil::write_bytes(&a.output, text.as_bytes())?;
    note!(
        "searched {} queries against {} codes in {secs:.3} s ({:.0} million code comparisons/s); wrote {}",
        q.rows(),
        db.rows(),
        (q.rows() * db.rows()) as f64 / secs.max(1e-9) / 1e6,
        a.output.display()
    );
    Ok(())
}

/// Labels as small integers (the same value, the same number).
fn label_ids(files: &[&Path], ids: &mut std::collections::HashMap<String, u32>) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    for f in files {
        for l in hourglass::data::load_labels(f)? {
            let next = ids.len() as u32;
            out.push(*ids.entry(l).or_insert(next));
        }
    }
    Ok(out)
}

pub fn eval(a: EvalRetrievalArgs) -> Result<()> {
    let codes = Codes::load(&a.codes)?;
    let mut ids = std::collections::HashMap::new();
    let files: Vec<&Path> = a.labels.iter().map(|p| p.as_path()).collect();
    let labels = label_ids(&files, &mut ids)?;
    if labels.len() != codes.rows() {
        bail!(
            "{} labels for the {} codes of {}",
            labels.len(),
            codes.rows(),
            a.codes.display()
        );
    }
    let (db, db_labels, q, q_labels) = match (a.queries, &a.query_codes, &a.query_labels) {
        (Some(n), _, _) => {
            if n == 0 || n >= codes.rows() {
                bail!(
                    "--queries {n}: must leave a database (the file has {} codes)",
                    codes.rows()
                );
            }
            (
                codes.slice(n, codes.rows()),
                labels[n..].to_vec(),
                codes.slice(0, n),
                labels[..n].to_vec(),
            )
        }
        (None, Some(qc), Some(ql)) => {
            let q = Codes::load(qc)?;
            if q.bits != codes.bits {
                bail!(
                    "{}: codes of {} bits, the database has {}",
                    qc.display(),
                    q.bits,
                    codes.bits
                );
            }
            let q_labels = label_ids(&[ql.as_path()], &mut ids)?;
            if q_labels.len() != q.rows() {
                bail!(
                    "{}: {} labels for {} query codes",
                    ql.display(),
                    q_labels.len(),
                    q.rows()
                );
            }
            (codes, labels, q, q_labels)
        }
        _ => bail!("say which rows are queries: --queries N or --query-codes FILE --query-labels FILE"),
    };
    let t0 = std::time::Instant::now();
    let r = hash::retrieval(&db, &db_labels, &q, &q_labels, a.k);
    let secs = t0.elapsed().as_secs_f64();
    if a.json {
        let mut v = serde_json::to_value(&r)?;
        v["bits"] = db.bits.into();
        v["seconds"] = secs.into();
        outln!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    outln!(
        "{} queries against {} items, {} bits (ties ranked by item index)",
        r.queries,
        r.database,
        db.bits
    );
    outln!("mAP              {:.4}", r.map);
    outln!("precision@{:<6} {:.4}", r.k, r.precision_at_k);
    Ok(())
}
