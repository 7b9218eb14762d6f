import pytest

from resnet_det.data.catalog import DatasetCatalog, Lazy, MetadataCatalog, common_thing_classes
from resnet_det.utils.errors import DataError, UserKeyError


@pytest.fixture
def name():
    n = "test_catalog_tiny_set"
    yield n
    if n in DatasetCatalog:
        DatasetCatalog.remove(n)
    MetadataCatalog.remove(n)


def test_register_get_calls_function_each_time(name):
    calls = []

    def load():
        calls.append(1)
        return [{"file_name": "a.jpg", "image_id": 1}]

    DatasetCatalog.register(name, load)
    assert name in DatasetCatalog.list()
    assert calls == []  # registration does not load
    assert DatasetCatalog.get(name) == [{"file_name": "a.jpg", "image_id": 1}]
    DatasetCatalog.get(name)
    assert len(calls) == 2  # nothing cached


def test_unknown_name_lists_close_names(name):
    DatasetCatalog.register(name, lambda: [])
    with pytest.raises(UserKeyError) as e:
        DatasetCatalog.get(name + "x")
    assert name in str(e.value) and "did you mean" in str(e.value)


def test_reading_options_go_to_functions_that_name_them(name):
    calls = []

    def scan(on_bad_image="stop"):
        calls.append(on_bad_image)
        return []

    DatasetCatalog.register(name, scan)
    DatasetCatalog.get(name, on_bad_image="skip", unrelated=1)
    DatasetCatalog.get(name)
    assert calls == ["skip", "stop"]
    DatasetCatalog.remove(name)
    DatasetCatalog.register(name, lambda **options: [options])
    assert DatasetCatalog.get(name, on_bad_image="skip") == [{"on_bad_image": "skip"}]
    DatasetCatalog.remove(name)
    # An in-memory set has no folder to skip: the option does not apply to it.
    DatasetCatalog.register(name, lambda: [{"image_id": 1}])
    assert DatasetCatalog.get(name, on_bad_image="skip") == [{"image_id": 1}]


def test_duplicate_registration_raises(name):
    DatasetCatalog.register(name, lambda: [])
    with pytest.raises(ValueError, match=name):
        DatasetCatalog.register(name, lambda: [])


def test_function_must_return_list(name):
    DatasetCatalog.register(name, lambda: ({"a": 1},))
    with pytest.raises(TypeError, match=name):
        DatasetCatalog.get(name)


def test_metadata_set_get_conflict_and_lazy(name):
    meta = MetadataCatalog.get(name)
    assert MetadataCatalog.get(name) is meta
    meta.set(thing_classes=["a", "b"], evaluator_type="coco")
    assert meta.thing_classes == ["a", "b"]
    meta.set(thing_classes=["a", "b"])  # same value: fine
    with pytest.raises(ValueError, match="thing_classes"):
        meta.set(thing_classes=["b", "a"])
    with pytest.raises(AttributeError, match="json_file"):
        _ = meta.json_file
    assert meta.get("json_file", "default") == "default"
    state = {"root": "/one"}
    meta.set(json_file=Lazy(lambda: state["root"] + "/x.json"))
    assert meta.json_file == "/one/x.json"
    state["root"] = "/two"
    assert meta.json_file == "/two/x.json"  # resolved at every access


def test_common_thing_classes(name):
    other = name + "_other"
    MetadataCatalog.get(name).set(thing_classes=["a", "b"])
    try:
        assert common_thing_classes([name, other]) == ["a", "b"]  # other has no list
        assert common_thing_classes([other]) is None
        MetadataCatalog.get(other).set(thing_classes=["b", "a"])
        with pytest.raises(DataError, match=f"{name}.*{other}.*different thing_classes"):
            common_thing_classes([name, other])
    finally:
        MetadataCatalog.remove(other)
