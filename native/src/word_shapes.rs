//! Gopher quality's word statistics (`gopher_quality.token_counts`): one pass over the document's
//! tokens. Character classes are Python's (`str.isalpha`, via `unicode_answers`) and datatrove's
//! punctuation table, handed over once.

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::unicode_answers;

const SYMBOL: u8 = 0;
const LETTER: u8 = 1;
const OTHER: u8 = 2;

/// datatrove's punctuation characters, for shapes of tokens.
#[pyclass(module = "slm_curator_native", frozen)]
pub struct WordShapes {
    ascii: [bool; 128],
    other: FxHashSet<char>,
}

impl WordShapes {
    fn is_punct(&self, c: char) -> bool {
        if c.is_ascii() {
            self.ascii[c as usize]
        } else {
            self.other.contains(&c)
        }
    }

    /// (shape, characters): a letter word when `str.isalpha`, else a symbol word when every character
    /// is punctuation, else a letter word when one character is alphabetic.
    fn shape(&self, py: Python<'_>, text: &str) -> PyResult<(u8, usize)> {
        if text.is_ascii() {
            let bytes = text.as_bytes();
            let kind = if !bytes.is_empty() && bytes.iter().all(u8::is_ascii_alphabetic) {
                LETTER
            } else if bytes.iter().all(|&b| self.ascii[b as usize]) {
                SYMBOL
            } else if bytes.iter().any(u8::is_ascii_alphabetic) {
                LETTER
            } else {
                OTHER
            };
            return Ok((kind, bytes.len()));
        }
        let (mut chars, mut alpha, mut punct) = (0, 0, 0);
        for c in text.chars() {
            chars += 1;
            alpha += unicode_answers::is_alpha(py, c)? as usize;
            punct += self.is_punct(c) as usize;
        }
        let kind = if alpha == chars {
            LETTER // non-ASCII text is never empty
        } else if punct == chars {
            SYMBOL
        } else if alpha > 0 {
            LETTER
        } else {
            OTHER
        };
        Ok((kind, chars))
    }
}

#[pymethods]
impl WordShapes {
    #[new]
    fn new(punctuation: &str) -> Self {
        let mut ascii = [false; 128];
        let mut other = FxHashSet::default();
        for c in punctuation.chars() {
            if c.is_ascii() {
                ascii[c as usize] = true;
            } else {
                other.insert(c);
            }
        }
        Self { ascii, other }
    }

    /// (symbol words, their characters, characters of all words, words with a letter, distinct stop
    /// words present), as `gopher_quality.token_counts`.
    fn counts(
        &self,
        py: Python<'_>,
        tokens: &Bound<'_, PyList>,
        stop_words: Vec<String>,
    ) -> PyResult<(usize, usize, usize, usize, usize)> {
        let stops: FxHashMap<&str, usize> = stop_words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.as_str(), i))
            .collect();
        let mut seen = vec![false; stop_words.len()];
        let (mut symbols, mut symbol_chars, mut chars, mut alpha) = (0, 0, 0, 0);
        for item in tokens.iter() {
            let token = item.cast_into::<PyString>()?;
            let text = token.to_str()?;
            let (kind, len) = self.shape(py, text)?;
            chars += len;
            match kind {
                SYMBOL => {
                    symbols += 1;
                    symbol_chars += len;
                }
                LETTER => alpha += 1,
                _ => {}
            }
            if let Some(&i) = stops.get(text) {
                seen[i] = true;
            }
        }
        let stop_hits = seen.iter().filter(|&&s| s).count();
        Ok((symbols, symbol_chars, chars, alpha, stop_hits))
    }
}
