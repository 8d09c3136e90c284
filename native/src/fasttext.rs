//! fastText's supervised `predict` for the top label (what `fasttext-predict` runs for LID-176), read
//! from the same model file and computed in the same order with the same float types, so labels and
//! probabilities are bit for bit those of fastText's C++ (`tests/test_native.py` compares them).
//!
//! fastText spends its time building a string and a hash-table probe per character n-gram of every
//! word; here the n-gram hashes are extended byte by byte (FNV-1a is incremental), in-vocabulary words
//! keep their n-gram rows from load time, and each row is added to the hidden vector as it is found.
//! Only what LID-176 uses is read: hierarchical softmax, a quantized input matrix, a dense output one;
//! any other model is refused at load, and the Python side keeps fastText's own binding for it.

use rustc_hash::FxHashMap;

const MAGIC: i32 = 793_712_314;
const EOS: &[u8] = b"</s>";
const LABEL_PREFIX: &[u8] = b"__label__";
const LOSS_HS: i32 = 1;
const MODEL_SUPERVISED: i32 = 3;
const KSUB: usize = 256;

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| "truncated fastText model".to_string())?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn f32s(&mut self, n: usize) -> Result<Vec<f32>, String> {
        let bytes = self.take(n.checked_mul(4).ok_or("model too large")?)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect())
    }
    fn count(&mut self, what: &str) -> Result<usize, String> {
        let n = self.i64()?;
        usize::try_from(n).map_err(|_| format!("negative {what} in fastText model"))
    }
}

/// fastText's product quantizer: 256 centroids per sub-vector, the last sub-vector maybe shorter.
struct Quantizer {
    nsubq: usize,
    dsub: usize,
    lastdsub: usize,
    centroids: Vec<f32>,
}

impl Quantizer {
    fn load(r: &mut Reader) -> Result<Self, String> {
        let dim = r.i32()? as usize;
        let nsubq = r.i32()? as usize;
        let dsub = r.i32()? as usize;
        let lastdsub = r.i32()? as usize;
        let centroids = r.f32s(dim * KSUB)?;
        if nsubq == 0 || (nsubq - 1) * dsub + lastdsub != dim {
            return Err("inconsistent fastText product quantizer".into());
        }
        Ok(Self {
            nsubq,
            dsub,
            lastdsub,
            centroids,
        })
    }
    fn centroid(&self, m: usize, code: u8) -> &[f32] {
        let i = code as usize;
        if m == self.nsubq - 1 {
            let start = m * KSUB * self.dsub + i * self.lastdsub;
            &self.centroids[start..start + self.lastdsub]
        } else {
            let start = (m * KSUB + i) * self.dsub;
            &self.centroids[start..start + self.dsub]
        }
    }
}

/// fastText's quantized matrix (`QuantMatrix`): each row a code per sub-vector, optionally scaled by
/// a quantized norm.
struct QuantMatrix {
    rows: usize,
    codes: Vec<u8>,
    pq: Quantizer,
    norms: Option<(Vec<u8>, Quantizer)>,
}

impl QuantMatrix {
    fn load(r: &mut Reader) -> Result<Self, String> {
        let qnorm = r.u8()? != 0;
        let rows = r.count("rows")?;
        let _cols = r.count("columns")?;
        let codesize = r.i32()? as usize;
        let codes = r.take(codesize)?.to_vec();
        let pq = Quantizer::load(r)?;
        if codes.len() < rows * pq.nsubq {
            return Err("truncated fastText codes".into());
        }
        let norms = if qnorm {
            let codes = r.take(rows)?.to_vec();
            Some((codes, Quantizer::load(r)?))
        } else {
            None
        };
        Ok(Self {
            rows,
            codes,
            pq,
            norms,
        })
    }

    fn cols(&self) -> usize {
        (self.pq.nsubq - 1) * self.pq.dsub + self.pq.lastdsub
    }

    /// `x += row i`, in fastText's order (`QuantMatrix::addRowToVector`, `ProductQuantizer::addcode`).
    fn add_row(&self, x: &mut [f32], i: usize) {
        let alpha = match &self.norms {
            Some((codes, npq)) => npq.centroid(0, codes[i])[0],
            None => 1.0,
        };
        let pq = &self.pq;
        for (m, &c) in self.codes[pq.nsubq * i..pq.nsubq * (i + 1)]
            .iter()
            .enumerate()
        {
            let start = m * pq.dsub;
            for (n, v) in pq.centroid(m, c).iter().enumerate() {
                x[start + n] += alpha * v;
            }
        }
    }
}

