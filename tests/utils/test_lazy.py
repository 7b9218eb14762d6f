"""Lazily exported names (PEP 562): imported on first access, kept, listed by dir()."""

import sys
import types

import pytest

from resnet_det.utils.lazy import lazy_attributes


def test_a_name_is_imported_on_first_access_and_kept(monkeypatch):
    monkeypatch.delitem(sys.modules, "json", raising=False)
    namespace = {}
    getattr_, dir_ = lazy_attributes("pkg", {"dumps": "json"}, namespace)
    assert "json" not in sys.modules and "dumps" in dir_()
    dumps = getattr_("dumps")
    assert dumps is sys.modules["json"].dumps and namespace["dumps"] is dumps
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'loads'"):
        getattr_("loads")


def test_the_packages_export_their_lazy_names():
    import resnet_det
    import resnet_det.data
    import resnet_det.evaluation

    assert isinstance(resnet_det, types.ModuleType)
    assert "create_model" in dir(resnet_det) and callable(resnet_det.create_model)
    assert resnet_det.evaluation.inference_on_dataset.__module__ == (
        "resnet_det.evaluation.inference"
    )
    assert "read_image" in dir(resnet_det.data) and callable(resnet_det.data.read_image)
    with pytest.raises(AttributeError, match="resnet_det.data"):
        resnet_det.data.no_such_name  # noqa: B018
