//! C4's line cleaning (`c4.clean`): which lines stay, why the others go, the kept lines' sentences by
//! spaCy's rule-based sentencizer (`tokenize.count_sentences`). Citation markers are removed by the
//! Python reference (`cite`), only on lines holding a "["; character classes and case are Python's.

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};
use rustc_hash::FxHashSet;

use crate::tokenizer::is_py_space;
use crate::unicode_answers;

/// Line counts (kept, long word, no terminal punctuation, few words, javascript, policy), sentences,
/// lorem ipsum seen, curly bracket seen.
type Counts = ([usize; 6], usize, bool, bool);

/// One `C4Config`'s line rules, the Python side's word lists and the sentence-terminal characters,
/// built once.
#[pyclass(module = "slm_curator_native", frozen)]
pub struct C4Lines {
    terminals: FxHashSet<char>,
    end_punctuation: Vec<char>,
    policy_keys: Vec<String>,
    policy_phrases: Vec<String>,
    no_terminal_punct: bool,
    min_words: usize,
    max_word_length: usize,
    lorem_ipsum: bool,
    javascript: bool,
    curly_bracket: bool,
    policy: bool,
    citations: bool,
}

impl C4Lines {
    fn is_terminal(&self, token: &str) -> bool {
        let mut chars = token.chars();
        matches!((chars.next(), chars.next()), (Some(c), None) if self.terminals.contains(&c))
    }

    fn is_punct(py: Python<'_>, token: &str) -> PyResult<bool> {
        for c in token.chars() {
            if !unicode_answers::is_punct(py, c)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// `tokenize.count_sentences`: a sentence ends at a terminal token; the next token that is neither
    /// terminal nor punctuation starts another.
    fn sentences(&self, py: Python<'_>, tokens: &Bound<'_, PyList>) -> PyResult<usize> {
        let texts = crate::py_strings(tokens)?;
        let words: Vec<&str> = texts.iter().map(|t| t.to_str()).collect::<PyResult<_>>()?;
        if words.is_empty() {
            return Ok(0);
        }
        let (n, mut sentences, mut i) = (words.len(), 1, 0);
        while i < n {
            if !self.is_terminal(words[i]) {
                i += 1;
                continue;
            }
            let mut j = i + 1;
            while j < n && (self.is_terminal(words[j]) || Self::is_punct(py, words[j])?) {
                j += 1;
            }
            if j == n {
                break;
            }
            sentences += 1;
            i = j + 1; // the next terminal after j
        }
        Ok(sentences)
    }
}

#[pymethods]
impl C4Lines {
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(
        terminals: &str,
        end_punctuation: &str,
        policy_keys: Vec<String>,
        policy_phrases: Vec<String>,
        no_terminal_punct: bool,
        min_words: usize,
        max_word_length: usize,
        lorem_ipsum: bool,
        javascript: bool,
        curly_bracket: bool,
        policy: bool,
        citations: bool,
    ) -> Self {
        Self {
            terminals: terminals.chars().collect(),
            end_punctuation: end_punctuation.chars().collect(),
            policy_keys,
            policy_phrases,
            no_terminal_punct,
            min_words,
            max_word_length,
            lorem_ipsum,
            javascript,
            curly_bracket,
            policy,
            citations,
        }
    }

    /// (the kept lines joined, counts) for a document's lines and each line's tokens; `cite(line)`
    /// gives (the line without citation markers, its tokens), or None when it has none.
    fn clean(
        &self,
        py: Python<'_>,
        lines: &Bound<'_, PyList>,
        line_tokens: &Bound<'_, PyList>,
        cite: &Bound<'_, PyAny>,
    ) -> PyResult<(String, Counts)> {
        let mut kept: Vec<String> = Vec::new();
        let mut counts = [0usize; 6];
        let (mut sentences, mut lorem, mut curly) = (0, false, false);
        for (raw, tokens) in lines.iter().zip(line_tokens.iter()) {
            let raw = raw.cast_into::<PyString>()?;
            let stripped = raw.to_str()?.trim_matches(is_py_space);
            if stripped.is_empty() {
                continue;
            }
            let mut line = std::borrow::Cow::Borrowed(stripped);
            let mut tokens = tokens.cast_into::<PyList>()?;
            let n_words = line.split(is_py_space).filter(|w| !w.is_empty()).count();
            if self.max_word_length > 0 && line.chars().count() > self.max_word_length {
                let longest = line
                    .split(is_py_space)
                    .map(|w| w.chars().count())
                    .max()
                    .unwrap_or(0);
                if longest > self.max_word_length {
                    counts[1] += 1;
                    continue;
                }
            }
            if self.citations && line.contains('[') {
                let cited = cite.call1((line.as_ref(),))?;
                if !cited.is_none() {
                    let (text, words): (String, Bound<'_, PyList>) = cited.extract()?;
                    line = std::borrow::Cow::Owned(text);
                    tokens = words;
                }
            }
            if self.no_terminal_punct
                && (!line.ends_with(self.end_punctuation.as_slice()) || line.ends_with("..."))
            {
                counts[2] += 1;
                continue;
            }
            if n_words < self.min_words {
                counts[3] += 1;
                continue;
            }
            let lower = unicode_answers::lower(py, &line)?;
            if self.lorem_ipsum && lower.contains("lorem ipsum") {
                lorem = true;
            }
            if self.javascript && lower.contains("javascript") {
                counts[4] += 1;
                continue;
            }
            if self.curly_bracket && line.contains('{') {
                curly = true;
            }
            if self.policy
                && self.policy_keys.iter().any(|k| lower.contains(k.as_str()))
                && self
                    .policy_phrases
                    .iter()
                    .any(|p| lower.contains(p.as_str()))
            {
                counts[5] += 1;
                continue;
            }
            sentences += self.sentences(py, &tokens)?;
            kept.push(line.into_owned());
        }
        counts[0] = kept.len();
        let text = kept.join("\n");
        Ok((
            text.trim_matches(is_py_space).to_string(),
            (counts, sentences, lorem, curly),
        ))
    }
}
