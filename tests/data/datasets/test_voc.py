import pytest

from resnet_det.data.datasets.voc import VOC_CLASSES, load_voc_instances
from resnet_det.data.skips import SkipCounts
from resnet_det.utils.errors import DataError, MissingFileError

XML = """<annotation>
  <filename>{stem}.jpg</filename>
  <size><width>{w}</width><height>{h}</height><depth>3</depth></size>
  {objects}
</annotation>"""
OBJ = """<object><name>{name}</name>{difficult}
  <bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox>
</object>"""


def _obj(name, box, difficult=None):
    d = "" if difficult is None else f"<difficult>{difficult}</difficult>"
    return OBJ.format(name=name, difficult=d, x0=box[0], y0=box[1], x1=box[2], y1=box[3])


def _tree(tmp_path, images, split="trainval"):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "ImageSets" / "Main").mkdir(parents=True)
    for stem, (w, h, objs) in images.items():
        (tmp_path / "Annotations" / f"{stem}.xml").write_text(
            XML.format(stem=stem, w=w, h=h, objects="\n".join(objs))
        )
    (tmp_path / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(s + "\n" for s in images))
    return str(tmp_path)


def test_minus_one_convention_difficult_and_ids(tmp_path):
    dirname = _tree(
        tmp_path,
        {
            "000005": (
                500,
                375,
                [_obj("chair", (263, 211, 324, 339), 0), _obj("tvmonitor", (1, 1, 500, 375), 1)],
            ),
            "000007": (300, 200, [_obj("aeroplane", (10, 20, 30, 40))]),  # no <difficult> tag
        },
    )
    dicts = load_voc_instances(dirname, "trainval", VOC_CLASSES)
    assert [d["image_id"] for d in dicts] == ["000005", "000007"]
    d = dicts[0]
    assert d["file_name"] == f"{dirname}/JPEGImages/000005.jpg"
    assert (d["height"], d["width"]) == (375, 500)
    assert d["annotations"] == [
        {"bbox": [262.0, 210.0, 324.0, 339.0], "category_id": 8, "iscrowd": 0, "difficult": 0},
        # The whole image in VOC's 1-based inclusive pixels is [0, W] x [0, H] continuous.
        {"bbox": [0.0, 0.0, 500.0, 375.0], "category_id": 19, "iscrowd": 0, "difficult": 1},
    ]
    assert dicts[1]["annotations"] == [
        {"bbox": [9.0, 19.0, 30.0, 40.0], "category_id": 0, "iscrowd": 0, "difficult": 0}
    ]


def test_custom_class_names(tmp_path):
    dirname = _tree(tmp_path, {"a": (50, 50, [_obj("square", (2, 2, 10, 10))])}, split="val")
    dicts = load_voc_instances(dirname, "val", ("circle", "square"))
    assert dicts[0]["annotations"][0]["category_id"] == 1


def test_missing_xml_names_the_file(tmp_path):
    dirname = _tree(tmp_path, {"000001": (50, 50, [])})
    with open(f"{dirname}/ImageSets/Main/trainval.txt", "a") as f:
        f.write("000002\n")
    with pytest.raises(MissingFileError, match=r"Annotations/000002\.xml"):
        load_voc_instances(dirname, "trainval")


def test_missing_split_file_names_it(tmp_path):
    dirname = _tree(tmp_path, {"000001": (50, 50, [])})
    with pytest.raises(MissingFileError, match=r"ImageSets/Main/test\.txt"):
        load_voc_instances(dirname, "test")


def test_unknown_class_names_file_and_class(tmp_path):
    dirname = _tree(tmp_path, {"000003": (50, 50, [_obj("unicorn", (2, 2, 10, 10))])})
    with pytest.raises(DataError) as e:
        load_voc_instances(dirname, "trainval")
    assert "000003.xml" in str(e.value) and "'unicorn'" in str(e.value)


@pytest.mark.parametrize(
    "xml, reason",
    [
        (
            "<annotation><size><width>0</width><height>5</height></size></annotation>",
            "bad annotation",
        ),
        ("<annotation><size><width>5</width></size></annotation>", "bad annotation"),
        ("<annotation><size><width>a</width>", "bad annotation"),
    ],
)
def test_image_faults_stop_or_skip_by_policy(tmp_path, xml, reason):
    dirname = _tree(
        tmp_path, {"000001": (50, 50, [_obj("cat", (2, 2, 10, 10))]), "000002": (50, 50, [])}
    )
    with open(f"{dirname}/Annotations/000002.xml", "w") as f:
        f.write(xml)
    with pytest.raises(DataError, match=r"000002\.xml \(image id 000002\)"):
        load_voc_instances(dirname, "trainval")
    counts = SkipCounts()
    dicts = load_voc_instances(dirname, "trainval", on_bad_image="skip", skip_counts=counts)
    assert [d["image_id"] for d in dicts] == ["000001"] and counts.images == {reason: 1}


@pytest.mark.parametrize(
    "difficult, box", [(2, (2, 2, 10, 10)), (0, ("x", 2, 10, 10)), (0, (2, 2, "inf", 10))]
)
def test_object_faults_drop_the_object_under_skip(tmp_path, difficult, box):
    dirname = _tree(
        tmp_path, {"000001": (50, 50, [_obj("cat", box, difficult), _obj("dog", (3, 3, 9, 9))])}
    )
    with pytest.raises(DataError, match=r"000001\.xml \(image id 000001\), object 0"):
        load_voc_instances(dirname, "trainval")
    counts = SkipCounts()
    (d,) = load_voc_instances(dirname, "trainval", on_bad_image="skip", skip_counts=counts)
    assert [a["category_id"] for a in d["annotations"]] == [11] and counts.annotations == {
        "malformed": 1
    }
