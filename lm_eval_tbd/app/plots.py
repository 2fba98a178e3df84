"""PNG figures for ``lm-eval-tbd report --plot DIR`` (matplotlib: ``pip install 'lm-eval-tbd[plot]'``).

Per task: the TBD histogram (members and non-members apart when labelled; LOWER TBD = more
likely seen) and, when labelled with both classes, the ROC curve of -TBD (member = positive). In
audit mode: the task's score against the reference task's. Every file is written atomically
(rendered in memory, then a temporary file renamed), so a reader never sees half a PNG.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_curve

from lm_eval_tbd.core.atomic import write_bytes_atomic
from lm_eval_tbd.core.runs import TaskRun
from lm_eval_tbd.core.scores import SCORES

__all__ = ["require_matplotlib", "plot_task", "plot_audit"]

_MISSING = "--plot needs matplotlib, which is not installed: pip install 'lm-eval-tbd[plot]'"


def require_matplotlib() -> None:
    """Raise ImportError with the install command when matplotlib is missing (checked before any
    work, so a long report does not fail at its end)."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError:
        raise ImportError(_MISSING) from None


def _file_name(*parts: str) -> str:
    # Task names come from file names, but keep the PNG's name to a safe set all the same.
    return "_".join(re.sub(r"[^\w.-]+", "_", p) for p in parts) + ".png"


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return write_bytes_atomic(path, buf.getvalue())


def _figure():
    # A bare Figure (no pyplot): no global state, no GUI backend, nothing left open. Deferred:
    # matplotlib is an optional extra ([plot]), needed only with --plot.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2))
    return fig, fig.subplots()


def _histograms(ax, groups: list[tuple[str, np.ndarray, str]], xlabel: str) -> None:
    """Overlaid histograms over shared bins; infinite values (a mean log-prob of -inf) cannot be
    binned and are counted in the legend instead."""
    finite = np.concatenate([v[np.isfinite(v)] for _, v, _ in groups])
    edges = np.histogram_bin_edges(finite if finite.size else np.zeros(1), bins=20)
    for name, values, colour in groups:
        n_inf = int(np.sum(~np.isfinite(values)))
        label = f"{name} (n={values.size}" + (f", {n_inf} infinite not shown)" if n_inf else ")")
        ax.hist(values[np.isfinite(values)], bins=edges, alpha=0.55, color=colour, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("questions")
    ax.legend()


def plot_task(run: TaskRun, directory: str | Path, *, summary: dict | None = None) -> list[Path]:
    """Write ``<task>_tbd.png`` and, when the run is labelled with both classes, ``<task>_roc.png``
    under ``directory``. Returns the paths written."""
    directory = Path(directory)
    scores = run.tbd_values()
    fig, ax = _figure()
    if run.labelled:
        labels = np.array([q.label for q in run.questions])
        groups = [("members (label 1)", scores[labels == 1], "tab:red"),
                  ("non-members (label 0)", scores[labels == 0], "tab:green")]
    else:
        groups = [("questions", scores, "tab:blue")]
    _histograms(ax, groups, "TBD (lower = more likely seen)")
    ax.set_title(f"{run.task}: TBD per question")
    paths = [_save(fig, directory / _file_name(run.task, "tbd"))]
    if run.labelled and summary is not None and summary.get("auc") is not None:
        paths.append(_roc(run, directory, summary["auc"]))
    return paths


def _roc(run: TaskRun, directory: Path, auc: float) -> Path:
    labels = np.array([q.label for q in run.questions])
    fpr, tpr, _ = roc_curve(labels, -run.tbd_values(), drop_intermediate=False)
    fig, ax = _figure()
    ax.plot(fpr, tpr, color="tab:red", label=f"TBD (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="chance")
    ax.set_xlabel("false-positive rate (non-members flagged)")
    ax.set_ylabel("true-positive rate (members flagged)")
    ax.set_title(f"{run.task}: ROC, member = positive, decision value -TBD")
    ax.legend(loc="lower right")
    return _save(fig, directory / _file_name(run.task, "roc"))


def plot_audit(run: TaskRun, reference: TaskRun, score: str, directory: str | Path) -> Path:
    """Write ``<task>_vs_<reference>.png``: histograms of ``score`` for the task and the clean
    reference task. Returns its path."""
    spec = SCORES[score]
    fig, ax = _figure()
    _histograms(ax, [(run.task, run.score_values(score), "tab:red"),
                     (f"{reference.task} (reference)", reference.score_values(score), "tab:grey")],
                f"{score} ({'higher' if spec.higher_is_seen else 'lower'} = more likely seen)")
    ax.set_title(f"{run.task} against the clean reference {reference.task}")
    return _save(fig, Path(directory) / _file_name(run.task, "vs", reference.task))
