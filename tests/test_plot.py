"""``dlm plot``: real TensorBoard event files of two fake runs read back and drawn as a PNG."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dlm.cli.main import main
from dlm.cli.plot import (
    Curve,
    find_log_dir,
    last_value_per_step,
    moving_average,
    read_scalars,
    render,
    run_label,
    select_tags,
)

T0 = 1_700_000_000.0


def write_events(log_dir: Path, scalars: dict[str, list[tuple[int, float]]], start: float) -> None:
    """One event file in ``log_dir`` (as one ``dlm train`` process writes) with ``scalars``."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(log_dir))
    for offset, (tag, points) in enumerate(scalars.items()):
        for step, value in points:
            writer.add_scalar(tag, value, global_step=step, walltime=start + step + offset / 10)
    writer.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    """``alpha``: loss and lr over steps 1-4, then a resume from step 2 that rewrites 3 and 4
    and adds 5; ``beta``: loss and eval/accuracy, its event files straight in ``logs/``."""
    root = tmp_path_factory.mktemp("runs")
    alpha, beta = root / "alpha", root / "beta"
    write_events(
        alpha / "logs",
        {"loss": [(1, 4.0), (2, 3.0), (3, 2.5), (4, 2.25)], "lr": [(1, 0.1), (2, 0.2)]},
        T0,
    )
    write_events(alpha / "logs", {"loss": [(3, 2.0), (4, 1.5), (5, 1.0)]}, T0 + 100)
    write_events(beta / "logs", {"loss": [(2, 5.0), (4, 3.0)], "eval/accuracy": [(4, 0.75)]}, T0)
    return alpha, beta


def test_read_scalars_keeps_the_last_value_per_step(runs):
    alpha, beta = runs
    curves = read_scalars(alpha / "logs")
    assert sorted(curves) == ["loss", "lr"]
    assert curves["loss"] == Curve(steps=(1, 2, 3, 4, 5), values=(4.0, 3.0, 2.0, 1.5, 1.0))
    assert curves["lr"].steps == (1, 2)
    assert curves["lr"].values == pytest.approx((0.1, 0.2))
    assert read_scalars(beta / "logs") == {
        "eval/accuracy": Curve(steps=(4,), values=(0.75,)),
        "loss": Curve(steps=(2, 4), values=(5.0, 3.0)),
    }


def test_last_value_per_step_orders_by_write_time():
    events = [(10.0, 2, 7.0), (1.0, 1, 1.0), (2.0, 2, 2.0), (11.0, 1, 9.0), (11.0, 1, 8.0)]
    assert last_value_per_step(events) == Curve(steps=(1, 2), values=(8.0, 7.0))


def test_a_run_is_its_output_dir_or_its_logs_folder(runs):
    alpha, _ = runs
    assert find_log_dir(alpha) == alpha / "logs"
    assert find_log_dir(alpha / "logs") == alpha / "logs"
    assert run_label(alpha, alpha / "logs") == "alpha"
    assert run_label(alpha / "logs", alpha / "logs") == "alpha"


def test_select_tags_defaults_to_every_tag_and_keeps_the_given_order():
    runs = {"a": {"loss": Curve((1,), (1.0,))}, "b": {"lr": Curve((1,), (0.1,))}}
    assert select_tags(runs, None) == ["loss", "lr"]
    assert select_tags(runs, ["lr", "loss", "lr"]) == ["lr", "loss"]
    buckets = {"a": {"eval/accuracy": runs["a"]["loss"], "eval/accuracy/pd1": runs["a"]["loss"]}}
    assert select_tags(buckets, None) == ["eval/accuracy"]  # per-bucket curves only on request
    assert select_tags(buckets, ["eval/accuracy/pd1"]) == ["eval/accuracy/pd1"]


def test_moving_average_over_the_last_k_points():
    assert moving_average([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]
    assert moving_average([1.0, 3.0, 5.0, 7.0], 3) == [1.0, 2.0, 3.0, 5.0]
    assert moving_average([2.0, 4.0], 1) == [2.0, 4.0]


def read_png(path: Path):
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return imread(path)


def test_plot_two_runs_every_tag(runs, tmp_path, capsys):
    alpha, beta = runs
    out = tmp_path / "figs" / "curves.png"
    assert main(["plot", str(alpha), str(beta / "logs"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"wrote {out}: 3 tag(s) from 2 run(s)", "tags: eval/accuracy, loss, lr"]
    image = read_png(out)
    assert image.shape == (340, 1440, 4)  # one row of three 4.8 x 3.4 inch subplots at 100 dpi


def test_plot_selected_tags_with_smoothing(runs, tmp_path, capsys, monkeypatch):
    alpha, beta = runs
    monkeypatch.chdir(tmp_path)
    assert main(["plot", str(alpha), str(beta), "--tag", "loss", "--smooth", "2"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "wrote plot.png: 1 tag(s) from 2 run(s)",
        "tags: loss",
    ]
    assert read_png(tmp_path / "plot.png").shape == (340, 480, 4)


def test_render_lays_out_a_grid_of_three_columns():
    import io

    from matplotlib.image import imread

    curves = {f"t{i}": Curve((1, 2), (1.0, float(i))) for i in range(4)}
    png = render({"a": curves}, sorted(curves))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert imread(io.BytesIO(png)).shape == (680, 1440, 4)  # two rows of three


def assert_refused(capsys, argv: list[str], *fragments: str) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlm plot: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_a_missing_run_is_refused(runs, tmp_path, capsys):
    alpha, _ = runs
    missing = tmp_path / "nope"
    out = tmp_path / "p.png"
    assert_refused(
        capsys,
        ["plot", str(alpha), str(missing), "--out", str(out)],
        f"RUN {missing} does not exist",
        "the output_dir of dlm train, or its logs/ folder",
    )
    assert not out.exists()


def test_a_run_without_event_files_is_refused(tmp_path, capsys):
    (tmp_path / "empty" / "logs").mkdir(parents=True)
    assert_refused(
        capsys,
        ["plot", str(tmp_path / "empty"), "--out", str(tmp_path / "p.png")],
        f"RUN {tmp_path / 'empty'} holds no TensorBoard event files",
        "output_dir of dlm train",
    )


def test_an_unknown_tag_lists_the_logged_ones(runs, tmp_path, capsys):
    alpha, beta = runs
    out = tmp_path / "p.png"
    assert_refused(
        capsys,
        ["plot", str(alpha), str(beta), "--tag", "loss", "--tag", "eval/los", "--out", str(out)],
        "--tag eval/los: no run logged it; the tags logged are eval/accuracy, loss, lr",
    )
    assert not out.exists()


def test_a_bad_out_is_refused_before_reading_the_runs(tmp_path, capsys):
    missing = str(tmp_path / "nope")
    assert_refused(capsys, ["plot", missing, "--out", str(tmp_path)], "is a folder")
    assert_refused(
        capsys,
        ["plot", missing, "--out", str(tmp_path / "p.jpg")],
        "give a file name ending in .png",
    )
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_refused(capsys, ["plot", missing, "--out", str(blocker / "p.png")], "which is a file")


def test_a_bad_smooth_is_refused(runs, capsys):
    assert_refused(capsys, ["plot", str(runs[0]), "--smooth", "0"], "--smooth must be at least 1")


def test_plot_help_imports_neither_matplotlib_nor_tensorboard():
    code = (
        "import sys\n"
        "from dlm.cli.main import main\n"
        "try:\n"
        "    main(['plot', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('HEAVY', sorted(m for m in ('matplotlib', 'tensorboard', 'torch') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "--tag TAG" in done.stdout and "HEAVY []" in done.stdout
