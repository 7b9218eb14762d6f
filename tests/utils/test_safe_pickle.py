"""The restricted unpickler reads numpy weights and refuses anything that could run code."""

import os
import pickle

import numpy as np
import pytest
import torch

from resnet_det import create_model, load_weights
from resnet_det.utils.safe_pickle import safe_load, safe_loads

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_arrays_and_containers_load(tmp_path, protocol):
    data = {
        "blobs": {
            "conv1_w": np.arange(6, dtype=np.float32).reshape(2, 3),
            "scalar": np.float32(1.5),
            "n": 3,
            "name": "x",
            "t": (1, [2.0]),
        }
    }
    path = tmp_path / "w.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    loaded = safe_load(path)
    assert np.array_equal(loaded["blobs"]["conv1_w"], data["blobs"]["conv1_w"])
    assert loaded["blobs"]["conv1_w"].dtype == np.float32
    assert loaded["blobs"]["scalar"] == np.float32(1.5)
    assert loaded["blobs"]["t"] == (1, [2.0])


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_running_os_system_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"blobs": {"conv1_w": _RunsCode(marker)}}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="system") as e:
        safe_load(path)
    assert "refusing" in str(e.value)
    # Through the public API as well, and nothing ran.
    with pytest.raises(pickle.UnpicklingError, match="system"):
        load_weights(create_model("resnet20_cifar"), path)
    assert not marker.exists()


def test_other_globals_are_refused():
    payload = pickle.dumps({"x": torch.zeros(2)})  # torch's own rebuild functions
    with pytest.raises(pickle.UnpicklingError, match="torch"):
        safe_loads(payload)
    evil_eval = b"cbuiltins\neval\n(S'1+1'\ntR."
    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        safe_loads(evil_eval)
    evil_codecs = b"c_codecs\nencode\n(S'x'\nS'rot13'\ntR."
    with pytest.raises(pickle.UnpicklingError, match="rot13"):
        safe_loads(evil_codecs)


def test_pth_with_arbitrary_object_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"model": _RunsCode(marker)}, path)
    with pytest.raises(pickle.UnpicklingError):
        load_weights(create_model("resnet20_cifar"), path)
    assert not marker.exists()


def test_refusals_and_unreadable_files_are_user_errors(tmp_path):
    # A pickle.UnpicklingError for callers that catch that, and a WeightsError (a UserError) for
    # the tools, which print it as one line.
    from resnet_det.checkpoint import WeightsFileError
    from resnet_det.utils.errors import UserError, WeightsError

    with pytest.raises(WeightsFileError, match="builtins.eval") as e:
        safe_loads(b"cbuiltins\neval\n(S'1+1'\ntR.")
    assert isinstance(e.value, (WeightsError, UserError, pickle.UnpicklingError))
    truncated = tmp_path / "cut.pkl"
    truncated.write_bytes(pickle.dumps({"w": np.zeros(100)})[:50])
    with pytest.raises(WeightsFileError, match="cut.pkl.*not a readable"):
        safe_load(truncated)
    path = tmp_path / "evil.pth"
    torch.save({"model": _RunsCode(tmp_path / "pwned")}, path)
    with pytest.raises(WeightsFileError, match="evil.pth"):
        load_weights(create_model("resnet20_cifar"), path)
