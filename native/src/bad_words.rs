//! C4's bad-words count over a document's tokens (`bad_words.count_tokens`): lower-cased tokens that
//! are one-word entries, plus positions where a phrase entry starts. Lower case is Python's own
//! (`unicode_answers::lower`).

use std::borrow::Cow;

use crate::unicode_answers;

use pyo3::prelude::*;
use pyo3::types::PyList;
use rustc_hash::FxHashMap;

/// One language's list, built once: single-token entries and phrases by their first token.
#[pyclass(module = "slm_curator_native", frozen)]
pub struct BadWords {
    /// Lower-cased word -> (is a one-word entry, the phrase entries starting with it): one probe a token.
    entries: FxHashMap<String, (bool, Vec<Vec<String>>)>,
}

#[pymethods]
impl BadWords {
    #[new]
    fn new(single: Vec<String>, phrases: Vec<Vec<String>>) -> Self {
        let mut entries: FxHashMap<String, (bool, Vec<Vec<String>>)> = FxHashMap::default();
        for word in single {
            entries.entry(word).or_default().0 = true;
        }
        for phrase in phrases.into_iter().filter(|p| !p.is_empty()) {
            entries.entry(phrase[0].clone()).or_default().1.push(phrase);
        }
        Self { entries }
    }

    /// Matches in `tokens` (each phrase counted at every position it starts, overlaps included).
    fn count(&self, py: Python<'_>, tokens: &Bound<'_, PyList>) -> PyResult<usize> {
        let objects = crate::py_strings(tokens)?;
        let mut lowered: Vec<Cow<'_, str>> = Vec::with_capacity(objects.len());
        for token in &objects {
            lowered.push(unicode_answers::lower(py, token.to_str()?)?);
        }
        let mut found = 0;
        for (i, word) in lowered.iter().enumerate() {
            if let Some((single, phrases)) = self.entries.get(word.as_ref()) {
                found += *single as usize;
                for phrase in phrases {
                    let end = i + phrase.len();
                    if end <= lowered.len()
                        && lowered[i..end]
                            .iter()
                            .zip(phrase)
                            .all(|(a, b)| a.as_ref() == b.as_str())
                    {
                        found += 1;
                    }
                }
            }
        }
        Ok(found)
    }
}
