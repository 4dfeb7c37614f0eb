//! Text as a sequence of tokens, for the sequence autoencoder of text: a UTF-8 file becomes a
//! one-column table ([`COLUMN`]) of its characters or words in order, which the table encoding
//! one-hot encodes over a stored vocabulary (the most frequent tokens, the rest `<other>`) and
//! which windows cut into sequences. How the text was cut
//! ([`TextTokens`]) is stored in the model, so every later command reads text the same way;
//! [`decode`] turns a model's output back into tokens and [`join`] into text.

use super::csv::RawTable;
use crate::error::{Error, Result};
use crate::fsutil::io_at;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The name of the table column a text's tokens become.
pub const COLUMN: &str = "token";

/// What one token of a text is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// A character (a Unicode scalar value); every run of white space is one space.
    Chars,
    /// A word (a run of letters, digits, `_` and inner apostrophes) or one punctuation
    /// character; white space separates tokens and is not one.
    Words,
}

impl std::fmt::Display for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unit::Chars => "chars",
            Unit::Words => "words",
        })
    }
}

impl std::str::FromStr for Unit {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "chars" => Ok(Unit::Chars),
            "words" => Ok(Unit::Words),
            _ => Err(format!("unknown text unit `{s}`; expected chars or words")),
        }
    }
}

/// How a text is cut into tokens; stored in the model with its table encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextTokens {
    /// Characters or words.
    pub unit: Unit,
    /// Lower-case the text first.
    #[serde(default)]
    pub lowercase: bool,
}

impl TextTokens {
    /// The default vocabulary size (most frequent tokens kept): 100 characters (printable
    /// ASCII and a few more) or 2,000 words.
    pub fn default_vocabulary(&self) -> usize {
        match self.unit {
            Unit::Chars => 100,
            Unit::Words => 2000,
        }
    }

    /// The tokens of `text` in order, each with its 1-based line.
    pub fn tokens(&self, text: &str) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let mut line = 1u64;
        let mut word = String::new();
        let mut word_line = 1u64;
        let mut space = false;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            let piece: String = if self.lowercase {
                c.to_lowercase().collect()
            } else {
                c.to_string()
            };
            match self.unit {
                Unit::Chars => {
                    if c.is_whitespace() {
                        if !space && !out.is_empty() {
                            out.push((" ".to_string(), line));
                        }
                        space = true;
                    } else {
                        out.push((piece, line));
                        space = false;
                    }
                }
                Unit::Words => {
                    // An apostrophe inside a word (don't, l'eau) belongs to it.
                    let inner =
                        c == '\'' && !word.is_empty() && chars.peek().is_some_and(|n| n.is_alphanumeric() || *n == '_');
                    if c.is_alphanumeric() || c == '_' || inner {
                        if word.is_empty() {
                            word_line = line;
                        }
                        word.push_str(&piece);
                    } else {
                        if !word.is_empty() {
                            out.push((std::mem::take(&mut word), word_line));
                        }
                        if !c.is_whitespace() {
                            out.push((piece, line));
                        }
                    }
                }
            }
            if c == '\n' {
                line += 1;
            }
        }
        if !word.is_empty() {
            out.push((word, word_line));
        }
        if self.unit == Unit::Chars && out.last().is_some_and(|(t, _)| t == " ") {
            out.pop();
        }
        out
    }
}

/// Reads the UTF-8 text at `path` as a one-column table of its tokens ([`COLUMN`]), each row
/// numbered by the line it comes from.
///
/// # Errors
/// [`Error::Io`] naming the file; [`Error::Parse`] naming the line and column of bytes that
/// are not UTF-8; [`Error::Data`] for a text without tokens, or of one token repeated.
pub fn read(path: &Path, tokens: &TextTokens) -> Result<RawTable> {
    let bytes = std::fs::read(path).map_err(io_at(path))?;
    table(path, from_utf8(path, &bytes)?, tokens)
}

/// `bytes` as UTF-8 text; `path` names them in errors.
fn from_utf8<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        let start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        Error::Parse {
            path: path.into(),
            line,
            column: good.len() - start + 1,
            message: "expected UTF-8 text: the byte at this column (counted in bytes) is not".into(),
        }
    })
}

