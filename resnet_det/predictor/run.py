"""The loop of tools/predict.py: inputs in batches, pictures and predictions.json out.

An input that cannot be read (missing, empty, not an image, a video without OpenCV) is
reported by name and left out; the others are processed, and the summary counts them.
"""

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import torch

from ..data.io import BadImageError
from ..utils.progress import Progress
from ..utils.visualize import draw_detections
from .inputs import VIDEO_EXTENSIONS, to_image_tensor
from .outputs import ResultsIds, draw_prediction, picture_path, write_predictions
from .predictor import Predictor

__all__ = ["PredictSummary", "predict_files", "is_video"]

logger = logging.getLogger(__name__)


@dataclass
class PredictSummary:
    """What a run of ``predict_files`` did."""

    images: int = 0
    seconds: float = 0.0
    inference_seconds: float = 0.0
    pictures: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)  # one message per input left out
    predictions: Optional[str] = None

    def describe(self) -> str:
        rate = self.images / self.seconds if self.seconds else 0.0
        infer = self.images / self.inference_seconds if self.inference_seconds else 0.0
        text = (
            f"{self.images} images in {self.seconds:.1f} s: {rate:.2f} images/s overall, "
            f"{infer:.2f} images/s in the detector"
        )
        if self.skipped:
            text += f"; {len(self.skipped)} inputs skipped"
        return text


def is_video(name: str) -> bool:
    """A video file (by extension) or a webcam index ("0", "1", ...)."""
    return name.isdigit() or name.lower().endswith(VIDEO_EXTENSIONS)


def _rgb(image: torch.Tensor, fmt: str) -> torch.Tensor:
    return image.flip(0) if fmt == "BGR" else image


def predict_files(
    predictor: Predictor,
    files: Sequence[str],
    output: Optional[str],
    *,
    batch_size: int = 1,
    dataset: Optional[str] = None,
    on_skip=None,
    max_frames: Optional[int] = None,
) -> PredictSummary:
    """Run ``predictor`` on ``files`` and write the outputs.

    Args:
        predictor: the detector; its score threshold (MODEL.ROI_HEADS.SCORE_THRESH_TEST) is
            also the pictures' threshold.
        files: image files, video files, webcam indices.
        output: a folder (a picture per input + predictions.json), a picture file name for a
            single image input (+ its .json beside it), or None (nothing written).
        batch_size: images per forward pass.
        dataset: registered dataset whose ids predictions.json uses (outputs.ResultsIds).
        on_skip: called with the message of each input left out (default: logged).
        max_frames: stop each video / webcam after this many frames.
    """
    summary = PredictSummary()
    on_skip = on_skip or (lambda message: logger.warning("%s", message))
    single_file = (
        output is not None
        and len(files) == 1
        and not os.path.isdir(output)
        and os.path.splitext(output)[1].lower() in (".png", ".jpg", ".jpeg")
    )
    if output is not None and not single_file:
        os.makedirs(output, exist_ok=True)
    ids = ResultsIds(len(predictor.class_names), dataset)
    entries: List[Dict[str, Any]] = []
    thresh = float(predictor.cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST)
    start = time.perf_counter()
    pending: List[tuple] = []

    def flush():
        if not pending:
            return
        t0 = time.perf_counter()
        results = predictor.run_inputs([p[2] for p in pending])
        summary.inference_seconds += time.perf_counter() - t0
        for (name, original, _), result in zip(pending, results):
            summary.images += 1
            entries.extend(ids.entries(name, result))
            if output is not None:
                path = picture_path(output, name, single_file)
                summary.pictures.append(
                    draw_prediction(
                        _rgb(original, predictor.input_format),
                        result,
                        path,
                        class_names=predictor.class_names,
                        score_thresh=thresh,
                        title=os.path.basename(name),
                    )
                )
        pending.clear()

    images = [f for f in files if not is_video(f)]
    with Progress(len(images), desc="Predict", unit="img", logger=logger) as progress:
        for name in files:
            if is_video(name):
                flush()
                _predict_video(predictor, name, output, entries, summary, on_skip, max_frames)
                continue
            try:
                original = to_image_tensor(name, predictor.input_format)
            except (BadImageError, ValueError) as e:
                summary.skipped.append(f"skipped {name}: {e}")
                on_skip(summary.skipped[-1])
                progress.update(1)
                continue
            pending.append((name, original, predictor.model_input(original)))
            if len(pending) >= batch_size:
                flush()
            progress.update(1)
        flush()
    if output is not None:
        json_path = (
            os.path.splitext(output)[0] + ".json"
            if single_file
            else os.path.join(output, "predictions.json")
        )
        summary.predictions = write_predictions(json_path, entries)
    summary.seconds = time.perf_counter() - start
    return summary


def _predict_video(
    predictor: Predictor,
    name: str,
    output: Optional[str],
    entries: list,
    summary: PredictSummary,
    on_skip,
    max_frames: Optional[int],
) -> None:
    """Frames of a video file or webcam through the detector; drawn frames to
    OUTPUT/<stem>.mp4. Needs OpenCV (opencv-python-headless)."""
    try:
        import cv2
    except ImportError:
        summary.skipped.append(
            f"skipped {name}: video and webcam input need OpenCV "
            "(pip install opencv-python-headless)"
        )
        on_skip(summary.skipped[-1])
        return
    capture = cv2.VideoCapture(int(name) if name.isdigit() else name)
    if not capture.isOpened():
        summary.skipped.append(f"skipped {name}: OpenCV cannot open it as a video")
        on_skip(summary.skipped[-1])
        return
    stem = f"webcam{name}" if name.isdigit() else os.path.splitext(os.path.basename(name))[0]
    writer = None
    thresh = float(predictor.cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST)
    frame_index = 0
    try:
        while max_frames is None or frame_index < max_frames:
            ok, frame = capture.read()  # BGR
            if not ok:
                break
            bgr = torch.from_numpy(frame).permute(2, 0, 1).contiguous()
            image = bgr if predictor.input_format == "BGR" else bgr.flip(0)
            t0 = time.perf_counter()
            result = predictor.run_inputs([predictor.model_input(image)])[0]
            summary.inference_seconds += time.perf_counter() - t0
            summary.images += 1
            for e in ResultsIds(len(predictor.class_names)).entries(name, result):
                e.update(image_id=f"{stem}/{frame_index}", frame=frame_index)
                entries.append(e)
            if output is not None:
                drawn = draw_detections(
                    bgr.flip(0),
                    result["boxes"],
                    result["labels"],
                    result["scores"],
                    predictor.class_names,
                    score_thresh=thresh,
                    masks=result.get("masks"),
                )
                out = drawn.flip(0).permute(1, 2, 0).contiguous().numpy()
                if writer is None:
                    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
                    path = os.path.join(output, stem + ".mp4")
                    writer = cv2.VideoWriter(
                        path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (out.shape[1], out.shape[0])
                    )
                    summary.pictures.append(path)
                writer.write(out)
            frame_index += 1
    finally:
        capture.release()
        if writer is not None:
            writer.release()
