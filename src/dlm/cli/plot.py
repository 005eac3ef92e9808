"""``dlm plot RUN... [--tag TAG ...] [--smooth K] [--out FILE.png]``: training curves as a PNG.

    dlm plot runs/sudoku-diffusion runs/sudoku-ar --tag loss --tag eval/accuracy --out curves.png

reads every scalar ``dlm train`` logged to TensorBoard (the training ones such as ``loss`` and
``lr``, the held-out ``eval/...`` ones, any other) and draws one subplot per tag with one line
per run, labelled by the run folder's name. A RUN is the ``output_dir`` of ``dlm train`` (its
event files lie in ``RUN/logs``) or that ``logs`` folder itself. Without ``--tag`` every scalar
tag any run logged is drawn. A run resumed from a checkpoint logs the steps after that
checkpoint a second time: the value logged last for a step is the one kept.

Every mistake (a RUN that is missing or holds no event files, a ``--tag`` no run logged, an
``--out`` that cannot be written or is not a ``.png``) is refused before the figure is drawn;
the PNG is written atomically, so an existing file is replaced whole or not at all.
"""

from __future__ import annotations

import argparse
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dlm.errors import DlmUserError

from .common import check_output_path, positive_int

__all__ = [
    "HELP",
    "Curve",
    "PlotError",
    "add_arguments",
    "check_png_path",
    "find_log_dir",
    "last_value_per_step",
    "moving_average",
    "read_scalars",
    "render",
    "run",
    "run_label",
    "run_labels",
    "select_tags",
]

HELP = "draw the TensorBoard scalars of one or several dlm train runs as PNG curves"

_EVENT_GLOB = "events.out.tfevents.*"
_RUN_MEANING = "a run folder is the output_dir of dlm train, or its logs/ folder"
_COLUMNS = 3


class PlotError(DlmUserError):
    """A RUN, ``--tag`` or ``--out`` that ``dlm plot`` cannot use; the message says why."""


@dataclass(frozen=True)
class Curve:
    """One scalar of one run: its steps in increasing order and the value at each."""

    steps: tuple[int, ...]
    values: tuple[float, ...]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="a dlm train output_dir (its logs/ holds the event files) or that logs/ folder",
    )
    parser.add_argument(
        "--tag",
        action="append",
        dest="tags",
        metavar="TAG",
        help="a scalar to draw, e.g. loss or eval/accuracy (repeatable; default: every one but "
        "the per-bucket eval/accuracy/<bucket>)",
    )
    parser.add_argument(
        "--smooth",
        type=positive_int,
        default=1,
        metavar="K",
        help="also draw the moving average over the last K logged points (default 1: raw only)",
    )
    parser.add_argument(
        "--out", default="plot.png", metavar="FILE.png", help="the PNG to write (default plot.png)"
    )


def run(args: argparse.Namespace) -> int:
    """Check every input, read the runs, draw, write ``--out`` and say what it holds."""
    out = check_png_path(args.out)
    log_dirs = [find_log_dir(Path(path)) for path in args.runs]
    labels = run_labels([Path(path) for path in args.runs], log_dirs)
    runs = {label: read_scalars(log_dir) for label, log_dir in zip(labels, log_dirs)}
    tags = select_tags(runs, args.tags)
    from dlm.atomic import atomic_write_bytes

    atomic_write_bytes(out, render(runs, tags, args.smooth))
    print(f"wrote {out}: {len(tags)} tag(s) from {len(runs)} run(s)")
    print("tags: " + ", ".join(tags))
    return 0


def check_png_path(path: str) -> Path:
    """``--out`` as a writable file whose name ends in ``.png`` (a folder is named as such)."""
    if not Path(path).expanduser().is_dir() and Path(path).suffix.lower() != ".png":
        raise PlotError(f"--out {path}: dlm plot writes PNG; give a file name ending in .png")
    return check_output_path(path, "--out")


def find_log_dir(run_dir: Path) -> Path:
    """The folder holding ``run_dir``'s event files: ``run_dir`` itself or ``run_dir/logs``."""
    if not run_dir.exists():
        raise PlotError(f"RUN {run_dir} does not exist; {_RUN_MEANING}")
    if not run_dir.is_dir():
        raise PlotError(f"RUN {run_dir} is a file, not a folder; {_RUN_MEANING}")
    for candidate in (run_dir, run_dir / "logs"):
        if candidate.is_dir() and any(candidate.glob(_EVENT_GLOB)):
            return candidate
    raise PlotError(
        f"RUN {run_dir} holds no TensorBoard event files (in it or in its logs/); {_RUN_MEANING}"
    )


