//! spaCy's affix algorithm (prefixes and suffixes off one at a time, then the rest whole or cut at
//! infixes, then special cases the cuts broke put back), as `tokenize._split` and
//! `tokenize._merge_specials` run it, over the same patterns: the Python side hands over each
//! character's alternatives (`tokenize.PREFIX_BY_FIRST` and the like) as pattern text, compiled here.
//! Those patterns are literal characters, classes of code points, and look-arounds over them: no
//! `\w`, `\d`, `\s`, `\b` or case folding, whose meaning differs between Python's `re` and Rust's
//! engines. The two character properties the algorithm asks (`str.isalnum`, and whether a run is a
//! URL, whose pattern does use `\w`, `\d` and `\S`) are answered by Python, the URL question only for
//! runs the pattern could match (`may_be_url`).

use std::sync::OnceLock;

use fancy_regex::Regex;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use rustc_hash::{FxHashMap, FxHashSet};

pub struct Affixes {
    prefix: FxHashMap<char, usize>,
    suffix: FxHashMap<char, usize>,
    infix: FxHashMap<char, usize>,
    // Each distinct pattern's text, compiled on first use: a Python worker that meets few symbols
    // compiles few of the ~200 (all of them take ~0.2 s).
    sources: Vec<String>,
    patterns: Vec<OnceLock<Option<Regex>>>,
    suffix_reach: Option<usize>,
    // Pieces of a special case the affix rules cut -> its tokens.
    merge: FxHashMap<Vec<String>, Vec<String>>,
    merge_starts: FxHashSet<String>,
    merge_lengths: Vec<usize>,
}

/// Whether spaCy's URL pattern (`^(scheme://)?(userinfo@)?(IPv4 | (label.)+TLD)(:port)?([/?#]...)?$`)
/// could match `run`; false only when it surely cannot: no scheme, no userinfo, fewer than the three
/// dots of an IPv4 address, and no dot followed by a character the TLD class holds (ASCII lower case or
/// any non-ASCII character). Runs such as "9450.16", "No.693360163" or "A.V." then need no Python.
fn may_be_url(run: &str) -> bool {
    if run.contains("://") || run.contains('@') || run.matches('.').count() >= 3 {
        return true;
    }
    let bytes = run.as_bytes();
    bytes
        .windows(2)
        .any(|w| w[0] == b'.' && (w[1].is_ascii_lowercase() || !w[1].is_ascii()))
}

pub enum Outcome {
    Tokens(Vec<String>),
    // Something only Python can answer (a character's class, a URL): ask the reference for the run.
    AskPython,
}

