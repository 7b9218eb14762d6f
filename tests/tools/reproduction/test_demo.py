"""The demo's configs: like the paper's pairs, its two detectors differ only in the backbone's
keys and its two pretrainings only in the network; --fast only shortens them."""

from reproduction import DEMO, FAST_DETECT_OPTS, FAST_PRETRAIN_OPTS
from reproduction.paper import repo_path
from resnet_det.config import get_cfg


def _flat(node, prefix=""):
    out = {}
    for k, v in node.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _differing(a_file, b_file, opts=()):
    a, b = get_cfg(), get_cfg()
    for cfg, f in ((a, a_file), (b, b_file)):
        cfg.merge_from_file(repo_path(f))
        cfg.merge_from_list(list(opts))
    fa, fb = _flat(a), _flat(b)
    return {k for k in fa if fa[k] != fb[k]}, a


def test_detectors_differ_only_in_the_backbones_keys():
    vgg, resnet = DEMO.backbones
    differing, cfg = _differing(vgg.detection_config, resnet.detection_config)
    # docs/reproduction.md's allowed differences of a paper pair (the weights and their input
    # contract are set by tools/reproduce.py, the same for both), and the res2 width that
    # ResNet-18's basic blocks need (64; the default is a bottleneck net's 256).
    assert differing <= {
        "MODEL.BACKBONE.NAME",
        "MODEL.RESNETS.DEPTH",
        "MODEL.RESNETS.RES2_OUT_CHANNELS",
        "MODEL.RPN.IN_FEATURES",
        "MODEL.ROI_HEADS.NAME",
        "MODEL.ROI_HEADS.IN_FEATURES",
        "MODEL.ROI_BOX_HEAD.NAME",
        "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION",
        "MODEL.ROI_BOX_HEAD.FC_DIM",
        "OUTPUT_DIR",
    }
    assert "MODEL.BACKBONE.NAME" in differing
    # The paper's recipe underneath: frozen stem/first stage, RoI pooling, 3 anchor ratios.
    assert cfg.MODEL.BACKBONE.FREEZE_AT == 2 and cfg.MODEL.ROI_BOX_HEAD.POOLER_TYPE == "ROIPool"
    assert list(cfg.DATASETS.TRAIN) == ["shapes_train"] and list(cfg.DATASETS.TEST) == [
        "shapes_val"
    ]


def test_pretrainings_differ_only_in_the_network():
    vgg, resnet = DEMO.backbones
    differing, _ = _differing(vgg.pretrain_config, resnet.pretrain_config)
    assert differing == {"MODEL.CLASSIFIER.ARCH", "SOLVER.BASE_LR", "OUTPUT_DIR"}


def test_fast_shortens_every_run():
    for backbone in DEMO.backbones:
        for config, opts in (
            (backbone.pretrain_config, FAST_PRETRAIN_OPTS),
            (backbone.detection_config, FAST_DETECT_OPTS),
        ):
            full, fast = get_cfg(), get_cfg()
            full.merge_from_file(repo_path(config))
            fast.merge_from_file(repo_path(config))
            fast.merge_from_list(opts)
            assert fast.SOLVER.MAX_ITER <= 3 < full.SOLVER.MAX_ITER
