//! A text read as tokens (characters or words, lower-cased or not: the first byte chooses),
//! its vocabulary fitted and its tokens encoded as `train --text` does, then a model's output
//! over its windows written back as text.
#![no_main]
use hourglass::data::tabular::{CategoricalColumns, Tabular, TabularOptions};
use hourglass::data::text::{self, TextTokens, Unit};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((choice, bytes)) = hourglass_fuzz::split(data) else { return };
    let path = hourglass_fuzz::file("text.txt", bytes);
    let tokens = TextTokens {
        unit: if choice & 1 == 0 { Unit::Chars } else { Unit::Words },
        lowercase: choice & 2 != 0,
    };
    let Ok(raw) = text::read(&path, &tokens) else { return };
    let opts = TabularOptions {
        categorical: CategoricalColumns::Names(vec![text::COLUMN.into()]),
        max_categories: usize::from(choice >> 2).max(1),
        text: Some(tokens),
        ..TabularOptions::default()
    };
    let Ok((tab, _)) = Tabular::fit(&path, &raw, &opts) else { return };
    let Ok(x) = tab.transform(&path, &raw) else { return };
    let Some(vocab) = tab.vocabulary() else { return };
    // Windows of 2 steps over the one-hot steps, written back as a text.
    let steps = 2;
    if x.rows() < steps || x.cols() != vocab.len() {
        return;
    }
    let mut decoder = text::TextDecoder::new(vocab.clone(), steps);
    for i in 0..=x.rows() - steps {
        let window: Vec<f32> = (0..vocab.len())
            .flat_map(|c| (0..steps).map(move |t| (i + t, c)))
            .map(|(r, c)| x.row(r)[c])
            .collect();
        decoder.push(&window);
        let _ = text::decode(&vocab, &window, steps);
    }
    let back = decoder.finish();
    assert_eq!(back.len(), x.rows());
    let _ = text::join(&back, tokens.unit);
});
