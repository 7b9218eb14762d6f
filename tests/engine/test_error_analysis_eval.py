"""TEST.ERROR_ANALYSIS in the built-in engine's evaluation: the dAP metrics join the results
(so metrics.json), the pictures and report.html land in OUTPUT_DIR/inference/<dataset>, and
each category's PR curve at IoU 0.5 reaches TensorBoard's event file; a VOC test set is
refused before training starts."""

import os

import numpy as np
import pytest

from resnet_det.config import ConfigError, get_cfg
from resnet_det.data import DatasetCatalog, MetadataCatalog
from resnet_det.engine.detection import DetectionTrainer
from resnet_det.engine.events import EventStorage, TensorboardXWriter
from resnet_det.utils.errors import DataError

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DEMO = os.path.join(ROOT, "configs", "demo", "faster_rcnn_shapes.yaml")
SUBSET = "shapes_val_first4_errors"
SMALL = [
    "MODEL.RESNETS.NORM", "GN", "MODEL.FPN.OUT_CHANNELS", "64", "MODEL.ROI_BOX_HEAD.FC_DIM", "64",
    "INPUT.MIN_SIZE_TEST", "64", "INPUT.MAX_SIZE_TEST", "96", "DATALOADER.NUM_WORKERS", "0",
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0", "MODEL.WEIGHTS", "",
]  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def demo_subset(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    if not os.environ.get("RESNET_DET_DATASETS"):
        mp.setenv("RESNET_DET_DATASETS", str(tmp_path_factory.mktemp("datasets")))
    full = DatasetCatalog.get("shapes_val")
    if SUBSET not in DatasetCatalog.list():
        DatasetCatalog.register(SUBSET, lambda: [dict(d) for d in full[:4]])
        MetadataCatalog.get(SUBSET).set(**MetadataCatalog.get("shapes_val").as_dict())
    yield
    mp.undo()


def _cfg(out, *opts):
    cfg = get_cfg()
    cfg.merge_from_file(DEMO)
    cfg.merge_from_list([*SMALL, "DATASETS.TEST", f"['{SUBSET}']", "OUTPUT_DIR", str(out), *opts])
    return cfg


def test_evaluation_with_error_analysis(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    cfg = _cfg(tmp_path, "TEST.ERROR_ANALYSIS", "True")
    model = DetectionTrainer.build_model(cfg)
    with EventStorage(7):
        results = DetectionTrainer.test(cfg, model)
        writer = TensorboardXWriter(str(tmp_path))
        writer.write()
        writer.close()
    keys = {f"dAP/{k}" for k in ("cls", "loc", "both", "dupe", "bkg", "miss")}
    keys |= {"dAP/false_pos", "dAP/false_neg"}
    assert keys <= set(results["bbox"])
    folder = tmp_path / "inference" / SUBSET
    assert (folder / "report.html").is_file() and (folder / "bbox_analysis.png").is_file()

    acc = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    acc.Reload()
    names = MetadataCatalog.get(SUBSET).thing_classes
    tags = [t for t in acc.Tags()["tensors"] if "/PR50/" in t]
    assert sorted(tags) == sorted(f"{SUBSET}/bbox/PR50/{n}" for n in names)
    for tag in tags:
        (event,) = acc.Tensors(tag)
        assert event.step == 7
        data = tensor_util.make_ndarray(event.tensor_proto)  # [6, thresholds]
        assert data.shape == (6, 101)
        tp, fp, tn, fn, precision, recall = data
        # At threshold 0 every detection counts; TP + FN is the category's objects.
        assert np.all(np.diff(tp) <= 0) and np.all(np.diff(fp) <= 0)
        assert len(set((tp + fn).tolist())) == 1 and (tp + fn)[0] > 0
        assert tp[0] + fp[0] > 0
        np.testing.assert_allclose(recall, tp / (tp + fn), rtol=1e-6)


def test_voc_test_set_refused_before_training(tmp_path):
    cfg = _cfg(tmp_path, "TEST.ERROR_ANALYSIS", "True", "DATASETS.TEST", "['shapes_voc_val']")
    with pytest.raises((DataError, ConfigError), match="TEST.ERROR_ANALYSIS"):
        DetectionTrainer.preflight(cfg, train=False, test=True, resume=False)
