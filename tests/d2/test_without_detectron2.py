"""Without detectron2 (runs in every environment, never skipped): resnet_det works, and only
the d2 path says that detectron2 is missing and how to build it."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# sys.modules["detectron2"] = None makes every "import detectron2" raise ImportError, as if it
# were not installed, also in the environment that has it.
BLOCK = "import sys\nsys.modules['detectron2'] = None\n"


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-c", BLOCK + code, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_resnet_det_works_and_does_not_import_detectron2():
    proc = _python(
        "import resnet_det, resnet_det.config, resnet_det.modeling, resnet_det.checkpoint\n"
        "m = resnet_det.create_model('resnet18')\n"
        "assert sys.modules['detectron2'] is None\n"
        "print('params', sum(p.numel() for p in m.parameters()))"
    )
    assert proc.returncode == 0, proc.stderr
    assert "params 11689512" in proc.stdout  # torchvision's resnet18 count


def test_import_resnet_det_d2_raises_with_install_hint():
    proc = _python(
        "try:\n"
        "    import resnet_det.d2\n"
        "except ImportError as e:\n"
        "    print('IMPORTERROR', e)\n"
        "else:\n"
        "    print('IMPORTED')\n"
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "IMPORTERROR" in out and "IMPORTED" not in out
    assert "pip install --no-build-isolation" in out
    assert "github.com/facebookresearch/detectron2" in out
    assert "setuptools<81" in out


def test_train_net_detectron2_engine_exits_nonzero_with_hint():
    script = os.path.join(ROOT, "tools", "train_net.py")
    proc = _python(
        "import runpy; sys.argv = sys.argv[1:]\nrunpy.run_path(sys.argv[0], run_name='__main__')",
        script,
        "--engine",
        "detectron2",
        "OUTPUT_DIR",
        os.devnull + "_unused",
    )
    assert proc.returncode != 0
    assert "detectron2" in proc.stdout  # the engine line, printed at start-up
    assert "pip install --no-build-isolation" in proc.stderr
    assert "Traceback" not in proc.stderr