impl Affixes {
    /// `rules`: prefix, suffix, infix (character -> pattern text), suffix_reach (int or None), merge
    /// (pieces -> tokens).
    pub fn new(rules: &Bound<'_, PyDict>) -> PyResult<Self> {
        let mut sources: Vec<String> = Vec::new();
        let mut by_source: FxHashMap<String, usize> = FxHashMap::default();
        let mut table = |key: &str| -> PyResult<FxHashMap<char, usize>> {
            let mut out = FxHashMap::default();
            let dict = rules
                .get_item(key)?
                .ok_or_else(|| missing(key))?
                .cast_into::<PyDict>()?;
            for (ch, source) in dict.iter() {
                let ch: String = ch.extract()?;
                let source: String = source.extract()?;
                let index = *by_source.entry(source.clone()).or_insert_with(|| {
                    sources.push(source);
                    sources.len() - 1
                });
                let mut chars = ch.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => out.insert(c, index),
                    _ => {
                        return Err(pyo3::exceptions::PyValueError::new_err(format!(
                            "{key}: {ch:?} is not one character"
                        )))
                    }
                };
            }
            Ok(out)
        };
        let prefix = table("prefix")?;
        let suffix = table("suffix")?;
        let infix = table("infix")?;
        let suffix_reach: Option<usize> = rules
            .get_item("suffix_reach")?
            .ok_or_else(|| missing("suffix_reach"))?
            .extract()?;
        let mut merge = FxHashMap::default();
        let mut merge_starts = FxHashSet::default();
        let mut merge_lengths: Vec<usize> = Vec::new();
        let pieces_dict = rules
            .get_item("merge")?
            .ok_or_else(|| missing("merge"))?
            .cast_into::<PyDict>()?;
        for (pieces, tokens) in pieces_dict.iter() {
            let pieces: Vec<String> = pieces.cast_into::<PyTuple>()?.extract()?;
            let tokens: Vec<String> = tokens.cast_into::<PyTuple>()?.extract()?;
            merge_starts.insert(pieces[0].clone());
            if !merge_lengths.contains(&pieces.len()) {
                merge_lengths.push(pieces.len());
            }
            merge.entry(pieces).or_insert(tokens);
        }
        merge_lengths.sort_unstable_by(|a, b| b.cmp(a));
        let patterns = sources.iter().map(|_| OnceLock::new()).collect();
        Ok(Self {
            prefix,
            suffix,
            infix,
            sources,
            patterns,
            suffix_reach,
            merge,
            merge_starts,
            merge_lengths,
        })
    }

    /// Pattern `i`, compiled the first time it is asked for; None if it does not compile here (then
    /// the runs that need it go to Python).
    fn pattern(&self, i: usize) -> Option<&Regex> {
        self.patterns[i]
            .get_or_init(|| Regex::new(&self.sources[i]).ok())
            .as_ref()
    }

    /// Compile every pattern now; the text of those that do not compile (tests expect none).
    pub fn compile_all(&self) -> Vec<String> {
        (0..self.sources.len())
            .filter(|&i| self.pattern(i).is_none())
            .map(|i| self.sources[i].clone())
            .collect()
    }

    /// The tokens of one whitespace-free run that no shortcut settled (`tokenize.affix_tokens`).
    pub fn tokens(
        &self,
        run: &str,
        special: &FxHashMap<String, Vec<String>>,
        isalnum: &mut dyn FnMut(&str) -> PyResult<bool>,
    ) -> PyResult<Outcome> {
        let out = match self.split(run, special, isalnum)? {
            Outcome::Tokens(t) => t,
            ask => return Ok(ask),
        };
        if out.len() > 1
            && out[..out.len() - 1]
                .iter()
                .any(|t| self.merge_starts.contains(t))
        {
            return Ok(Outcome::Tokens(self.merge_specials(out)));
        }
        Ok(Outcome::Tokens(out))
    }

    fn split(
        &self,
        chunk: &str,
        special: &FxHashMap<String, Vec<String>>,
        isalnum: &mut dyn FnMut(&str) -> PyResult<bool>,
    ) -> PyResult<Outcome> {
        let mut prefixes: Vec<&str> = Vec::new();
        let mut suffixes: Vec<&str> = Vec::new();
        let mut rest = chunk;
        let mut last = usize::MAX;
        while !rest.is_empty() && rest.len() != last {
            if special.contains_key(rest) {
                break;
            }
            last = rest.len();
            let Some(pre_len) = self.prefix_len(rest) else {
                return Ok(Outcome::AskPython);
            };
            if pre_len > 0 && special.contains_key(&rest[pre_len..]) {
                prefixes.push(&rest[..pre_len]);
                rest = &rest[pre_len..];
                break;
            }
            let Some(suf_len) = self.suffix_len(&rest[pre_len..]) else {
                return Ok(Outcome::AskPython);
            };
            if suf_len > 0 && special.contains_key(&rest[..rest.len() - suf_len]) {
                suffixes.push(&rest[rest.len() - suf_len..]);
                rest = &rest[..rest.len() - suf_len];
                break;
            }
            if pre_len > 0 && suf_len > 0 && pre_len + suf_len <= rest.len() {
                prefixes.push(&rest[..pre_len]);
                suffixes.push(&rest[rest.len() - suf_len..]);
                rest = &rest[pre_len..rest.len() - suf_len];
            } else if pre_len > 0 {
                prefixes.push(&rest[..pre_len]);
                rest = &rest[pre_len..];
            } else if suf_len > 0 {
                suffixes.push(&rest[rest.len() - suf_len..]);
                rest = &rest[..rest.len() - suf_len];
            }
            if special.contains_key(rest) {
                break;
            }
        }
        let mut out: Vec<String> = prefixes.iter().map(|s| s.to_string()).collect();
        if !rest.is_empty() {
            if let Some(tokens) = special.get(rest) {
                out.extend(tokens.iter().cloned());
            } else if isalnum(rest)? {
                out.push(rest.to_string());
            } else if (rest.contains('.') || rest.contains("://")) && may_be_url(rest) {
                return Ok(Outcome::AskPython); // maybe a URL: Python's URL pattern decides
            } else {
                let mut start = 0;
                let Some(cuts) = self.infixes(rest) else {
                    return Ok(Outcome::AskPython);
                };
                for (m_start, m_end) in cuts {
                    if m_start == 0 {
                        continue;
                    }
                    if m_start != start {
                        out.push(rest[start..m_start].to_string());
                    }
                    if m_start != m_end {
                        out.push(rest[m_start..m_end].to_string());
                    }
                    start = m_end;
                }
                if start < rest.len() {
                    out.push(rest[start..].to_string());
                }
            }
        }
        out.extend(suffixes.iter().rev().map(|s| s.to_string()));
        Ok(Outcome::Tokens(out))
    }

    /// The first alternative that matches at the start (`tokenize._prefix`); 0 for none, None when
    /// the engine cannot say (a pattern that does not compile here, a search over its limits).
    fn prefix_len(&self, run: &str) -> Option<usize> {
        let Some(first) = run.chars().next() else {
            return Some(0);
        };
        let Some(&i) = self.prefix.get(&first) else {
            return Some(0);
        };
        match self.pattern(i)?.find(run) {
            Ok(Some(m)) if m.start() == 0 => Some(m.end()),
            Ok(_) => Some(0),
            Err(_) => None,
        }
    }

    /// The leftmost match that ends the run, searched from near the end (`tokenize._suffix`); 0 for
    /// none, None when the engine cannot say.
    fn suffix_len(&self, run: &str) -> Option<usize> {
        let Some(last) = run.chars().next_back() else {
            return Some(0);
        };
        let Some(&i) = self.suffix.get(&last) else {
            return Some(0);
        };
        let start = match self.suffix_reach {
            None => 0,
            Some(reach) => {
                let n = run.chars().count() as isize;
                let mut start = n - reach as isize;
                if start > 0 && last == '.' {
                    start = start.min(run.trim_end_matches('.').chars().count() as isize - 1);
                }
                char_to_byte(run, start.max(0) as usize)
            }
        };
        match self.pattern(i)?.find_from_pos(run, start) {
            Ok(Some(m)) => Some(m.end() - m.start()),
            Ok(None) => Some(0),
            Err(_) => None,
        }
    }

    /// Infix matches left to right, each search resuming where the last ended (`tokenize._infixes`):
    /// (start, end) byte offsets; None when the engine cannot say.
    fn infixes(&self, run: &str) -> Option<Vec<(usize, usize)>> {
        let mut out = Vec::new();
        let mut resume = 0;
        for (i, ch) in run.char_indices() {
            if i < resume {
                continue;
            }
            let Some(&p) = self.infix.get(&ch) else {
                continue;
            };
            // The leftmost match from i (look-behinds see what precedes i) is the match at i if any.
            if let Some(m) = self.pattern(p)?.find_from_pos(run, i).ok()? {
                if m.start() == i {
                    out.push((m.start(), m.end()));
                    resume = m.end().max(i + ch.len_utf8());
                }
            }
        }
        Some(out)
    }

    /// Pieces that spell a special case the affix rules cut become it again
    /// (`tokenize._merge_specials`: longest first, then leftmost; a match passed over still claims
    /// its pieces).
    fn merge_specials(&self, tokens: Vec<String>) -> Vec<String> {
        let n = tokens.len();
        let mut taken = vec![false; n];
        let mut chosen: FxHashMap<usize, (usize, &Vec<String>)> = FxHashMap::default();
        for &size in &self.merge_lengths {
            if size > n {
                continue;
            }
            for i in 0..=n - size {
                if !self.merge_starts.contains(&tokens[i]) {
                    continue;
                }
                let Some(case) = self.merge.get(&tokens[i..i + size]) else {
                    continue;
                };
                if !taken[i] && !taken[i + size - 1] {
                    chosen.insert(i, (size, case));
                }
                for t in &mut taken[i..i + size] {
                    *t = true;
                }
            }
        }
        if chosen.is_empty() {
            return tokens;
        }
        let mut out = Vec::with_capacity(n);
        let mut i = 0;
        while i < n {
            if let Some(&(size, case)) = chosen.get(&i) {
                out.extend(case.iter().cloned());
                i += size;
            } else {
                out.push(tokens[i].clone());
                i += 1;
            }
        }
        out
    }
}

fn char_to_byte(run: &str, chars: usize) -> usize {
    run.char_indices().nth(chars).map_or(run.len(), |(b, _)| b)
}

fn missing(key: &str) -> PyErr {
    pyo3::exceptions::PyKeyError::new_err(format!("rules: no {key:?}"))
}
