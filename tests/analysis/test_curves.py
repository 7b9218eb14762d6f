"""Training-curve plots from metrics.json files."""
import json

import matplotlib.image as mpimg
import pytest

from resnet_det.analysis.curves import load_metrics, metric_curve, plot_training_curves


def write_metrics(path, records):
    with open(path, "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return str(path)


def test_curve_takes_last_record_of_an_iteration(tmp_path):
    # A run resumed from iteration 19 rewrites iterations 20..39: the later values win.
    recs = [{"iteration": 19, "train_top1_err": 50.0}, {"iteration": 39, "train_top1_err": 40.0},
            {"iteration": 39, "center/top1_err": 45.0},
            {"iteration": 39, "train_top1_err": 38.0}, {"iteration": 59, "train_top1_err": 30.0}]
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
        recs += [{"iteration": i, "center/top1_err": 65.0 - i / 10 + off} for i in range(99, 400, 100)]
        runs.append((name, write_metrics(tmp_path / f"{name}.json", recs)))
    out = plot_training_curves(runs, str(tmp_path / "fig" / "curves.png"), title="test")
    img = mpimg.imread(out)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert not list((tmp_path / "fig").glob("*.tmp"))  # written atomically, no leftovers
    with pytest.raises(ValueError, match="no 'train_top1_err_x' or 'nokey'"):
        plot_training_curves([("x", runs[0][1])], str(tmp_path / "x.png"), train_key="train_top1_err_x",
                             test_key="nokey")


def test_plot_curves_tool(tmp_path, capsys):
    import importlib.util
    import os

    root = os.path.join(os.path.dirname(__file__), "..", "..")
    spec = importlib.util.spec_from_file_location("plot_curves", os.path.join(root, "tools", "plot_curves.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    p = write_metrics(tmp_path / "m.json", [{"iteration": 9, "train_top1_err": 50.0, "center/top1_err": 60.0}])
    out = str(tmp_path / "c.png")
    assert tool.main(["--run", "a", p, "--run", "b", p, "--output", out, "--ylim", "0", "100"]) == 0
    assert mpimg.imread(out).shape[0] > 100 and out in capsys.readouterr().out
