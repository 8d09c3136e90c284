//! Gopher's repeated paragraphs and lines (`gopher_repetition.line_counts`): the text split as
//! `text.lines.paragraphs` and `newline_lines` split it, every occurrence after the first counted.

use pyo3::prelude::*;
use rustc_hash::FxHashSet;

use crate::tokenizer::is_py_space;

/// (pieces, repeated pieces, characters in repeated pieces).
fn duplicates<'a>(pieces: impl Iterator<Item = &'a str>) -> (usize, usize, usize) {
    let mut seen: FxHashSet<&str> = FxHashSet::default();
    let (mut n, mut count, mut chars) = (0, 0, 0);
    for piece in pieces {
        n += 1;
        if !seen.insert(piece) {
            count += 1;
            chars += piece.chars().count();
        }
    }
    (n, count, chars)
}

/// `re.split(r"\n{2,}", text.strip())`: blank-line separated blocks.
fn paragraphs(text: &str) -> Vec<&str> {
    let text = text.trim_matches(is_py_space);
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        if bytes[i] == b'\n' {
            let run = bytes[i..].iter().take_while(|&&b| b == b'\n').count();
            if run >= 2 {
                out.push(&text[start..i]);
                start = i + run;
            }
            i += run;
        } else {
            i += 1;
        }
    }
    out.push(&text[start..]);
    out
}

/// (paragraphs, repeated paragraphs, their characters, lines, repeated lines, their characters).
#[pyfunction]
pub fn line_repetition(text: &str) -> (usize, usize, usize, usize, usize, usize) {
    let (paras, para_dups, para_chars) = duplicates(paragraphs(text).into_iter());
    let parts: Vec<&str> = text.split('\n').collect();
    let (lines, line_dups, line_chars) = if parts.len() < 3 {
        duplicates(parts.into_iter())
    } else {
        // The first and last pieces stay even when empty; empty pieces between do not.
        let middle = parts[1..parts.len() - 1]
            .iter()
            .copied()
            .filter(|p| !p.is_empty());
        let all = std::iter::once(parts[0])
            .chain(middle)
            .chain(std::iter::once(parts[parts.len() - 1]));
        duplicates(all)
    };
    (paras, para_dups, para_chars, lines, line_dups, line_chars)
}
