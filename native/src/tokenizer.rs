//! `slm_curator.text.tokenize.words`: the whitespace split, the shortcuts for the most common runs
//! (special cases, plain words, a word and one closing mark, numbers), built on the spot, then the
//! affix algorithm (`affixes.rs`) for the rest, memoised. A run the affix rules here cannot settle
//! (one that may be a URL) goes to the Python reference (`fallback`) once, and its tokens are
//! memoised too.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use rustc_hash::FxHashMap;

use crate::affixes::{Affixes, Outcome};

/// Python's answers to `str.isalpha` and `str.isalnum` for the non-ASCII characters met so far (asked
/// once per character, so they follow the running Python's Unicode tables).
#[derive(Default)]
pub struct CharClasses {
    alpha: FxHashMap<char, bool>,
    alnum: FxHashMap<char, bool>,
}

impl CharClasses {
    pub fn is_alpha(&mut self, py: Python<'_>, run: &str) -> PyResult<bool> {
        Self::all(py, run, &mut self.alpha, "isalpha", u8::is_ascii_alphabetic)
    }

    pub fn is_alnum(&mut self, py: Python<'_>, run: &str) -> PyResult<bool> {
        Self::all(
            py,
            run,
            &mut self.alnum,
            "isalnum",
            u8::is_ascii_alphanumeric,
        )
    }

