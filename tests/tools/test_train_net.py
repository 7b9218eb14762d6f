"""tools/train_net.py end to end on the demo data with a tiny detector: outputs of a run,
--eval-only, exact --resume, the embedded default config and the detectron2 engine switch."""

import importlib.util
import json
import os

import pytest
import torch
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DEMO = os.path.join(ROOT, "configs", "demo", "faster_rcnn_shapes.yaml")


def _tool():
    spec = importlib.util.spec_from_file_location(
        "train_net", os.path.join(ROOT, "tools", "train_net.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


VAL_SUBSET = "shapes_val_first8"


@pytest.fixture(scope="module", autouse=True)
def demo_datasets(tmp_path_factory):
    """The demo sets (under a private RESNET_DET_DATASETS unless the caller points at a cache),
    plus the first 8 validation images as their own set, to keep the evaluations short."""
    from resnet_det.data import DatasetCatalog, MetadataCatalog

    mp = pytest.MonkeyPatch()
    if not os.environ.get("RESNET_DET_DATASETS"):
        mp.setenv("RESNET_DET_DATASETS", str(tmp_path_factory.mktemp("datasets")))
    full = DatasetCatalog.get("shapes_val")  # generates the data, fills the metadata
    if VAL_SUBSET not in DatasetCatalog.list():
        DatasetCatalog.register(VAL_SUBSET, lambda: [dict(d) for d in full[:8]])
        # Same json_file: COCOeval scores all 100 ground-truth images, the same way in both
        # runs compared below.
        MetadataCatalog.get(VAL_SUBSET).set(**MetadataCatalog.get("shapes_val").as_dict())
    yield
    mp.undo()


# A detector small enough for a few CPU iterations a second: R18-FPN with GroupNorm (no
# dependence on the per-process batch), 64 px images.
TINY = [
    "MODEL.RESNETS.NORM",
    "GN",
    "MODEL.FPN.OUT_CHANNELS",
    "64",
    "MODEL.ROI_BOX_HEAD.FC_DIM",
    "64",
    "INPUT.MIN_SIZE_TRAIN",
    "[64]",
    "INPUT.MAX_SIZE_TRAIN",
    "96",
    "INPUT.MIN_SIZE_TEST",
    "64",
    "INPUT.MAX_SIZE_TEST",
    "96",
    "MODEL.RPN.BATCH_SIZE_PER_IMAGE",
    "32",
    "MODEL.RPN.POST_NMS_TOPK_TRAIN",
    "32",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
    "16",
    "SOLVER.IMS_PER_BATCH",
    "2",
    "SOLVER.BASE_LR",
    "0.01",
    "SOLVER.WARMUP_ITERS",
    "2",
    "SOLVER.STEPS",
    "[3]",
    "SOLVER.MAX_ITER",
    "4",
    "SOLVER.CHECKPOINT_PERIOD",
    "2",
    "LOG_PERIOD",
    "1",
    "DATALOADER.NUM_WORKERS",
    "0",
    "DATASETS.TEST",
    f"['{VAL_SUBSET}']",
]


def _metrics(out):
    with open(os.path.join(out, "metrics.json")) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_train_then_eval_only(tmp_path, capsys):
    tool = _tool()
    out = str(tmp_path / "run")
    results = tool.cli(["--config-file", DEMO, *TINY, "OUTPUT_DIR", out])
    assert set(results["bbox"]) >= {"AP", "AP50", "AP75"}
    for name in (
        "config.yaml",
        "log.txt",
        "metrics.json",
        "last_checkpoint",
        "model_final.pth",
        "model_0000001.pth",
        "detections.png",
        "training_curves.png",
    ):
        assert os.path.isfile(os.path.join(out, name)), name
    # The run ends by saying where its outputs are and what to type next.
    printed = capsys.readouterr().out
    summary = printed[printed.index("Outputs of this run:") :]
    for name in (
        "model_final.pth",
        "metrics.json",
        "detections.png",
        "training_curves.png",
        "--eval-only",
        "tools/predict.py",
        "--resume",
        "tensorboard --logdir",
    ):
        assert name in summary, name
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(out))
    with open(os.path.join(out, "config.yaml")) as f:
        assert "ENGINE: builtin" in f.read()
    lines = _metrics(out)
    train = [r for r in lines if "total_loss" in r]
    assert {r["iteration"] for r in train} >= {0, 3}
    for r in train:
        assert {"loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg", "lr"} <= set(r)
    final = [r for r in lines if "bbox/AP50" in r][-1]
    assert final["bbox/AP50"] == pytest.approx(results["bbox"]["AP50"])
    with Image.open(os.path.join(out, "detections.png")) as im:
        assert im.size[0] >= 2 * 64 and im.size[1] >= 64
    # --eval-only with the trained weights reproduces the final evaluation.
    again = tool.cli(
        [
            "--config-file",
            DEMO,
            "--eval-only",
            *TINY,
            "OUTPUT_DIR",
            str(tmp_path / "eval"),
            "MODEL.WEIGHTS",
            os.path.join(out, "model_final.pth"),
        ]
    )
    assert again["bbox"]["AP"] == pytest.approx(results["bbox"]["AP"], abs=1e-6)
    assert again["bbox"]["AP50"] == pytest.approx(results["bbox"]["AP50"], abs=1e-6)


def test_resume_after_interruption_gives_identical_weights(tmp_path):
    tool = _tool()
    no_eval = TINY + ["DATASETS.TEST", "[]"]
    full = str(tmp_path / "full")
    tool.cli(["--config-file", DEMO, *no_eval, "OUTPUT_DIR", full])
    # The interrupted run: what a crash after the checkpoint of iteration 2 (model_0000001)
    # leaves behind; later checkpoints never happened.
    part = str(tmp_path / "part")
    tool.cli(["--config-file", DEMO, *no_eval, "OUTPUT_DIR", part])
    for name in os.listdir(part):
        if name.startswith("model_") and name != "model_0000001.pth":
            os.remove(os.path.join(part, name))
    with open(os.path.join(part, "last_checkpoint"), "w") as f:
        f.write("model_0000001.pth")
    tool.cli(["--config-file", DEMO, "--resume", *no_eval, "OUTPUT_DIR", part])
    a = torch.load(os.path.join(full, "model_final.pth"), weights_only=True)["model"]
    b = torch.load(os.path.join(part, "model_final.pth"), weights_only=True)["model"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # The resumed run really started at iteration 2 (not from scratch).
    resumed = [r["iteration"] for r in _metrics(part) if "total_loss" in r]
    assert resumed.count(2) == 2 and resumed.count(1) == 1
    # ...and training did move the weights.
    first = torch.load(os.path.join(part, "model_0000001.pth"), weights_only=True)["model"]
    assert any(not torch.equal(first[k], a[k]) for k in a if a[k].is_floating_point())


def test_no_config_file_runs_the_embedded_demo():
    tool = _tool()
    args = tool.default_argument_parser().parse_args([])
    args.engine = None
    cfg = tool.load_cfg(args)
    assert os.path.samefile(tool.DEFAULT_CONFIG, DEMO)
    assert tuple(cfg.DATASETS.TRAIN) == ("shapes_train",) and tuple(cfg.DATASETS.TEST) == (
        "shapes_val",
    )
    assert cfg.OUTPUT_DIR == "./output/demo_shapes" and cfg.MODEL.WEIGHTS == ""


def test_detectron2_engine_without_detectron2_says_how_to_install(capsys):
    try:
        import detectron2  # noqa: F401

        import resnet_det.d2.train  # noqa: F401

        pytest.skip("detectron2 and the plugin are installed")
    except ImportError:
        pass
    tool = _tool()
    with pytest.raises(SystemExit) as exc:
        tool.cli(["--engine", "detectron2", "--config-file", DEMO])
    assert "detectron2" in str(exc.value) and "pip install" in str(exc.value)
    assert "Engine: detectron2" in capsys.readouterr().out


def test_seed_minus_one_run_is_reproduced_from_its_config_yaml(tmp_path):
    """SEED -1 draws a seed at set-up; the running config holds it and OUTPUT_DIR/config.yaml
    records it, so rerunning from that file repeats the run exactly: the same losses at every
    iteration and bit-identical final weights (with a data-loading worker process, whose seed
    must come from SEED too, not from the clock)."""
    import yaml

    tool = _tool()
    opts = TINY + ["DATASETS.TEST", "[]", "DATALOADER.NUM_WORKERS", "1", "SEED", "-1"]
    first = str(tmp_path / "first")
    tool.cli(["--config-file", DEMO, *opts, "OUTPUT_DIR", first])
    saved = os.path.join(first, "config.yaml")
    with open(saved) as f:
        seed = yaml.safe_load(f)["SEED"]
    assert isinstance(seed, int) and seed >= 0
    again = str(tmp_path / "again")
    tool.cli(["--config-file", saved, "OUTPUT_DIR", again])
    other = str(tmp_path / "other_seed")  # shows that the losses do depend on the seed
    tool.cli(["--config-file", saved, "OUTPUT_DIR", other, "SEED", str(seed + 1)])

    def losses(out):
        rows = [r for r in _metrics(out) if "total_loss" in r]
        return [
            {
                k: v
                for k, v in r.items()
                if k.startswith("loss") or k in ("total_loss", "lr", "iteration")
            }
            for r in rows
        ]

    def weights(out):
        return torch.load(os.path.join(out, "model_final.pth"), weights_only=True)["model"]

    assert len(losses(first)) == 4 and losses(again) == losses(first)
    a, b = weights(first), weights(again)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert losses(other) != losses(first)
