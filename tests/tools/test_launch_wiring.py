"""tools/train_net.py and tools/pretrain_net.py always go through engine.launch: a run started
by torchrun joins its process group even with the default --num-gpus 1, and a one-process run
returns main's result."""

import importlib.util
import os

import pytest
import torch.distributed as dist

from resnet_det.engine.launch import find_free_port

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record_main(tool, monkeypatch):
    def main(args):
        return {
            "distributed": dist.is_initialized(),
            "world": dist.get_world_size() if dist.is_initialized() else 1,
        }

    monkeypatch.setattr(tool, "main", main)


@pytest.mark.parametrize("name", ["train_net", "pretrain_net"])
def test_single_process_returns_main_result(name, monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR"):
        monkeypatch.delenv(k, raising=False)
    tool = _tool(name)
    _record_main(tool, monkeypatch)
    assert tool.cli([]) == {"distributed": False, "world": 1}


@pytest.mark.parametrize("name", ["train_net", "pretrain_net"])
def test_torchrun_environment_joins_process_group(name, monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(find_free_port()))
    monkeypatch.setenv("RESNET_DET_LAUNCH_DEVICE", "cpu")
    tool = _tool(name)
    _record_main(tool, monkeypatch)
    assert tool.cli([]) == {"distributed": True, "world": 1}
    assert not dist.is_initialized()  # launch tears the group down afterwards
