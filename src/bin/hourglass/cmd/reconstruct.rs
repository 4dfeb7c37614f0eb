//! `hourglass reconstruct`.

use super::{load_model, read_for, stream_output};
use crate::args::ReconstructArgs;
use anyhow::{Context, Result};
use hourglass::data::text;
use hourglass::format::ModelFile;

pub fn run(a: ReconstructArgs) -> Result<()> {
    let mut file = load_model(&a.model)?;
    a.infer.apply(&mut file.model)?;
    let sel = hourglass::data::ColumnSelection {
        label_column: None,
        ..a.columns.selection()
    };
    if file.tabular.as_ref().is_some_and(|t| t.text.is_some()) {
        return reconstruct_text(&file, &a, &sel);
    }
    let m = &file.model;
    let names = if m.output_dim() == m.input_dim() {
        file.feature_names()
    } else {
        hourglass::data::numbered("c", m.output_dim()) // paired targets of another width
    };
    stream_output(&file, &a.data, &sel, &a.output, &names, |x| file.model.reconstruct(x))
}

/// Windows reconstructed at a time.
const CHUNK: usize = 4096;

/// A model of a text's windows: the text written back (`.txt`), or each window's input and
/// reconstruction as text with the share of its tokens that came back.
fn reconstruct_text(file: &ModelFile, a: &ReconstructArgs, sel: &hourglass::data::ColumnSelection) -> Result<()> {
    let tab = file.tabular.as_ref().expect("a text model");
    let unit = tab.text.expect("a text model").unit;
    let vocab = tab
        .vocabulary()
        .context("the model's text encoding is not one column of tokens")?;
    let steps = file.windows.map_or(1, |w| w.length);
    let x = read_for(file, &a.data, sel)?.data.x;
    let whole = a.output.extension().is_some_and(|e| e.eq_ignore_ascii_case("txt"));
    let mut decoder = text::TextDecoder::new(vocab.clone(), steps);
    let (mut inputs, mut outputs, mut shares) = (Vec::new(), Vec::new(), Vec::new());
    for start in (0..x.rows()).step_by(CHUNK) {
        let chunk = x.slice_rows(start, (start + CHUNK).min(x.rows()));
        let y = file.model.reconstruct(&chunk)?;
        for i in 0..y.rows() {
            if whole {
                decoder.push(y.row(i));
                continue;
            }
            let (input, output) = (
                text::decode(&vocab, chunk.row(i), steps),
                text::decode(&vocab, y.row(i), steps),
            );
            let same = input.iter().zip(&output).filter(|(p, q)| p == q).count();
            shares.push(same as f32 / steps as f32);
            inputs.push(text::join(&input, unit));
            outputs.push(text::join(&output, unit));
        }
    }
    let cannot = || format!("cannot write {}", a.output.display());
    if whole {
        let tokens = decoder.finish();
        let mut out = hourglass::fsutil::Outputs::new();
        out.file(&a.output, |w| {
            writeln!(w, "{}", text::join(&tokens, unit)).map_err(hourglass::fsutil::io_at(&a.output))
        })
        .and_then(|()| out.commit())
        .with_context(cannot)?;
        note!("wrote {} tokens to {}", tokens.len(), a.output.display());
        return Ok(());
    }
    let rows = shares.len();
    let m = hourglass::Matrix::from_vec(rows, 1, shares)?;
    let leading = [("input".to_string(), inputs), ("reconstruction".to_string(), outputs)];
    hourglass::data::write(&a.output, &m, &["recovered".to_string()], &leading).with_context(cannot)?;
    note!("wrote {rows} windows to {}", a.output.display());
    Ok(())
}