/// Row `i` of a dense row-major matrix . `x`, in fastText's order (`DenseMatrix::dotRow`).
fn dot_row(data: &[f32], cols: usize, x: &[f32], i: usize) -> f32 {
    let mut d = 0f32;
    for (a, b) in data[i * cols..(i + 1) * cols].iter().zip(x) {
        d += a * b;
    }
    d
}

#[derive(Clone, Copy)]
struct Node {
    left: i32,
    right: i32,
}

pub struct Model {
    dim: usize,
    minn: usize,
    maxn: usize,
    bucket: u32,
    nwords: i32,
    ids: FxHashMap<Box<[u8]>, i32>,
    is_label: Vec<bool>,
    /// Each entry's input rows: its own id, then its character n-grams' (fastText's `initNgrams`).
    subwords: Vec<Vec<i32>>,
    prune_size: i64,
    prune: FxHashMap<i32, i32>,
    input: QuantMatrix,
    /// Dense, one row per internal node of the tree (`osz - 1` used).
    output: Vec<f32>,
    tree: Vec<Node>,
    osz: usize,
    labels: Vec<String>,
}

fn fnv_step(h: u32, b: u8) -> u32 {
    // fastText hashes `int8_t(byte)` widened to 32 bits: bytes >= 0x80 are sign-extended.
    (h ^ (b as i8 as i32 as u32)).wrapping_mul(16_777_619)
}

fn is_separator(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c | 0)
}

/// fastText's `std_log`: the log in double of a float plus 1e-5, back to float.
fn std_log(x: f32) -> f32 {
    ((x as f64) + 1e-5).ln() as f32
}

impl Model {
    pub fn load(data: &[u8]) -> Result<Self, String> {
        let mut r = Reader { data, pos: 0 };
        if r.i32()? != MAGIC {
            return Err("not a fastText model (bad magic number)".into());
        }
        let version = r.i32()?;
        if version > 12 {
            return Err(format!("fastText model version {version} is newer than 12"));
        }
        let dim = r.i32()? as usize;
        let _ws = r.i32()?;
        let _epoch = r.i32()?;
        let _min_count = r.i32()?;
        let _neg = r.i32()?;
        let word_ngrams = r.i32()?;
        let loss = r.i32()?;
        let model = r.i32()?;
        let bucket = r.i32()?;
        let minn = r.i32()?;
        let mut maxn = r.i32()?;
        let _lr_update_rate = r.i32()?;
        let _t = r.take(8)?;
        if model != MODEL_SUPERVISED || loss != LOSS_HS {
            return Err(format!(
                "only supervised hierarchical-softmax models are read here (model {model}, loss {loss})"
            ));
        }
        if word_ngrams > 1 {
            return Err("models with word n-grams are not read here".into());
        }
        if version == 11 {
            maxn = 0; // fastText: old supervised models have no character n-grams
        }
        if dim == 0 || bucket < 0 || minn < 0 || maxn < 0 {
            return Err("inconsistent fastText arguments".into());
        }

        let size = r.i32()?;
        let nwords = r.i32()?;
        let nlabels = r.i32()?;
        let _ntokens = r.i64()?;
        let prune_size = r.i64()?;
        if size < 0 || nwords < 0 || nlabels <= 0 || size != nwords + nlabels {
            return Err("inconsistent fastText dictionary".into());
        }
        let mut words: Vec<Vec<u8>> = Vec::with_capacity(size as usize);
        let mut counts: Vec<i64> = Vec::with_capacity(size as usize);
        let mut is_label = Vec::with_capacity(size as usize);
        for _ in 0..size {
            let rest = &r.data[r.pos..];
            let end = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or("truncated fastText dictionary")?;
            words.push(rest[..end].to_vec());
            r.pos += end + 1;
            counts.push(r.i64()?);
            is_label.push(r.u8()? == 1);
        }
        let mut prune = FxHashMap::default();
        for _ in 0..prune_size.max(0) {
            let first = r.i32()?;
            let second = r.i32()?;
            prune.insert(first, second);
        }
        if r.u8()? == 0 {
            return Err("only quantized fastText models (.ftz) are read here".into());
        }
        let input = QuantMatrix::load(&mut r)?;
        if r.u8()? != 0 {
            return Err("fastText models with a quantized output matrix are not read here".into());
        }
        let osz = nlabels as usize;
        let (rows, cols) = (r.count("rows")?, r.count("columns")?);
        if rows != osz || cols != dim {
            return Err("fastText output rows differ from the labels".into());
        }
        let output = r.f32s(rows.checked_mul(cols).ok_or("model too large")?)?;
        let labels = words[nwords as usize..]
            .iter()
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        let label_counts: Vec<i64> = counts[nwords as usize..].to_vec();
        let mut out = Self {
            dim,
            minn: minn as usize,
            maxn: maxn as usize,
            bucket: bucket as u32,
            nwords,
            ids: FxHashMap::default(),
            is_label,
            subwords: Vec::new(),
            prune_size,
            prune,
            input,
            output,
            tree: build_tree(&label_counts),
            osz,
            labels,
        };
        let mut buf = Vec::new();
        let mut subwords = Vec::with_capacity(words.len());
        for (i, w) in words.iter().enumerate() {
            let mut rows = vec![i as i32];
            if w.as_slice() != EOS {
                out.ngrams(w, &mut buf, |id| rows.push(id));
            }
            subwords.push(rows);
        }
        out.subwords = subwords;
        for (i, w) in words.into_iter().enumerate() {
            // fastText's own table keeps the last of equal words (each overwrites the slot); so does this.
            out.ids.insert(w.into_boxed_slice(), i as i32);
        }
        let hashed_rows = if out.prune_size < 0 {
            out.bucket as i64
        } else {
            out.prune.values().map(|&v| v as i64 + 1).max().unwrap_or(0)
        };
        if out.prune.values().any(|&v| v < 0)
            || nwords as i64 + hashed_rows > out.input.rows as i64
            || out.input.cols() != dim
        {
            return Err("fastText input rows fewer than the dictionary needs".into());
        }
        Ok(out)
    }

