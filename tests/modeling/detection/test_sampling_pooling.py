"""Per-image seeded fg/bg sampling and the RoI pooler, against torchvision's own ops."""

from collections import OrderedDict

import pytest
import torch
from torchvision.ops import MultiScaleRoIAlign, roi_align, roi_pool

from resnet_det.modeling.detection import RoIPooler, SeededBalancedSampler, image_seed


def _labels(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-1, 3, (n,), generator=g)  # -1 ignore, 0 bg, >0 fg


def test_seeded_draws_do_not_depend_on_the_rest_of_the_batch():
    sampler = SeededBalancedSampler(32, 0.25)
    a, b = _labels(500, 0), _labels(400, 1)
    sa, sb = image_seed(0, 7, 11, "roi"), image_seed(0, 7, 12, "roi")
    sampler.image_seeds = [sa, sb]
    pos2, neg2 = sampler([a, b])
    sampler.image_seeds = [sb]
    pos1, neg1 = sampler([b])
    assert torch.equal(pos2[1], pos1[0]) and torch.equal(neg2[1], neg1[0])
    # Counts as torchvision's sampler: 8 positives (25% of 32), the rest negatives.
    assert int(pos2[0].sum()) == 8 and int(neg2[0].sum()) == 24
    assert torch.all(a[pos2[0].bool()] >= 1) and torch.all(a[neg2[0].bool()] == 0)
    # Another iteration draws differently; the global RNG is not touched.
    state = torch.get_rng_state()
    sampler.image_seeds = [image_seed(0, 8, 12, "roi")]
    pos3, _ = sampler([b])
    assert not torch.equal(pos3[0], pos1[0])
    assert torch.equal(state, torch.get_rng_state())


def test_unseeded_sampler_is_torchvisions():
    sampler = SeededBalancedSampler(16, 0.5)
    labels = [_labels(300, 3)]
    torch.manual_seed(5)
    ours = sampler(labels)
    torch.manual_seed(5)
    from torchvision.models.detection._utils import BalancedPositiveNegativeSampler

    ref = BalancedPositiveNegativeSampler(16, 0.5)(labels)
    assert torch.equal(ours[0][0], ref[0][0]) and torch.equal(ours[1][0], ref[1][0])


def test_image_seed_is_stable_and_distinct():
    assert image_seed(0, 1, "000005", "rpn") == image_seed(0, 1, "000005", "rpn")
    seeds = {
        image_seed(s, it, i, salt)
        for s in (0, 1)
        for it in (0, 1)
        for i in (1, 2)
        for salt in ("rpn", "roi")
    }
    assert len(seeds) == 16


def _boxes():
    return [
        torch.tensor([[4.0, 6.0, 40.0, 50.0], [0.0, 0.0, 127.0, 95.0], [10.5, 3.2, 20.7, 90.0]]),
        torch.tensor([[30.0, 30.0, 200.0, 180.0]]),
    ]


@pytest.mark.parametrize("kind", ["ROIAlignV2", "ROIAlign", "ROIPool"])
def test_single_level_pooler_matches_torchvision_ops(kind):
    x = torch.randn(2, 8, 16, 24)
    pooler = RoIPooler(
        in_features=["res4"], strides=[16], output_size=7, pooler_type=kind, sampling_ratio=2
    )
    out = pooler({"res4": x}, _boxes(), [(256, 384)] * 2)
    rois = torch.cat(
        [torch.cat([torch.full((len(b), 1), float(i)), b], 1) for i, b in enumerate(_boxes())]
    )
    if kind == "ROIPool":
        ref = roi_pool(x, rois, (7, 7), 1 / 16)
    else:
        ref = roi_align(x, rois, (7, 7), 1 / 16, 2, aligned=kind == "ROIAlignV2")
    torch.testing.assert_close(out, ref)


def test_multi_level_pooler_matches_multiscale_roi_align():
    g = torch.Generator().manual_seed(0)
    feats = OrderedDict(
        (f"p{k}", torch.randn(2, 4, 256 // 2**k, 256 // 2**k, generator=g)) for k in (2, 3, 4, 5)
    )
    boxes = [
        torch.tensor(
            [[0.0, 0.0, 20.0, 20.0], [10.0, 10.0, 120.0, 130.0], [0.0, 0.0, 250.0, 250.0]]
        ),
        torch.tensor([[5.0, 5.0, 60.0, 70.0], [1.0, 2.0, 8.0, 9.0]]),
    ]
    ours = RoIPooler(
        in_features=list(feats),
        strides=[4, 8, 16, 32],
        output_size=7,
        pooler_type="ROIAlign",
        sampling_ratio=2,
    )(feats, boxes, [(256, 256)] * 2)
    ref = MultiScaleRoIAlign(list(feats), 7, 2)(feats, boxes, [(256, 256)] * 2)
    torch.testing.assert_close(ours, ref)


def test_pooler_rejects_bad_arguments():
    with pytest.raises(ValueError, match="pooler_type"):
        RoIPooler(in_features=["res4"], strides=[16], output_size=7, pooler_type="ROIMax")
    with pytest.raises(ValueError, match="powers of two"):
        RoIPooler(in_features=["a"], strides=[12], output_size=7)
