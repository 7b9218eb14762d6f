"""The benchmark's timing and table (never a time: shapes, ratios, medians, options)."""

import json

import pytest
import torch
from torch import nn

from benchmarks import harness as B


def _tiny():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))


def _cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_time_interleaved_takes_turns_and_counts():
    calls = []
    times = B.time_interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
        repetitions=3,
        warmup=2,
        device=torch.device("cpu"),
    )
    assert calls == ["a", "b"] * 5  # warm-up calls first, then the timed ones alternate
    assert [len(v) for v in times.values()] == [3, 3]
    with pytest.raises(ValueError, match="repetitions"):
        B.time_interleaved({"a": lambda: None}, repetitions=0, warmup=0, device=torch.device("cpu"))


def test_compare_reports_medians_and_their_ratio(monkeypatch):
    # Fake clock: each call of "ours" lasts 2 ticks, the peer's 1, except one slow outlier.
    clock = {"t": 0.0}
    durations = iter([2, 1, 2, 9, 2, 1])
    monkeypatch.setattr(B.time, "perf_counter", lambda: clock["t"])

    def call():
        clock["t"] += next(durations)

    opts = B.BenchOptions(repetitions=3, warmup=0)
    row = B.compare("x", call, call, peer_name="p", opts=opts, per=2)
    assert (row.ours, row.peer) == (1.0, 0.5)  # medians (the 9 is ignored), per 2 images
    assert row.ratio == 2.0
    assert set(row.extra) == {"ours_process_s", "peer_process_s"}  # the other clock's medians


def test_process_clock_counts_work_not_waiting(monkeypatch):
    # The process clock advances with the process's CPU work only: a call that sleeps costs
    # wall time but (almost) no CPU time. Fake both clocks to keep the test free of timing.
    clocks = {"wall": 0.0, "process": 0.0}
    monkeypatch.setattr(B.time, "perf_counter", lambda: clocks["wall"])
    monkeypatch.setattr(B.time, "process_time", lambda: clocks["process"])

    def work():  # 1 s of CPU
        clocks["wall"] += 1
        clocks["process"] += 1

    def wait():  # 3 s waiting for a core, 1 s of CPU
        clocks["wall"] += 4
        clocks["process"] += 1

    row = B.compare(
        "x",
        work,
        wait,
        peer_name="p",
        opts=B.BenchOptions(repetitions=3, warmup=0, clock="process"),
    )
    assert (row.ours, row.peer, row.ratio) == (1.0, 1.0, 1.0)
    assert (row.extra["ours_wall_s"], row.extra["peer_wall_s"]) == (1.0, 4.0)
    both = B.time_both_clocks({"a": wait}, repetitions=2, warmup=1, device=torch.device("cpu"))
    assert both == {"wall": {"a": [4.0, 4.0]}, "process": {"a": [1.0, 1.0]}}


def test_table_shape_and_json():
    rows = [
        B.BenchRow("a", "s/iter", 2.0, 4.0, "peer a", 0.5, note="n|1"),
        B.skipped_row("b", "s/iter", "peer b", "not installed"),
    ]
    lines = B.format_table(rows).splitlines()
    assert _cells(lines[0]) == list(B.TABLE_COLUMNS)
    assert len(lines) == 2 + len(rows)
    assert all(len(_cells(line)) == len(B.TABLE_COLUMNS) for line in lines[2:])
    assert _cells(lines[2])[:4] == ["a", "2", "4", "0.500"]
    assert _cells(lines[3])[1:4] == ["-", "-", "-"] and "skipped: not installed" in lines[3]
    data = json.loads(json.dumps(B.rows_to_json(rows, device="cpu")))
    assert data["device"] == "cpu" and [r["row"] for r in data["rows"]] == ["a", "b"]


def test_options_are_checked():
    with pytest.raises(ValueError, match="amp"):
        B.BenchOptions(amp="int8")
    with pytest.raises(ValueError, match="repetitions"):
        B.BenchOptions(repetitions=0)
    assert B.BenchOptions(amp="bf16").amp_dtype == torch.bfloat16
    with pytest.raises(ValueError, match="clock"):
        B.BenchOptions(clock="cycles")
    with pytest.raises(ValueError, match="wall"):
        B.BenchOptions(device="cuda", clock="process")  # a GPU's work is not the process's CPU time


def test_machine_header_names_cpus_and_load():
    header = B.machine_header("cpu")
    assert header["cpus"] >= 1 and header["threads"] == torch.get_num_threads()
    assert header["load_average"] is None or len(header["load_average"]) == 3


def test_training_steps_train_and_report_rate():
    model = _tiny()
    before = [p.detach().clone() for p in model.parameters()]
    out = B.time_training_steps(
        model, B.BenchOptions(batch=2, size=8, repetitions=2, warmup=1), num_classes=5
    )
    assert out["images_per_s"] == pytest.approx(2 / out["s_per_step"])
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_classifier_rows_one_per_name():
    rows = B.classifier_rows(
        ["m", "n"],
        B.BenchOptions(batch=2, size=8, repetitions=1, warmup=0),
        ours=lambda n: _tiny(),
        peer=lambda n: _tiny(),
        num_classes=5,
    )
    assert [r.row for r in rows] == ["m train step", "n train step"]
    for r in rows:
        assert r.ratio == pytest.approx(r.ours / r.peer)
        assert r.extra["ours_images_per_s"] == pytest.approx(2 / r.ours)
