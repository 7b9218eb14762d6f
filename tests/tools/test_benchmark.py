"""tools/benchmark.py: the rows it is asked for, as a Markdown table and as JSON."""

import json

import benchmark as tool


def test_tool_prints_the_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "rows.json"
    tool.main(
        [
            "--rows",
            "classifier",
            "coco",
            "--models",
            "resnet18",
            "--device",
            "cpu",
            "--batch",
            "2",
            "--size",
            "32",
            "--repetitions",
            "1",
            "--warmup",
            "0",
            "--coco-images",
            "6",
            "--coco-dets",
            "3",
            "--coco-repetitions",
            "1",
            "--clock",
            "process",
            "--output",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    table = [line for line in printed.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 3  # header, rule, resnet18 + two COCO rows
    data = json.loads(out.read_text())
    assert [r["row"] for r in data["rows"]] == [
        "resnet18 train step",
        "COCO eval, tools/evaluate.py path",
        "COCO eval, metric only",
    ]
    assert data["args"]["rows"] == ["classifier", "coco"] and data["args"]["clock"] == "process"
    assert all("ours_wall_s" in r["extra"] for r in data["rows"])  # the other clock rides along
    assert "load_average" in data and "load_average_at_start" in data and data["cpus"] >= 1
