"""The closing text of a training run: where the outputs are and the next commands."""

import os

from resnet_det.engine.run_summary import format_run_summary


def test_summary_names_the_checkpoint_and_the_next_commands(tmp_path):
    out = tmp_path / "my run"  # a space: the commands must quote it
    out.mkdir()
    (out / "last_checkpoint").write_text("model_0000099.pth")
    (out / "inference").mkdir()
    pictures = {
        "detections": str(out / "detections.png"),
        "training curves": str(out / "training_curves.png"),
    }
    text = format_run_summary(str(out), pictures=pictures)
    ckpt = str(out / "model_0000099.pth")
    config = str(out / "config.yaml")
    assert "checkpoint" in text and ckpt in text
    for path in (*pictures.values(), str(out / "metrics.json"), str(out / "log.txt")):
        assert path in text
    assert f"tensorboard --logdir '{out}'" in text
    lines = text.splitlines()
    evaluate = next(line for line in lines if "--eval-only" in line)
    assert (
        f"tools/train_net.py --config-file '{config}' --eval-only MODEL.WEIGHTS '{ckpt}'"
        in evaluate
    )
    predict = next(line for line in lines if "tools/predict.py" in line)
    assert "--input" in predict and "--output" in predict and f"'{ckpt}'" in predict
    assert any(
        line.strip().startswith("resume:") and line.endswith(f"--config-file '{config}' --resume")
        for line in lines
    )


def test_eval_only_summary_has_no_training_outputs(tmp_path):
    text = format_run_summary(
        str(tmp_path), pictures={"detections": os.path.join(tmp_path, "d.png")}, eval_only=True
    )
    assert "d.png" in text and "metrics.json" not in text and "tensorboard" not in text
    assert "--resume" not in text  # no checkpoint of its own to continue from
