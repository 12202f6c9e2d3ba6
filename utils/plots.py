"""Every figure of the course. Each function returns the figure and, given ``save_as``, saves it as a PNG.

Figures land under ``results/figures`` (:data:`utils.paths.FIGURES_DIR`) unless ``save_as`` is a path
with a folder. Works with any matplotlib backend (Agg in tests and ``make run``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from utils import paths

DPI = 120


def _plt() -> Any:
    """matplotlib.pyplot, imported on first use."""
    import matplotlib.pyplot as plt

    return plt


def save_fig(fig: Any, name: str | Path, folder: str | Path | None = None) -> Path:
    """Save fig as PNG (dpi 120, tight) in folder (default: results/figures, or name's own folder if
    absolute)."""
    name = Path(name)
    if folder is not None:
        path = Path(folder) / name.name
    else:
        path = name if name.is_absolute() else paths.FIGURES_DIR / name
    if path.suffix.lower() != ".png":
        path = path.with_name(path.name + ".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def finish(fig: Any, save_as: str | Path | None) -> Any:
    """Save the figure when asked; return it."""
    if save_as:
        save_fig(fig, save_as)
    return fig


def plot_history(history: Mapping[str, Sequence[float]] | Any, title: str = "",
                 save_as: str | Path | None = None) -> Any:
    """Loss and accuracy per epoch, training and validation side by side (a dict or keras History)."""
    history = getattr(history, "history", history)
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, style in ((metric, "-"), (f"val_{metric}", "--")):
            values = history.get(key)
            if values is not None and len(values):
                ax.plot(np.arange(1, len(values) + 1), values, style, label=key.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[1].set_ylim(-0.02, 1.02)
    fig.suptitle(title)
    fig.tight_layout()
    return finish(fig, save_as)


def plot_confusion_matrix(cm: Sequence[Sequence[int]], classes: Sequence[str], normalize: bool = True,
                          title: str = "", save_as: str | Path | None = None) -> Any:
    """Heat map of a confusion matrix (rows = true class); normalised per row when asked."""
    import seaborn as sns

    cm = np.asarray(cm, dtype=float)
    shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    size = max(4.0, 0.45 * len(classes) + 2)
    fig, ax = _plt().subplots(figsize=(size + 1, size))
    sns.heatmap(shown, annot=len(classes) <= 20, fmt=".2f" if normalize else ".0f", cmap="Blues",
                xticklabels=list(classes), yticklabels=list(classes), vmin=0, vmax=1 if normalize else None,
                cbar=True, square=True, ax=ax)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or ("confusion matrix (row-normalised)" if normalize else "confusion matrix"))
    fig.tight_layout()
    return finish(fig, save_as)


def plot_class_counts(report_df: Any, title: str = "clips per class and split",
                      save_as: str | Path | None = None) -> Any:
    """Stacked bars of clips per class and split, from :func:`utils.splits.split_report` (or any counts
    table)."""
    import pandas as pd

    df = pd.DataFrame(report_df).copy()
    if "class" in df.columns:
        df = df.set_index("class")
    df = df[[c for c in df.columns if str(c).lower() not in ("total", "all")]]
    df = df.loc[[i for i in df.index if str(i).lower() not in ("total", "all")]]
    df = df.select_dtypes("number")
    fig, ax = _plt().subplots(figsize=(max(5.0, 0.5 * len(df) + 2), 3.6))
    df.plot.bar(stacked=True, ax=ax, rot=45 if len(df) > 6 else 0)
    ax.set_ylabel("clips")
    ax.set_xlabel("")
    ax.set_title(title)
    fig.tight_layout()
    return finish(fig, save_as)


def plot_frame_grid(frames: Sequence[np.ndarray], titles: Sequence[str] | None = None, columns: int = 6,
                    title: str = "", save_as: str | Path | None = None) -> Any:
    """A grid of RGB images (each (H, W, 3) uint8 or float in [0, 1]) with optional titles."""
    frames = list(frames)
    if not frames:
        raise ValueError("plot_frame_grid needs at least one frame")
    columns = min(columns, len(frames))
    rows = int(np.ceil(len(frames) / columns))
    fig, axes = _plt().subplots(rows, columns, figsize=(2.1 * columns, 2.2 * rows), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < len(frames):
            ax.imshow(frames[index])
            if titles is not None and index < len(titles):
                ax.set_title(str(titles[index]), fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return finish(fig, save_as)




def _per_class_table(runs: Mapping[str, Mapping[str, Any]] | Sequence[str | Path]) -> Any:
    """DataFrame of F1 (rows = class, columns = run) from metrics dicts or run folders."""
    import json

    import pandas as pd


    if not isinstance(runs, Mapping):
        runs = {Path(r).name: json.loads((Path(r) / "metrics.json").read_text()) for r in runs}
    return pd.DataFrame({name: {cls: values["f1"] for cls, values in metrics["per_class"].items()}
                         for name, metrics in runs.items()})


def plot_per_class_f1(runs: Mapping[str, Mapping[str, Any]] | Sequence[str | Path],
                      title: str = "F1 per class", save_as: str | Path | None = None) -> Any:
    """Grouped bars of per-class F1 for several runs ({name: metrics dict} or a list of run folders)."""
    table = _per_class_table(runs)
    fig, ax = _plt().subplots(figsize=(max(6.0, 0.6 * len(table) + 2), 3.8))
    table.plot.bar(ax=ax, rot=45 if len(table) > 6 else 0, width=0.8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("F1")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return finish(fig, save_as)


def plot_model_comparison(df: Any, metric: str = "test_accuracy", title: str = "", label: str | None = None,
                          save_as: str | Path | None = None) -> Any:
    """Bars of a metric per run from :func:`utils.evaluation.compare_runs` (or any table with a `label`
    column)."""
    import pandas as pd

    df = pd.DataFrame(df)
    if label is not None:
        labels = [str(text).replace(" (", "\n(") for text in df[label]]
    else:
        labels = [f"{m}\n{c}" for m, c in zip(df.get("model", df.index), df.get("config", [""] * len(df)))]
    fig, ax = _plt().subplots(figsize=(max(5.0, 1.1 * len(df) + 1), 3.8))
    bars = ax.bar(range(len(df)), df[metric].to_numpy(dtype=float), color="tab:blue")
    ax.set_xticks(range(len(df)), labels, fontsize=8)
    ax.set_ylabel(metric.replace("_", " "))
    if "accuracy" in metric or "f1" in metric:
        ax.set_ylim(0, 1.05)
    if "train_seconds" in df:
        for bar, seconds in zip(bars, df["train_seconds"].to_numpy(dtype=float)):
            if np.isfinite(seconds):
                ax.annotate(f"{seconds:.0f} s", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=8)
    ax.set_title(title or metric.replace("_", " "))
    fig.tight_layout()
    return finish(fig, save_as)


def figure_path(name: str | Path, folder: str | Path | None = None) -> Path:
    """Where a figure or animation called name is saved (under results/figures unless name has a folder)."""
    path = Path(name)
    if path.parent == Path("."):
        path = Path(folder or paths.FIGURES_DIR) / path
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def plot_detection_rates(rates: Any, title: str = "share of frames in which each part was found",
                         save_as: str | Path | None = None) -> Any:
    """Grouped bars of detection rates: a DataFrame with one row per group (class, setting) and one column per
    part."""
    fig, ax = _plt().subplots(figsize=(max(6.0, 0.6 * len(rates) * len(rates.columns) / 2), 3.6))
    rates.plot.bar(ax=ax, width=0.8, rot=30 if len(rates) > 3 else 0)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of frames")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return finish(fig, save_as)




def save_animation(frames: Sequence[np.ndarray], name: str | Path, fps: float = 6.0) -> Path:
    """Save RGB frames as an animated GIF under results/figures (shown in a notebook with
    IPython.display.Image)."""
    from PIL import Image

    path = figure_path(Path(name).with_suffix(".gif"))
    images = [Image.fromarray(np.asarray(frame, dtype=np.uint8)) for frame in frames]
    tmp = path.with_name(f".{path.name}.tmp")
    images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps),
                   loop=0)
    tmp.replace(path)
    return path


def _fold_label(test_groups: Sequence[str]) -> str:
    """A fold's tick label: its test group, or how many groups it holds."""
    return str(test_groups[0]) if len(test_groups) == 1 else f"{len(test_groups)} groups"