def run_label(run_dir: Path, log_dir: Path) -> str:
    """A run's legend label: the run folder's name (the one above ``logs/`` when given that)."""
    folder = run_dir.resolve()
    if log_dir == run_dir and folder.name == "logs":
        folder = folder.parent
    return folder.name


def run_labels(run_dirs: Sequence[Path], log_dirs: Sequence[Path]) -> list[str]:
    """One label per run; runs whose folders share a name are labelled by their paths."""
    labels = [run_label(run_dir, log_dir) for run_dir, log_dir in zip(run_dirs, log_dirs)]
    if len(set(labels)) == len(labels):
        return labels
    return [str(run_dir) for run_dir in run_dirs]


def read_scalars(log_dir: Path) -> dict[str, Curve]:
    """Every scalar tag in ``log_dir``'s event files, with the last value logged per step.

    All event files are read (a resumed run adds one per restart) and nothing is dropped or
    sampled; the events are ordered by the time they were written, so a step logged again
    after a restart keeps its later value.
    """
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(
        str(log_dir),
        size_guidance={event_accumulator.SCALARS: 0},  # 0: keep every event, no sampling
        purge_orphaned_data=False,  # the dedupe below keeps the latest value instead
    )
    accumulator.Reload()
    return {
        tag: last_value_per_step(
            (event.wall_time, event.step, event.value) for event in accumulator.Scalars(tag)
        )
        for tag in sorted(accumulator.Tags()[event_accumulator.SCALARS])
    }


def last_value_per_step(events: Iterable[tuple[float, int, float]]) -> Curve:
    """``(wall_time, step, value)`` events as a ``Curve``: per step, the value written last."""
    latest: dict[int, float] = {}
    for _, step, value in sorted(events, key=lambda event: event[0]):  # stable: ties keep order
        latest[int(step)] = float(value)
    steps = tuple(sorted(latest))
    return Curve(steps=steps, values=tuple(latest[step] for step in steps))


def select_tags(runs: dict[str, dict[str, Curve]], wanted: Sequence[str] | None) -> list[str]:
    """The tags to draw: ``wanted`` in its order (each logged by some run), else every tag but
    the per-bucket ones (``eval/accuracy/<bucket>``: named with ``--tag`` to draw them)."""
    available = sorted({tag for curves in runs.values() for tag in curves})
    if not available:
        raise PlotError(
            "no run logged any scalar; give runs that dlm train has logged at least one step of"
        )
    if not wanted:
        return [tag for tag in available if tag.count("/") < 2] or available
    unknown = [tag for tag in wanted if tag not in available]
    if unknown:
        raise PlotError(
            f"--tag {', '.join(unknown)}: no run logged it; the tags logged are "
            + ", ".join(available)
        )
    return list(dict.fromkeys(wanted))


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """The mean of each value and the ``window - 1`` before it (fewer at the start)."""
    averaged, total = [], 0.0
    for index, value in enumerate(values):
        total += value
        if index >= window:
            total -= values[index - window]
        averaged.append(total / min(index + 1, window))
    return averaged


def render(runs: dict[str, dict[str, Curve]], tags: Sequence[str], smooth: int = 1) -> bytes:
    """The PNG bytes of a grid with one subplot per tag and one line per run that logged it."""
    from matplotlib.figure import Figure

    columns = min(_COLUMNS, len(tags))
    rows = math.ceil(len(tags) / columns)
    figure = Figure(figsize=(4.8 * columns, 3.4 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, tag in zip(axes, tags):
        _draw_tag(ax, tag, runs, smooth)
    for ax in axes[len(tags) :]:
        ax.set_visible(False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _draw_tag(ax, tag: str, runs: dict[str, dict[str, Curve]], smooth: int) -> None:
    """One subplot: ``tag`` of each run (raw faint under its moving average when smoothing)."""
    for index, (label, curves) in enumerate(runs.items()):
        curve = curves.get(tag)
        if curve is None:
            continue
        color = f"C{index % 10}"
        if smooth > 1:
            ax.plot(curve.steps, curve.values, color=color, alpha=0.25, linewidth=1)
            ax.plot(curve.steps, moving_average(curve.values, smooth), color=color, label=label)
        else:
            ax.plot(curve.steps, curve.values, color=color, label=label, marker=_marker(curve))
    ax.set_title(tag)
    ax.set_xlabel("step")
    ax.xaxis.get_major_locator().set_params(integer=True)  # steps are whole numbers
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")


def _marker(curve: Curve) -> str | None:
    """A dot per point on short curves (a single logged point would otherwise not show)."""
    return "o" if len(curve.steps) <= 20 else None