    /// The input rows of `token`'s character n-grams (fastText's `computeSubwords` over `<token>`,
    /// then `pushHash`), in fastText's order.
    fn ngrams(&self, token: &[u8], word: &mut Vec<u8>, mut push: impl FnMut(i32)) {
        word.clear();
        word.push(b'<');
        word.extend_from_slice(token);
        word.push(b'>');
        let len = word.len();
        for i in 0..len {
            if word[i] & 0xC0 == 0x80 {
                continue;
            }
            let mut h = 2_166_136_261u32;
            let mut j = i;
            let mut n = 1;
            while j < len && n <= self.maxn {
                h = fnv_step(h, word[j]);
                j += 1;
                while j < len && word[j] & 0xC0 == 0x80 {
                    h = fnv_step(h, word[j]);
                    j += 1;
                }
                if n >= self.minn && !(n == 1 && (i == 0 || j == len)) {
                    let id = (h % self.bucket) as i32;
                    if self.prune_size == 0 || id < 0 {
                    } else if self.prune_size > 0 {
                        if let Some(&pruned) = self.prune.get(&id) {
                            push(self.nwords + pruned);
                        }
                    } else {
                        push(self.nwords + id);
                    }
                }
                n += 1;
            }
        }
    }

    /// Adds one token's input rows to `hidden` (fastText's `getLine` and `addSubwords`, then the sum
    /// in `averageRowsToVector`); returns how many.
    fn add_token(
        &self,
        token: &[u8],
        hidden: &mut [f32],
        buf: &mut Vec<u8>,
        ids: &mut Vec<i32>,
    ) -> usize {
        let rows: &[i32] = match self.ids.get(token) {
            Some(&wid) if !self.is_label[wid as usize] => &self.subwords[wid as usize],
            Some(_) => return 0,
            None if token.starts_with(LABEL_PREFIX) || token == EOS => return 0,
            None => {
                ids.clear();
                self.ngrams(token, buf, |id| ids.push(id));
                ids
            }
        };
        for &id in rows {
            self.input.add_row(hidden, id as usize);
        }
        rows.len()
    }