/// The text `text` (named `path` in errors) as a one-column table of its tokens
/// ([`COLUMN`]), each row numbered by the line it comes from.
///
/// # Errors
/// [`Error::Data`] for a text without tokens, or of one token repeated.
pub fn table(path: &Path, text: &str, tokens: &TextTokens) -> Result<RawTable> {
    let tokens = tokens.tokens(text);
    if tokens.is_empty() {
        return Err(Error::data(path, "the text has no tokens"));
    }
    if tokens.iter().all(|(t, _)| *t == tokens[0].0) {
        return Err(Error::data(
            path,
            format!(
                "the text is one token, {:?}, repeated: nothing to learn from",
                tokens[0].0
            ),
        ));
    }
    let (fields, lines) = tokens.into_iter().unzip();
    Ok(RawTable {
        names: vec![COLUMN.to_string()],
        file_columns: vec![1],
        fields,
        lines,
        has_header: false,
        labels: None,
    })
}

/// The LSTM units of [`sequence_arch`] when none are asked for.
pub const SEQUENCE_UNITS: usize = 64;

/// The code width of [`sequence_arch`] when none is asked for.
pub const SEQUENCE_CODE: usize = 32;

/// The learning rate of the default sequence autoencoder when none is asked for (Adam):
/// measured on the README's text against 0.001 (BENCHMARKS.md, "Text").
pub const SEQUENCE_LR: f32 = 0.01;

/// The batch size of the default sequence autoencoder when none is asked for: small batches
/// give a small text's windows enough optimizer steps (BENCHMARKS.md, "Text").
pub const SEQUENCE_BATCH: usize = 64;

/// The architecture (TOML) of the default sequence autoencoder of text: an LSTM of `units`
/// reads a window of `steps` tokens (one-hot over `vocab`) into a code of `code` (tanh), a
/// `repeat` layer gives it to every step of an LSTM of `units` that writes the window back, a
/// width-1 `conv1d` maps each step to `vocab` logits, and a softmax turns them into each
/// step's distribution over the vocabulary; the loss is the categorical cross-entropy.
/// Measured on the README's text (BENCHMARKS.md, "Token sequences"): 57 % of held-out
/// characters come back with this loss, 16 % with sigmoid outputs and the binary one.
pub fn sequence_arch(steps: usize, vocab: usize, units: usize, code: usize) -> String {
    format!(
        r#"loss = "ce"

[[encoder]]
type = "lstm"
units = {units}

[[encoder]]
type = "dense"
units = {code}
activation = "tanh"

[[decoder]]
type = "repeat"
steps = {steps}

[[decoder]]
type = "lstm"
units = {units}
return_sequences = true

[[decoder]]
type = "conv1d"
filters = {vocab}
kernel = 1

[[decoder]]
type = "softmax"
"#
    )
}

/// Tokens written back as text: characters side by side, words and punctuation separated by
/// spaces.
pub fn join(tokens: &[&str], unit: Unit) -> String {
    match unit {
        Unit::Chars => tokens.concat(),
        Unit::Words => tokens.join(" "),
    }
}

/// The most probable token at each of the `steps` positions of `row`, a window's one-hot (or
/// probability) values channel-major over `vocab`.
pub fn decode<'a>(vocab: &[&'a str], row: &[f32], steps: usize) -> Vec<&'a str> {
    (0..steps)
        .map(|t| {
            let step: Vec<f32> = (0..vocab.len()).map(|c| row[c * steps + t]).collect();
            vocab[crate::tensor::argmax(&step)]
        })
        .collect()
}

/// A text written back from a model's outputs over every window (stride 1) of it, in order:
/// each step's token is the most probable under the mean of the distributions the windows
/// that contain it give (what [`StepScores`](super::window::StepScores) does for scores).
/// Holds one window's steps at a time.
#[derive(Clone, Debug)]
pub struct TextDecoder<'a> {
    vocab: Vec<&'a str>,
    steps: usize,
    /// The summed distributions of the steps that later windows still cover, oldest first.
    pending: std::collections::VecDeque<Vec<f32>>,
    tokens: Vec<&'a str>,
}

impl<'a> TextDecoder<'a> {
    /// A decoder for windows of `steps` steps over `vocab`'s channels.
    pub fn new(vocab: Vec<&'a str>, steps: usize) -> Self {
        TextDecoder {
            vocab,
            steps,
            pending: std::collections::VecDeque::new(),
            tokens: Vec::new(),
        }
    }

