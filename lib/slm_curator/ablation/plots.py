"""The ablation's two figures: held-out bits per byte per arm with intervals, and the training curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from slm_curator.ablation.stats import ArmStat


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bits_per_byte_figure(stats: dict[str, list[ArmStat]], path: Path, title: str = "") -> Path:
    """One panel per held-out set: each arm's mean bits per byte, its 95% interval as the error bar."""
    plt = _plt()
    panels = [("clean_bpb", "clean reference text"), ("web_bpb", "held-out raw web")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, (metric, label) in zip(axes, panels, strict=True):
        arms = stats.get(metric, [])
        x = np.arange(len(arms))
        means = np.array([s.mean for s in arms])
        err = np.array([[s.mean - s.low for s in arms], [s.high - s.mean for s in arms]])
        ax.bar(x, means, color="#8fb3d9", edgecolor="#2d5f8b")
        ax.errorbar(x, means, yerr=err, fmt="none", ecolor="black", capsize=4)
        ax.set_xticks(x, [s.arm for s in arms], rotation=20, ha="right", fontsize=8)
        if len(arms):
            spread = max(means.max() - means.min(), 1e-3)
            ax.set_ylim(max(0.0, min(s.low for s in arms) - spread), max(s.high for s in arms) + spread)
        ax.set_ylabel("bits per byte (lower is better)")
        ax.set_title(f"{label} (mean of {arms[0].seeds if arms else 0} seeds, 95% CI)", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def curves_figure(curves: dict[str, dict[int, dict[int, float]]], tokens_per_step: int, path: Path) -> Path:
    """Training loss against tokens seen, per arm: the mean over seeds (smoothed), the range shaded."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for arm, by_seed in curves.items():
        runs = [np.array([c[k] for k in sorted(c)]) for c in by_seed.values() if c]
        if not runs:
            continue
        n = min(len(r) for r in runs)
        stack = np.stack([r[:n] for r in runs])
        window = max(1, n // 30)
        kernel = np.ones(window) / window

        def smooth(v, kernel=kernel, window=window):
            return np.convolve(v, kernel, mode="valid") if window > 1 else v

        mean, low, high = smooth(stack.mean(0)), smooth(stack.min(0)), smooth(stack.max(0))
        x = (np.arange(len(mean)) + window) * tokens_per_step
        ax.plot(x, mean, label=arm, linewidth=1.2)
        ax.fill_between(x, low, high, alpha=0.2)
    ax.set_xlabel("training tokens")
    ax.set_ylabel("training loss (nats/token, own arm's data)")
    ax.legend(fontsize=8)
    ax.set_title("training curves (mean over seeds, range shaded)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
