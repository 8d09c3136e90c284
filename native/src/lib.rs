//! Compiled kernels of slm-curator's filter stage. Each one gives exactly what its Python reference
//! gives (`slm_curator.text.tokenize.words`, `slm_curator.filters.gopher_repetition.ngram_chars`,
//! `gopher_repetition.line_counts`, `language.fasttext_top`, `gopher_quality.token_counts`,
//! `bad_words.count_tokens`, `c4.clean`);
//! `tests/test_native.py` holds them to it. Python stays the reference and the fallback.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

mod affixes;
mod bad_words;
mod c4_lines;
mod fasttext;
mod line_repetition;
mod ngrams;
mod tokenizer;
mod unicode_answers;
mod word_shapes;

#[pymodule]
fn slm_curator_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The Python side checks this before using the module: a wheel from another version of the
    // package may take other arguments.
    m.add("API", 3)?;
    m.add_class::<tokenizer::Tokenizer>()?;
    m.add_class::<FastText>()?;
    m.add_class::<bad_words::BadWords>()?;
    m.add_class::<word_shapes::WordShapes>()?;
    m.add_class::<c4_lines::C4Lines>()?;
    m.add_function(wrap_pyfunction!(line_repetition::line_repetition, m)?)?;
    m.add_function(wrap_pyfunction!(ngram_chars, m)?)?;
    m.add_function(wrap_pyfunction!(py_whitespace, m)?)?;
    Ok(())
}

/// A fastText supervised model (LID-176) for the top label: `fasttext-predict`'s `predict(text, k=1)`,
/// bit for bit, several times faster.
#[pyclass(module = "slm_curator_native", frozen)]
struct FastText {
    model: fasttext::Model,
}

#[pymethods]
impl FastText {
    /// Reads the model file at `path`; a ValueError when it is not a model this reader takes.
    #[new]
    fn new(path: std::path::PathBuf) -> PyResult<Self> {
        let data = std::fs::read(&path).map_err(|e| {
            pyo3::exceptions::PyOSError::new_err(format!("{}: {e}", path.display()))
        })?;
        let model =
            fasttext::Model::load(&data).map_err(pyo3::exceptions::PyValueError::new_err)?;
        Ok(Self { model })
    }

    /// (label, probability) of the top label of one line, or None when fastText predicts nothing.
    #[pyo3(signature = (text, threshold = 0.0))]
    fn predict(&self, text: &str, threshold: f32) -> PyResult<Option<(String, f32)>> {
        to_python(self.model.predict(text, threshold))
    }

    /// `predict(" ".join(text.split()))` without building that line.
    #[pyo3(signature = (text, threshold = 0.0))]
    fn predict_words(&self, text: &str, threshold: f32) -> PyResult<Option<(String, f32)>> {
        to_python(self.model.predict_words(text, threshold))
    }
}

/// The items of a list of `str` (a TypeError for any other item); each gives its `&str` without a copy.
pub(crate) fn py_strings<'py>(list: &Bound<'py, PyList>) -> PyResult<Vec<Bound<'py, PyString>>> {
    list.iter()
        .map(|item| Ok(item.cast_into::<PyString>()?))
        .collect()
}

/// fastText's top label and probability, or its error, as Python sees them.
fn to_python(top: Result<Option<(&str, f32)>, String>) -> PyResult<Option<(String, f32)>> {
    let top = top.map_err(pyo3::exceptions::PyValueError::new_err)?;
    Ok(top.map(|(label, p)| (label.to_string(), p)))
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
    let words = py_strings(tokens)?;
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
