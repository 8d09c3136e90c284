//! Python's own answers about non-ASCII characters (`str.isalpha`, `str.lower`), asked once per
//! character and kept for the process, so the kernels follow the running Python's Unicode tables
//! rather than Rust's (the two can be different Unicode versions).

use std::sync::{Mutex, OnceLock};

use pyo3::prelude::*;
use pyo3::types::PyString;
use rustc_hash::FxHashMap;

type Table<T> = OnceLock<Mutex<FxHashMap<char, T>>>;

static ALPHA: Table<bool> = OnceLock::new();
static LOWER: Table<Box<str>> = OnceLock::new();
static PUNCT: Table<bool> = OnceLock::new();

/// The cached answer for `c`, or Python's (asked without holding the lock: Python code may run).
fn answer<T: Clone>(
    table: &'static Table<T>,
    c: char,
    ask: impl FnOnce() -> PyResult<T>,
) -> PyResult<T> {
    let table = table.get_or_init(Default::default);
    if let Some(known) = table.lock().unwrap_or_else(|e| e.into_inner()).get(&c) {
        return Ok(known.clone());
    }
    let value = ask()?;
    table
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(c, value.clone());
    Ok(value)
}

fn py_char<'py>(py: Python<'py>, c: char) -> Bound<'py, PyString> {
    PyString::new(py, c.encode_utf8(&mut [0; 4]))
}

/// `c.isalpha()` in Python.
pub fn is_alpha(py: Python<'_>, c: char) -> PyResult<bool> {
    if c.is_ascii() {
        return Ok(c.is_ascii_alphabetic());
    }
    answer(&ALPHA, c, || {
        py_char(py, c).call_method0("isalpha")?.is_truthy()
    })
}

/// `unicodedata.category(c).startswith("P")` in Python: a punctuation character.
pub fn is_punct(py: Python<'_>, c: char) -> PyResult<bool> {
    answer(&PUNCT, c, || {
        let category = py
            .import("unicodedata")?
            .call_method1("category", (py_char(py, c),))?;
        Ok(category.extract::<String>()?.starts_with('P'))
    })
}

/// `text.lower()` in Python. CPython lower-cases character by character except for the capital
/// sigma, whose lower case depends on its neighbours: a text holding one is handed to Python whole.
pub fn lower<'a>(py: Python<'_>, text: &'a str) -> PyResult<std::borrow::Cow<'a, str>> {
    use std::borrow::Cow;
    if text.is_ascii() {
        return Ok(if text.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(text.to_ascii_lowercase())
        } else {
            Cow::Borrowed(text)
        });
    }
    if text.contains('\u{03A3}') {
        return Ok(Cow::Owned(
            PyString::new(py, text).call_method0("lower")?.extract()?,
        ));
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else {
            out.push_str(&answer(&LOWER, c, || {
                Ok(py_char(py, c)
                    .call_method0("lower")?
                    .extract::<String>()?
                    .into_boxed_str())
            })?);
        }
    }
    Ok(Cow::Owned(out))
}