def plot_crossval_folds(summary: Mapping[str, Any], title: str = "",
                        save_as: str | Path | None = None) -> Any:
    """Per-fold accuracy bars (all test clips, and seen classes only) with each mean and its 95% interval."""
    folds = summary["per_fold"]
    positions = np.arange(len(folds))
    fig, ax = _plt().subplots(figsize=(max(5.0, 0.7 * len(folds) + 2), 3.8))
    for offset, metric, colour, name in ((-0.2, "accuracy", "tab:blue", "accuracy (unseen classes = errors)"),
                                         (0.2, "accuracy_seen_classes", "tab:orange",
                                          "accuracy, seen classes only")):
        values = np.array([np.nan if f[metric] is None else f[metric] for f in folds], dtype=float)
        ax.bar(positions + offset, values, width=0.4, color=colour, label=name)
        stats = summary.get(metric) or {}
        if stats.get("mean") is not None:
            ax.axhline(stats["mean"], color=colour, lw=1.5, ls="--")
            if stats.get("ci95"):
                ax.axhspan(*stats["ci95"], color=colour, alpha=0.15)
    ax.set_xticks(positions, [_fold_label(f["test_groups"]) for f in folds],
                  rotation=30 if len(folds) > 4 else 0, ha="right" if len(folds) > 4 else "center",
                  fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("test accuracy")
    ax.set_xlabel("held-out fold (test signers)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=2, frameon=False)
    ax.set_title(title or f"{summary['model']} ({summary['config']}): {summary['num_folds']} folds, "
                          f"mean (dashed) and 95% t-interval (shaded)")
    fig.tight_layout()
    return finish(fig, save_as)


def save_crossval_figures(summary: Mapping[str, Any], folder: str | Path) -> list[Path]:
    """folds.png and the pooled confusion_matrix.png of a cross-validation, saved under folder."""
    plt = _plt()
    name = f"{summary['model']} ({summary['config']})"
    figures = (("folds", plot_crossval_folds(summary)),
               ("confusion_matrix", plot_confusion_matrix(summary["confusion_matrix"], summary["classes"],
                                                          title=f"{name}: test clips of all folds, pooled")))
    saved = []
    for file_name, fig in figures:
        saved.append(save_fig(fig, file_name, folder=folder))
        plt.close(fig)
    return saved


# ----------------------------------------------------------------------------- architecture figures
def _layer_parents(model: Any) -> dict[str, list[str]]:
    """Names of the layers feeding each layer of a functional Keras model."""
    parents = {}
    for layer in model.layers:
        nodes = layer._inbound_nodes  # Keras 3: one node per call; the models here call each layer once
        parents[layer.name] = [parent.operation.name for parent in nodes[0].parent_nodes] if nodes else []
    return parents


def architecture_layout(model: Any) -> dict[str, tuple[float, int]]:
    """(column, row) of every layer: row = longest path from an input, column = the branch it belongs to."""
    parents = _layer_parents(model)
    positions: dict[str, tuple[float, int]] = {}
    next_column = 0
    for layer in model.layers:  # Keras lists a functional model's layers in topological order
        above = [positions[name] for name in parents[layer.name]]
        if not above:
            positions[layer.name] = (float(next_column), 0)
            next_column += 1
        else:
            positions[layer.name] = (float(np.mean([col for col, _ in above])),
                                     1 + max(row for _, row in above))
    return positions


def plot_architecture(model: Any, title: str = "", save_as: str | Path | None = None) -> Any:
    """Boxes (layer type, output shape, parameters) joined by arrows from input to output, one column per
    branch."""
    plt = _plt()
    parents, positions = _layer_parents(model), architecture_layout(model)
    columns = 1 + max(col for col, _ in positions.values())
    rows = 1 + max(row for _, row in positions.values())
    fig, ax = plt.subplots(figsize=(3.6 * columns, 0.85 * rows + 0.8))
    for layer in model.layers:
        col, row = positions[layer.name]
        shape = "×".join(str(size) for size in tuple(layer.output.shape)[1:])
        params = layer.count_params()
        text = f"{layer.name} · {type(layer).__name__}\n{shape}" + (
            f"  ·  {params:,} params" if params else ""
        )
        ax.text(col, -row, text, ha="center", va="center", fontsize=7.5,
                bbox=dict(boxstyle="round,pad=0.35", facecolor="#dde8f5" if params else "#f2f2f2",
                          edgecolor="#557"))
        for parent in parents[layer.name]:
            parent_col, parent_row = positions[parent]
            ax.annotate("", xy=(col, -row + 0.28), xytext=(parent_col, -parent_row - 0.28),
                        arrowprops=dict(arrowstyle="->", color="#557", lw=0.8))
    ax.set_xlim(-0.6, columns - 0.4)
    ax.set_ylim(-rows + 0.4, 0.6)
    ax.axis("off")
    ax.set_title(title or f"{model.name}: {model.count_params():,} parameters", fontsize=10)
    return finish(fig, save_as)
