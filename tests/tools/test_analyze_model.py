"""tools/analyze_model.py end to end (subprocess)."""

import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(REPO, "tools", "analyze_model.py")


def _run(*args):
    # One OpenMP thread: the machine's few cores are shared, and spinning threads only slow
    # the tiny single-image forward down.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, TOOL, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        env=env,
    )


def test_resnet18_params_and_gflops():
    proc = _run("--model", "resnet18")
    assert proc.returncode == 0, proc.stderr
    assert "params: 11,689,512" in proc.stdout
    gflops = float(re.search(r"GFLOPs \(conv\+fc[^:]*: ([\d.]+)", proc.stdout).group(1))
    assert gflops == pytest.approx(1.8, rel=0.03)


def test_bad_model_name_is_a_usage_error():
    proc = _run("--model", "resnet5")
    assert proc.returncode == 2
    assert "resnet50" in proc.stderr


@pytest.mark.slow
def test_all_prints_the_family_table():
    proc = _run("--all")
    assert proc.returncode == 0, proc.stderr
    for name in ("resnet152", "vgg19", "resnet1202_cifar", "preact_resnet1001_cifar"):
        assert name in proc.stdout


def test_config_file_with_overrides_measures_its_network():
    proc = _run("--config-file", "configs/digits/resnet20.yaml", "INPUT.CLS.CROP_SIZE", "32")
    assert proc.returncode == 0, proc.stderr
    assert "input: 3x32x32" in proc.stdout
    assert "0.27M" in proc.stdout
