"""A tiny registered COCO dataset of generated shapes images and a random-weights checkpoint of
the demo detector, for the predictor and tools/predict.py tests (no training needed)."""

import json
import os
import uuid

import numpy as np
import torch
from PIL import Image

from resnet_det.checkpoint import INPUT_CONTRACT_KEY, detector_input_contract
from resnet_det.config import get_cfg
from resnet_det.data.catalog import DatasetCatalog, MetadataCatalog
from resnet_det.data.datasets.builtin import register_coco_instances
from resnet_det.data.datasets.shapes import SHAPE_CLASSES, render_shapes_image
from resnet_det.modeling.build import build_model

DEMO_CONFIG = os.path.join(
    os.path.dirname(__file__), "..", "..", "configs", "demo", "faster_rcnn_shapes.yaml"
)
MASK_DEMO_CONFIG = os.path.join(os.path.dirname(DEMO_CONFIG), "mask_rcnn_shapes.yaml")
# Small test images and few detections keep a forward pass and a picture under a second.
SMALL = [
    "INPUT.MIN_SIZE_TEST",
    "96",
    "INPUT.MAX_SIZE_TEST",
    "160",
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST",
    "0.0",
    "MODEL.ROI_HEADS.DETECTIONS_PER_IMAGE",
    "10",
    "MODEL.RPN.PRE_NMS_TOPK_TEST",
    "200",
    "MODEL.RPN.POST_NMS_TOPK_TEST",
    "50",
]


def write_images(folder, num=3, split="val", masks=False):
    """Generated shapes images (RGB PNG) and their COCO annotations; returns (files, json).
    masks: each annotation also gets its box as a polygon "segmentation" (for mask AP)."""
    os.makedirs(folder, exist_ok=True)
    images, annotations, files = [], [], []
    for i in range(num):
        rgb, objects = render_shapes_image(0, i, split)
        name = f"{i:06d}.png"
        Image.fromarray(rgb).save(os.path.join(folder, name))
        files.append(os.path.join(folder, name))
        images.append(
            {"id": 100 + i, "file_name": name, "height": rgb.shape[0], "width": rgb.shape[1]}
        )
        for label, x0, y0, x1, y1 in objects:  # (class, XYXY)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": 100 + i,
                    "iscrowd": 0,
                    "category_id": int(label) + 1,
                    "area": float((x1 - x0) * (y1 - y0)),
                    "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                }
            )
            if masks:
                annotations[-1]["segmentation"] = [
                    [
                        float(x0),
                        float(y0),
                        float(x1),
                        float(y0),
                        float(x1),
                        float(y1),
                        float(x0),
                        float(y1),
                    ]
                ]
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(SHAPE_CLASSES)]
    json_file = os.path.join(folder, "instances.json")
    with open(json_file, "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)
    return files, json_file


def register(folder, json_file):
    """Register the folder as a COCO dataset with a unique name; returns the name."""
    name = f"predict_test_{uuid.uuid4().hex[:8]}"
    register_coco_instances(name, {"thing_classes": list(SHAPE_CLASSES)}, json_file, folder)
    return name


def unregister(name):
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


def demo_cfg(dataset, weights, *extra, config=None):
    cfg = get_cfg()
    cfg.merge_from_file(config or DEMO_CONFIG)
    cfg.merge_from_list(
        SMALL
        + [
            "DATASETS.TEST",
            f"['{dataset}']",
            "DATASETS.TRAIN",
            f"['{dataset}']",
            "MODEL.WEIGHTS",
            weights,
        ]
        + list(extra)
    )
    return cfg


def save_random_checkpoint(path, seed=0, config=None):
    """The demo detector (or ``config``'s) with random weights, saved as training saves
    model_final.pth."""
    cfg = get_cfg()
    cfg.merge_from_file(config or DEMO_CONFIG)
    torch.manual_seed(seed)
    model = build_model(cfg)
    # With the input contract, as DetectionTrainer's checkpoints record it.
    torch.save(
        {"model": model.state_dict(), INPUT_CONTRACT_KEY: detector_input_contract(cfg).to_dict()},
        path,
    )
    return path


def rgb_array(path):
    return np.asarray(Image.open(path).convert("RGB"))
