//! Compiled kernels of slm-curator's filter stage. Each one gives exactly what its Python reference
//! gives (`slm_curator.text.tokenize.words`, `slm_curator.filters.gopher_repetition.ngram_chars`);
//! `tests/test_native.py` holds them to it. Python stays the reference and the fallback.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

mod affixes;
mod ngrams;
mod tokenizer;

#[pymodule]
fn slm_curator_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The Python side checks this before using the module: a wheel from another version of the
    // package may take other arguments.
    m.add("API", 2)?;
    m.add_class::<tokenizer::Tokenizer>()?;
    m.add_function(wrap_pyfunction!(ngram_chars, m)?)?;
    m.add_function(wrap_pyfunction!(py_whitespace, m)?)?;
    Ok(())
}

/// (top, dup): characters in the most frequent n-gram times its count, for each n in `top`, and in
/// n-grams repeating an earlier one (greedy left-to-right, skipping past each repeat), for each n in
/// `dup`; as `gopher_repetition.ngram_chars`.
#[pyfunction]
fn ngram_chars<'py>(
    py: Python<'py>,
    tokens: &Bound<'py, PyList>,
    top: Vec<usize>,
    dup: Vec<usize>,
) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyDict>)> {
    let mut words: Vec<Bound<'py, PyString>> = Vec::with_capacity(tokens.len());
    for item in tokens.iter() {
        words.push(item.cast_into::<PyString>()?);
    }
    let mut texts: Vec<&str> = Vec::with_capacity(words.len());
    let mut lengths: Vec<usize> = Vec::with_capacity(words.len());
    for w in &words {
        let s = w.to_str()?;
        lengths.push(if s.is_ascii() {
            s.len()
        } else {
            s.chars().count()
        });
        texts.push(s);
    }
    let (top_out, dup_out) = ngrams::ngram_chars(&texts, &lengths, &top, &dup);
    let top_dict = PyDict::new(py);
    for (n, chars) in top_out {
        top_dict.set_item(n, chars)?;
    }
    let dup_dict = PyDict::new(py);
    for (n, chars) in dup_out {
        dup_dict.set_item(n, chars)?;
    }
    Ok((top_dict, dup_dict))
}

/// The characters Python's `str.split()` splits at, as this module reads them (tests compare the two
/// over every code point).
#[pyfunction]
fn py_whitespace(py: Python<'_>) -> Bound<'_, PyTuple> {
    let chars: Vec<String> = (0u32..=0x10FFFF)
        .filter_map(char::from_u32)
        .filter(|c| tokenizer::is_py_space(*c))
        .map(|c| c.to_string())
        .collect();
    PyTuple::new(py, chars).expect("a tuple of str")
}
