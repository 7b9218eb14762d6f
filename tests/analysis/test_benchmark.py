import pytest
import torch
from torch import nn

from resnet_det.analysis.benchmark import compare_classifier_throughput, time_training_steps


def _tiny():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))


def test_time_training_steps_updates_weights_and_reports_rate():
    model = _tiny()
    before = [p.detach().clone() for p in model.parameters()]
    out = time_training_steps(model, batch_size=2, image_size=8, num_classes=5,
                              device=torch.device("cpu"), steps=2, warmup=1)
    assert out["images_per_s"] == pytest.approx(2 / out["s_per_step"])
    # The timed steps really train: SGD moved the weights.
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_compare_reports_ratio_of_the_two_rates():
    rows = compare_classifier_throughput({"m": _tiny}, {"m": _tiny}, repeats=1, batch_size=2,
                                         image_size=8, num_classes=5,
                                         device=torch.device("cpu"), steps=1, warmup=0)
    (r,) = rows
    assert r["model"] == "m"
    assert r["ratio"] == pytest.approx(r["ours_img_s"] / r["peer_img_s"])


def test_compare_rejects_unpaired_names():
    with pytest.raises(ValueError, match="other"):
        compare_classifier_throughput({"m": _tiny}, {"other": _tiny}, batch_size=1,
                                      image_size=8, num_classes=5, device=torch.device("cpu"))


def test_steps_must_be_positive():
    with pytest.raises(ValueError, match="steps"):
        time_training_steps(_tiny(), batch_size=1, image_size=8, num_classes=5,
                            device=torch.device("cpu"), steps=0)
