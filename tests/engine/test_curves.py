"""Training-curve plots from metrics.json files."""

import json

import matplotlib.image as mpimg
import pytest

from resnet_det.engine.curves import (
    RUN_CURVES_NAME,
    eval_keys,
    load_metrics,
    loss_keys,
    metric_curve,
    plot_run_curves,
    plot_training_curves,
)
from resnet_det.utils.errors import DataError, MissingFileError


def write_metrics(path, records):
    with open(path, "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return str(path)


def test_curve_takes_last_record_of_an_iteration(tmp_path):
    # A run resumed from iteration 19 rewrites iterations 20..39: the later values win.
    recs = [
        {"iteration": 19, "train_top1_err": 50.0},
        {"iteration": 39, "train_top1_err": 40.0},
        {"iteration": 39, "center/top1_err": 45.0},
        {"iteration": 39, "train_top1_err": 38.0},
        {"iteration": 59, "train_top1_err": 30.0},
    ]
    p = write_metrics(tmp_path / "metrics.json", recs)
    its, vals = metric_curve(load_metrics(p), "train_top1_err")
    assert its == [19, 39, 59] and vals == [50.0, 38.0, 30.0]
    assert metric_curve(load_metrics(str(tmp_path)), "center/top1_err") == ([39], [45.0])


def test_bad_line_named(tmp_path):
    p = tmp_path / "metrics.json"
    p.write_text('{"iteration": 1, "lr": 0.1}\nnot json\n')
    with pytest.raises(ValueError, match=r"metrics.json:2"):
        load_metrics(str(p))


def test_plot_writes_png(tmp_path):
    runs = []
    for name, off in (("plain-56", 10.0), ("ResNet-56", 0.0)):
        recs = [{"iteration": i, "train_top1_err": 60.0 - i / 10 + off} for i in range(19, 400, 20)]
        recs += [
            {"iteration": i, "center/top1_err": 65.0 - i / 10 + off} for i in range(99, 400, 100)
        ]
        runs.append((name, write_metrics(tmp_path / f"{name}.json", recs)))
    out = plot_training_curves(runs, str(tmp_path / "fig" / "curves.png"), title="test")
    img = mpimg.imread(out)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert not list((tmp_path / "fig").glob("*.tmp"))  # written atomically, no leftovers
    with pytest.raises(ValueError, match="no 'train_top1_err_x' or 'nokey'"):
        plot_training_curves(
            [("x", runs[0][1])],
            str(tmp_path / "x.png"),
            train_key="train_top1_err_x",
            test_key="nokey",
        )


def test_a_single_evaluation_is_drawn(tmp_path):
    # One test point is a line of zero length: only its marker shows it. Two plots that
    # differ only in that point's value (fixed axes) must differ.
    images = []
    for value in (20.0, 50.0):
        recs = [{"iteration": i, "train_top1_err": 60.0} for i in range(19, 400, 20)]
        recs.append({"iteration": 199, "center/top1_err": value})
        run = write_metrics(tmp_path / f"m{value}.json", recs)
        out = plot_training_curves([("r", run)], str(tmp_path / f"{value}.png"), ylim=(0, 100))
        images.append(mpimg.imread(out))
    assert images[0].shape == images[1].shape
    assert (images[0] != images[1]).any()


def test_plot_curves_tool(tmp_path, capsys):
    import importlib.util
    import os

    root = os.path.join(os.path.dirname(__file__), "..", "..")
    spec = importlib.util.spec_from_file_location(
        "plot_curves", os.path.join(root, "tools", "plot_curves.py")
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    p = write_metrics(
        tmp_path / "m.json", [{"iteration": 9, "train_top1_err": 50.0, "center/top1_err": 60.0}]
    )
    out = str(tmp_path / "c.png")
    assert tool.main(["--run", "a", p, "--run", "b", p, "--output", out, "--ylim", "0", "100"]) == 0
    assert mpimg.imread(out).shape[0] > 100 and out in capsys.readouterr().out


def _detection_run(tmp_path):
    """A detection run's metrics.json: losses and lr every 20 iterations, AP every 100 (and a
    resumed stretch that rewrites iterations 60..99)."""
    recs = []
    for i in range(19, 300, 20):
        parts = {
            "loss_cls": 1.0 / (i + 1) ** 0.3,
            "loss_box_reg": 0.5,
            "loss_rpn_cls": 0.2,
            "loss_rpn_loc": 0.05,
        }
        recs.append(
            {"iteration": i, "total_loss": sum(parts.values()), "lr": 0.02, "time": 0.5, **parts}
        )
        if (i + 1) % 100 == 0:
            recs.append(
                {
                    "iteration": i,
                    "bbox/AP": i / 10,
                    "bbox/AP50": i / 5,
                    "bbox/AP75": i / 12,
                    "bbox/APs": 1.0,
                    "bbox/AP-circle": 3.0,
                }
            )
    run = tmp_path / "run"
    run.mkdir()
    write_metrics(run / "metrics.json", recs)
    return run, recs


def test_run_curve_keys(tmp_path):
    _, recs = _detection_run(tmp_path)
    assert loss_keys(recs) == [
        "total_loss",
        "loss_box_reg",
        "loss_cls",
        "loss_rpn_cls",
        "loss_rpn_loc",
    ]
    # The headline numbers only, in the usual order; other evaluations keep all their keys.
    assert eval_keys(recs) == ["bbox/AP", "bbox/AP50", "bbox/AP75"]
    assert eval_keys(
        [{"iteration": 1, "center/top1_err": 5.0, "center/top5_err": 1.0, "lr": 0.1}]
    ) == ["center/top1_err", "center/top5_err"]


def test_plot_run_curves_into_the_run_folder(tmp_path):
    run, _ = _detection_run(tmp_path)
    out = plot_run_curves(str(run))
    assert out == str(run / RUN_CURVES_NAME)
    img = mpimg.imread(out)
    assert img.shape[0] > img.shape[1] > 400  # three stacked panels
    # A classification run (no total_loss, another evaluation key) draws too.
    cls = write_metrics(
        tmp_path / "cls.json",
        [{"iteration": 9, "loss_cls": 2.0, "lr": 0.1, "center/top1_err": 50.0}],
    )
    assert mpimg.imread(plot_run_curves(cls, str(tmp_path / "cls.png"))).shape[0] > 400
    empty = write_metrics(tmp_path / "empty.json", [{"iteration": 9, "time": 1.0}])
    with pytest.raises(DataError, match="no loss, 'lr' or evaluation key"):
        plot_run_curves(empty, str(tmp_path / "e.png"))
    with pytest.raises(MissingFileError, match="OUTPUT_DIR"):
        plot_run_curves(str(tmp_path / "nowhere"))


def test_plot_curves_tool_one_run(tmp_path, capsys):
    import importlib.util
    import os

    root = os.path.join(os.path.dirname(__file__), "..", "..")
    spec = importlib.util.spec_from_file_location(
        "plot_curves", os.path.join(root, "tools", "plot_curves.py")
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    run, _ = _detection_run(tmp_path)
    assert tool.main([str(run)]) == 0
    assert (run / RUN_CURVES_NAME).is_file() and str(
        run / RUN_CURVES_NAME
    ) in capsys.readouterr().out
    for argv in ([], [str(run), "--run", "a", str(run)], ["--run", "a", str(run)]):
        with pytest.raises(SystemExit) as exc:
            tool.main(argv)
        assert exc.value.code == 2