    /// Takes the next window's output (channel-major: `vocab × steps` values).
    pub fn push(&mut self, window: &[f32]) {
        let (v, l) = (self.vocab.len(), self.steps);
        while self.pending.len() < l {
            self.pending.push_back(vec![0.0; v]);
        }
        for (t, sums) in self.pending.iter_mut().enumerate() {
            for (c, s) in sums.iter_mut().enumerate() {
                *s += window[c * l + t];
            }
        }
        // No later window covers this one's first step.
        let first = self.pending.pop_front().expect("a window has steps");
        self.emit(&first);
    }

    fn emit(&mut self, sums: &[f32]) {
        let best = crate::tensor::argmax(sums);
        self.tokens.push(self.vocab[best]);
    }

    /// The tokens of the whole text.
    pub fn finish(mut self) -> Vec<&'a str> {
        while let Some(sums) = self.pending.pop_front() {
            self.emit(&sums);
        }
        self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(unit: Unit, lowercase: bool, text: &str) -> Vec<String> {
        TextTokens { unit, lowercase }
            .tokens(text)
            .into_iter()
            .map(|(t, _)| t)
            .collect()
    }

    #[test]
    fn characters_with_white_space_runs_as_one_space() {
        assert_eq!(cut(Unit::Chars, false, "  Ab\n\t c \n"), ["A", "b", " ", "c"]);
        assert_eq!(cut(Unit::Chars, true, "ÉtÉ"), ["é", "t", "é"]);
        let lines: Vec<u64> = TextTokens {
            unit: Unit::Chars,
            lowercase: false,
        }
        .tokens("a\nb\n\nc")
        .iter()
        .map(|t| t.1)
        .collect();
        assert_eq!(lines, [1, 1, 2, 2, 4]);
    }

    #[test]
    fn words_and_punctuation() {
        assert_eq!(
            cut(Unit::Words, false, "Don't stop, it's 3rd_place!\n'quoted'"),
            ["Don't", "stop", ",", "it's", "3rd_place", "!", "'", "quoted", "'"]
        );
        assert_eq!(cut(Unit::Words, true, "The THE"), ["the", "the"]);
        let t = TextTokens {
            unit: Unit::Words,
            lowercase: false,
        };
        assert_eq!(t.tokens("a\nbc d\n").iter().map(|x| x.1).collect::<Vec<_>>(), [1, 2, 2]);
        assert_eq!(join(&["a", "b", "!"], Unit::Words), "a b !");
        assert_eq!(join(&["a", " ", "b"], Unit::Chars), "a b");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_named_by_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.txt");
        std::fs::write(&p, b"ok\nab\xffc").unwrap();
        let tokens = TextTokens {
            unit: Unit::Chars,
            lowercase: false,
        };
        let e = read(&p, &tokens).unwrap_err();
        assert!(matches!(e, Error::Parse { line: 2, column: 3, .. }), "{e}");
        std::fs::write(&p, " \n\t").unwrap();
        assert!(read(&p, &tokens).unwrap_err().to_string().contains("no tokens"));
        std::fs::write(&p, " aaaa\n").unwrap();
        assert!(read(&p, &tokens).unwrap_err().to_string().contains("one token"));
        std::fs::write(&p, "ab\nc").unwrap();
        let raw = read(&p, &tokens).unwrap();
        assert_eq!(
            (raw.fields.as_slice(), raw.lines.as_slice()),
            (&["a", "b", " ", "c"].map(String::from)[..], &[1, 1, 1, 2][..])
        );
    }

    #[test]
    fn the_text_decoder_takes_each_steps_mean_over_its_windows() {
        // Vocabulary a, b; windows of 2 steps over 3 steps: step 1 is in both windows.
        let mut d = TextDecoder::new(vec!["a", "b"], 2);
        // Window 0: steps 0, 1 = (a 0.9, b 0.1), (a 0.6, b 0.4), channel-major.
        d.push(&[0.9, 0.6, 0.1, 0.4]);
        // Window 1: steps 1, 2 = (a 0.0, b 1.0), (a 0.2, b 0.8): step 1 sums a 0.6, b 1.4.
        d.push(&[0.0, 0.2, 1.0, 0.8]);
        assert_eq!(d.finish(), ["a", "b", "b"]);
    }

    #[test]
    fn decode_takes_each_steps_most_probable_channel() {
        // 3 channels, 2 steps, channel-major: step 0 picks channel 2, step 1 channel 0.
        let row = [0.1, 0.7, 0.2, 0.1, 0.7, 0.2];
        assert_eq!(decode(&["a", "b", "<other>"], &row, 2), ["<other>", "a"]);
    }
}
