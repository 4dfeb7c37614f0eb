//! CSV tables: the numeric reader, then the tabular encoding (fit and transform) on the same
//! text, with column options chosen by the first byte.
#![no_main]
use hourglass::data::csv::{self, ColumnSelection};
use hourglass::data::tabular::{Tabular, TabularOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((sel, text)) = hourglass_fuzz::split(data) else { return };
    let path = hourglass_fuzz::file("t.csv", text);
    let selection = ColumnSelection {
        columns: (sel & 1 != 0).then(|| vec!["0".into(), "a".into()]),
        drop: if sel & 2 != 0 { vec!["1".into()] } else { Vec::new() },
        label_column: (sel & 4 != 0).then(|| "label".into()),
    };
    let _ = hourglass::data::load(&path, &selection);
    if let Ok(raw) = csv::read_raw(&path, &selection) {
        let opts = TabularOptions::default();
        if let Ok((tab, _)) = Tabular::fit(&path, &raw, &opts) {
            let _ = tab.transform(&path, &raw);
            let _ = tab.feature_names();
        }
    }
});
