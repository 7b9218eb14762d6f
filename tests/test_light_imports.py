"""What importing the package's light parts brings in: resnet_det, resnet_det.data (the
catalog and every built-in dataset name) and resnet_det.evaluation import no torch, so that
scoring a results file (tools/evaluate.py) starts without it; the names they load on first use
(PEP 562) are the objects of the modules that define them, and every name in their __all__
resolves."""

import importlib
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIGHT_PACKAGES = ["resnet_det", "resnet_det.data", "resnet_det.evaluation"]


@pytest.mark.parametrize("package", LIGHT_PACKAGES)
def test_importing_the_package_imports_no_torch(package):
    code = (
        f"import sys, {package}\n"
        "print(sorted(m for m in ('torch', 'torchvision', 'matplotlib') if m in sys.modules))"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout


@pytest.mark.parametrize("package", LIGHT_PACKAGES)
def test_lazy_names_are_the_modules_objects(package):
    module = importlib.import_module(package)
    lazy = module._LAZY
    assert lazy and set(lazy) <= set(dir(module))
    for name, where in lazy.items():
        source = importlib.import_module(where, package)  # absolute, or relative: ".module"
        assert getattr(module, name) is getattr(source, name), name
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        _ = module.not_a_name
