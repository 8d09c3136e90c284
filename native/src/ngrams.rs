//! Gopher's n-gram repetition statistics over a document's words (Rae et al. 2021, table A1).
//!
//! Each n-gram gets an exact id, built level by level: the n-gram at p is the (n-1)-gram at p (an id)
//! followed by word p+n-1 (an id), so one hash-table step per position names it, and no collision can
//! merge two n-grams. An n-gram can repeat only where its (n-1)-gram repeats, so each level after the
//! first looks only at those positions; the others hold n-grams that occur once.

use rustc_hash::FxHashMap;

/// (n, characters) for each requested size, in the order asked.
pub type Sizes = Vec<(usize, usize)>;

/// Per n in `top`: characters in the most frequent n-gram (its words joined by single spaces) times its
/// count, ties to the n-gram seen first; per n in `dup`: characters (words without spaces) in n-grams
/// that repeat an earlier one, scanning left to right and skipping past each repeat.
pub fn ngram_chars(
    words: &[&str],
    lengths: &[usize],
    top: &[usize],
    dup: &[usize],
) -> (Sizes, Sizes) {
    let n_words = words.len();
    let mut top_out: Sizes = top.iter().map(|&n| (n, 0)).collect();
    let mut dup_out: Sizes = dup.iter().map(|&n| (n, 0)).collect();
    let largest = top
        .iter()
        .chain(dup)
        .copied()
        .max()
        .unwrap_or(0)
        .min(n_words);
    if largest == 0 {
        return (top_out, dup_out);
    }
    let mut cum = Vec::with_capacity(n_words + 1);
    cum.push(0usize);
    for len in lengths {
        cum.push(cum.last().unwrap() + len);
    }
    let chars = |p: usize, n: usize| cum[p + n] - cum[p];

    let mut interned: FxHashMap<&str, u32> = FxHashMap::default();
    let word_ids: Vec<u32> = words
        .iter()
        .map(|w| {
            let next = interned.len() as u32;
            *interned.entry(w).or_insert(next)
        })
        .collect();
    // Level n: positions whose (n-1)-gram repeats (all positions at n = 1), the n-gram ids there, and
    // each id's count.
    let mut pos: Vec<u32> = (0..n_words as u32).collect();
    let mut ids = word_ids.clone();
    let mut counts = vec![0u32; interned.len()];
    for &id in &ids {
        counts[id as usize] += 1;
    }
    let mut pairs: FxHashMap<u64, u32> = FxHashMap::default();
    for n in 1..=largest {
        if n > 1 {
            // Extend the repeated (n-1)-grams that still fit by one word.
            let (mut next_pos, mut next_ids) = (Vec::new(), Vec::new());
            pairs.clear();
            for (&p, &id) in pos.iter().zip(&ids) {
                let p = p as usize;
                if counts[id as usize] < 2 || p + n > n_words {
                    continue;
                }
                let key = (u64::from(id) << 32) | u64::from(word_ids[p + n - 1]);
                let next = pairs.len() as u32;
                next_pos.push(p as u32);
                next_ids.push(*pairs.entry(key).or_insert(next));
            }
            counts.clear();
            counts.resize(pairs.len(), 0);
            for &id in &next_ids {
                counts[id as usize] += 1;
            }
            pos = next_pos;
            ids = next_ids;
        }
        let wants_top = top.contains(&n);
        if wants_top {
            // The most frequent n-gram; ids are numbered in order of first position, so the smallest id
            // among the most frequent is the one seen first. None repeating: the first n-gram, once.
            let (mut best, mut best_id) = (1u32, u32::MAX);
            for (id, &count) in counts.iter().enumerate() {
                if count > best {
                    best = count;
                    best_id = id as u32;
                }
            }
            let first = if best_id == u32::MAX {
                0
            } else {
                pos[ids.iter().position(|&id| id == best_id).unwrap()] as usize
            };
            let value = best as usize * (chars(first, n) + n - 1);
            for entry in top_out.iter_mut().filter(|e| e.0 == n) {
                entry.1 = value;
            }
        }
        if dup.contains(&n) {
            let mut seen = vec![false; counts.len()];
            let (mut total, mut resume) = (0usize, 0usize);
            for (&p, &id) in pos.iter().zip(&ids) {
                let p = p as usize;
                if p < resume || counts[id as usize] < 2 {
                    continue;
                }
                if seen[id as usize] {
                    total += chars(p, n);
                    resume = p + n;
                } else {
                    seen[id as usize] = true;
                }
            }
            for entry in dup_out.iter_mut().filter(|e| e.0 == n) {
                entry.1 = total;
            }
        }
    }
    (top_out, dup_out)
}
