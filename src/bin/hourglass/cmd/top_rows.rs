//! `hourglass top-rows`: the rows on which code units are most active.

use super::{load_model, outln};
use crate::args::TopRowsArgs;
use anyhow::Result;

pub fn run(a: TopRowsArgs) -> Result<()> {
    let file = load_model(&a.model)?;
    anyhow::ensure!(a.n > 0, "-n must be at least 1");
    let layer = a.layer.unwrap_or(file.model.encoder_layers() - 1);
    let mut source = hourglass::stream::Source::for_model(&file, &a.data, &a.columns.selection())?;
    for n in source.notes() {
        note!("note: {n}");
    }
    let mut top = hourglass::metrics::TopRows::new(&a.units, a.n);
    while let Some(chunk) = source.next_chunk()? {
        top.add(&file.model.encode_layer(&chunk.x, layer)?)?;
    }
    let found = top.finish();
    if let Some(out) = &a.output {
        let mut csv = String::from("unit,rank,row,activation\n");
        for (unit, rows) in &found {
            for (rank, (row, v)) in rows.iter().enumerate() {
                csv.push_str(&format!("{unit},{},{row},{v}\n", rank + 1));
            }
        }
        return Ok(hourglass::fsutil::write_bytes(out, csv.as_bytes())?);
    }
    if a.json {
        let units: Vec<serde_json::Value> = found
            .iter()
            .map(|(unit, rows)| {
                let rows: Vec<_> = rows
                    .iter()
                    .map(|(r, v)| serde_json::json!({"row": r, "activation": v}))
                    .collect();
                serde_json::json!({"unit": unit, "rows": rows})
            })
            .collect();
        outln!("{}", serde_json::json!({ "units": units }));
        return Ok(());
    }
    for (unit, rows) in &found {
        let list: Vec<String> = rows.iter().map(|(r, v)| format!("{r} ({v:.4})")).collect();
        outln!("unit {unit:<6} rows {}", list.join(", "));
    }
    Ok(())
}