    /// The top label and its probability for one line (fastText's `predictLine` with k = 1 and a
    /// newline appended, as the Python binding does); None when fastText gives no prediction.
    pub fn predict(&self, text: &str, threshold: f32) -> Result<Option<(&str, f32)>, String> {
        if text.contains('\n') {
            return Err("predict processes one line at a time (remove '\\n')".into());
        }
        let tokens = text.as_bytes().split(|&b| is_separator(b));
        self.predict_tokens(tokens.filter(|t| !t.is_empty()), threshold)
    }

    /// `predict` of `" ".join(text.split())`: the words between Python's whitespace (and NUL, which
    /// fastText also splits at), without building the joined line.
    pub fn predict_words(&self, text: &str, threshold: f32) -> Result<Option<(&str, f32)>, String> {
        let tokens = text
            .split(|c: char| c == '\0' || crate::tokenizer::is_py_space(c))
            .filter(|t| !t.is_empty())
            .map(str::as_bytes);
        self.predict_tokens(tokens, threshold)
    }

    fn predict_tokens<'t>(
        &self,
        tokens: impl Iterator<Item = &'t [u8]>,
        threshold: f32,
    ) -> Result<Option<(&str, f32)>, String> {
        let mut hidden = vec![0f32; self.dim];
        let mut rows = 0usize;
        let mut buf = Vec::new();
        let mut ids: Vec<i32> = Vec::new();
        let mut done = false;
        for token in tokens {
            rows += self.add_token(token, &mut hidden, &mut buf, &mut ids);
            if token == EOS {
                done = true; // fastText stops reading the line at a literal `</s>`
                break;
            }
        }
        if !done {
            // The newline the binding appends: the end-of-sentence token.
            rows += self.add_token(EOS, &mut hidden, &mut buf, &mut ids);
        }
        if rows == 0 {
            return Ok(None);
        }
        let scale = (1.0f64 / rows as f64) as f32;
        for v in hidden.iter_mut() {
            *v *= scale;
        }
        let mut best: Option<(f32, usize)> = None;
        self.dfs(
            std_log(threshold),
            2 * self.osz - 2,
            0.0,
            &mut best,
            &hidden,
        )?;
        Ok(best.map(|(score, label)| {
            let text = self.labels[label].as_str();
            (text, score.exp())
        }))
    }

    /// fastText's `HierarchicalSoftmaxLoss::dfs` for k = 1: on equal scores the later leaf wins, as
    /// with its heap.
    fn dfs(
        &self,
        floor: f32,
        node: usize,
        score: f32,
        best: &mut Option<(f32, usize)>,
        hidden: &[f32],
    ) -> Result<(), String> {
        if score < floor {
            return Ok(());
        }
        if let Some((top, _)) = best {
            if score < *top {
                return Ok(());
            }
        }
        let Node { left, right } = self.tree[node];
        if left == -1 && right == -1 {
            *best = Some((score, node));
            return Ok(());
        }
        let dot = dot_row(&self.output, self.dim, hidden, node - self.osz);
        if dot.is_nan() {
            return Err("fastText encountered NaN".into());
        }
        let f = (1.0f64 / ((1.0f32 + (-dot).exp()) as f64)) as f32;
        let left_score = score + std_log((1.0f64 - f as f64) as f32);
        self.dfs(floor, left as usize, left_score, best, hidden)?;
        self.dfs(floor, right as usize, score + std_log(f), best, hidden)
    }
}

/// fastText's Huffman tree over the label counts (`HierarchicalSoftmaxLoss::buildTree`).
fn build_tree(counts: &[i64]) -> Vec<Node> {
    let osz = counts.len();
    let mut tree = vec![
        Node {
            left: -1,
            right: -1
        };
        2 * osz - 1
    ];
    let mut count = vec![1_000_000_000_000_000i64; 2 * osz - 1];
    count[..osz].copy_from_slice(counts);
    let mut leaf = osz as i64 - 1;
    let mut node = osz;
    for i in osz..2 * osz - 1 {
        let mut mini = [0usize; 2];
        for slot in &mut mini {
            if leaf >= 0 && count[leaf as usize] < count[node] {
                *slot = leaf as usize;
                leaf -= 1;
            } else {
                *slot = node;
                node += 1;
            }
        }
        tree[i] = Node {
            left: mini[0] as i32,
            right: mini[1] as i32,
        };
        count[i] = count[mini[0]] + count[mini[1]];
    }
    tree
}