    /// Every character of a non-empty `run` has the class (`method` of Python's str).
    fn all(
        py: Python<'_>,
        run: &str,
        known: &mut FxHashMap<char, bool>,
        method: &str,
        ascii: fn(&u8) -> bool,
    ) -> PyResult<bool> {
        if run.is_ascii() {
            return Ok(!run.is_empty() && run.bytes().all(|b| ascii(&b)));
        }
        for c in run.chars() {
            let yes = if c.is_ascii() {
                ascii(&(c as u8))
            } else if let Some(&yes) = known.get(&c) {
                yes
            } else {
                let yes = PyString::new(py, c.encode_utf8(&mut [0; 4]))
                    .call_method0(method)?
                    .is_truthy()?;
                known.insert(c, yes);
                yes
            };
            if !yes {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Python's `str.split()` separators (`Py_UNICODE_ISSPACE`): Unicode White_Space and bidirectional
/// class B/S/WS, which adds the ASCII information separators U+001C..U+001F.
pub fn is_py_space(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | '\u{1C}'..='\u{20}'
            | '\u{85}'
            | '\u{A0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200A}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202F}'
            | '\u{205F}'
            | '\u{3000}'
    )
}

/// `[0-9]+(?:[.,:][0-9]+)*` over the whole run (the reference's NUMBER_RE.fullmatch).
fn is_number(run: &[u8]) -> bool {
    let mut digit_before = false;
    for &b in run {
        if b.is_ascii_digit() {
            digit_before = true;
        } else if matches!(b, b'.' | b',' | b':') && digit_before {
            digit_before = false;
        } else {
            return false;
        }
    }
    digit_before
}

#[pyclass(module = "slm_curator_native")]
pub struct Tokenizer {
    special: FxHashMap<String, Py<PyTuple>>,
    special_text: FxHashMap<String, Vec<String>>,
    affixes: Option<Affixes>,
    closers: Vec<u8>,
    fallback: Py<PyAny>,
    memo: FxHashMap<String, Py<PyTuple>>,
    memo_max_chars: usize,
    memo_size: usize,
    classes: CharClasses,
}

#[pymethods]
impl Tokenizer {
    /// `special`: run -> its tokens (spaCy's special cases); `closers`: the ASCII marks that split off
    /// an alphabetic word as one token; `fallback(run) -> tuple[str, ...]`: the reference's tokens of
    /// one run; runs of at most `memo_max_chars` characters are memoised, the table emptied when it
    /// holds `memo_size`. `affixes` (optional): the affix rules as `slm_curator.text.native` hands them
    /// over; without them every run no shortcut settles goes to `fallback`.
    #[new]
    #[pyo3(signature = (special, closers, fallback, memo_max_chars, memo_size, affixes=None))]
    fn new(
        special: &Bound<'_, PyDict>,
        closers: &str,
        fallback: Py<PyAny>,
        memo_max_chars: usize,
        memo_size: usize,
        affixes: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let mut table = FxHashMap::default();
        let mut special_text = FxHashMap::default();
        for (key, value) in special.iter() {
            let tokens =
                PyTuple::new(value.py(), value.try_iter()?.collect::<PyResult<Vec<_>>>()?)?;
            special_text.insert(key.extract::<String>()?, tokens.extract::<Vec<String>>()?);
            table.insert(key.extract::<String>()?, tokens.unbind());
        }
        let affixes = affixes.map(Affixes::new).transpose()?;
        if !closers.is_ascii() {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "closers must be ASCII",
            ));
        }
        Ok(Self {
            special: table,
            special_text,
            affixes,
            closers: closers.as_bytes().to_vec(),
            fallback,
            memo: FxHashMap::default(),
            memo_max_chars,
            memo_size,
            classes: CharClasses::default(),
        })
    }

    /// Word and punctuation tokens of `text`, whitespace dropped.
    fn words<'py>(
        &mut self,
        py: Python<'py>,
        text: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyList>> {
        let text = text.to_str()?;
        let out = PyList::empty(py);
        for run in text.split(is_py_space).filter(|r| !r.is_empty()) {
            if self.push_common(py, run, &out)? {
                continue; // built on the spot: cheaper than a lookup in a large memo table
            }
            if let Some(tokens) = self.memo.get(run) {
                for token in tokens.bind(py).iter() {
                    out.append(token)?;
                }
                continue;
            }
            let tokens = self.affix_tokens(py, run)?;
            for token in tokens.iter() {
                out.append(token)?;
            }
            if run.len() <= self.memo_max_chars || run.chars().count() <= self.memo_max_chars {
                if self.memo.len() >= self.memo_size {
                    self.memo.clear();
                }
                self.memo.insert(run.to_owned(), tokens.unbind());
            }
        }
        Ok(out)
    }

    /// Compile every affix pattern now; the text of those that do not compile here (expected: none).
    fn compile_all(&self) -> Vec<String> {
        self.affixes
            .as_ref()
            .map_or_else(Vec::new, Affixes::compile_all)
    }

    /// Empty the memo table (results never depend on it).
    fn clear(&mut self) {
        self.memo.clear();
    }

    fn __len__(&self) -> usize {
        self.memo.len()
    }
}

impl Tokenizer {
    /// Appends the tokens of a run that is a special case, a plain word, a word and one closing mark,
    /// or a number (the reference's shortcuts, in its order); false for any other run.
    fn push_common<'py>(
        &mut self,
        py: Python<'py>,
        run: &str,
        out: &Bound<'py, PyList>,
    ) -> PyResult<bool> {
        if let Some(tokens) = self.special.get(run) {
            for token in tokens.bind(py).iter() {
                out.append(token)?;
            }
            return Ok(true);
        }
        if self.is_alpha(py, run)? {
            out.append(PyString::new(py, run))?;
            return Ok(true);
        }
        let mark = run.chars().next_back().expect("runs are not empty");
        let word = &run[..run.len() - mark.len_utf8()];
        if mark.is_ascii()
            && self.closers.contains(&(mark as u8))
            && !word.is_empty()
            && (mark != '.' || word.as_bytes()[word.len() - 1].is_ascii_lowercase())
            && self.is_alpha(py, word)?
            && !self.special.contains_key(word)
        {
            out.append(PyString::new(py, word))?;
            out.append(PyString::new(py, &run[word.len()..]))?;
            return Ok(true);
        }
        if is_number(run.as_bytes()) {
            out.append(PyString::new(py, run))?;
            return Ok(true);
        }
        Ok(false)
    }

    fn is_alpha(&mut self, py: Python<'_>, run: &str) -> PyResult<bool> {
        self.classes.is_alpha(py, run)
    }

    /// A run no shortcut settles: the affix rules here when they were handed over, else the reference.
    fn affix_tokens<'py>(&mut self, py: Python<'py>, run: &str) -> PyResult<Bound<'py, PyTuple>> {
        if let Some(affixes) = &self.affixes {
            let classes = &mut self.classes;
            let mut isalnum = |s: &str| classes.is_alnum(py, s);
            if let Outcome::Tokens(tokens) =
                affixes.tokens(run, &self.special_text, &mut isalnum)?
            {
                return PyTuple::new(py, tokens);
            }
        }
        self.call_fallback(py, run)
    }

    fn call_fallback<'py>(&self, py: Python<'py>, run: &str) -> PyResult<Bound<'py, PyTuple>> {
        let tokens = self.fallback.bind(py).call1((run,))?;
        match tokens.cast_into::<PyTuple>() {
            Ok(t) => Ok(t),
            Err(e) => {
                let value = e.into_inner();
                PyTuple::new(py, value.try_iter()?.collect::<PyResult<Vec<_>>>()?)
            }
        }
    }
}
