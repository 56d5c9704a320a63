"""`data prepare` on local archives (file:// URLs): tests never download."""

import hashlib
import shutil

import pytest
from test_layouts import urban

from sedbench.data import layouts
from sedbench.data.layouts import Archive, Layout
from sedbench.data.prepare import fetch, prepare
from sedbench.errors import DataError


@pytest.fixture
def archive(tmp_path):
    src = urban(tmp_path / "src")
    zip_path = shutil.make_archive(str(tmp_path / "URBAN-SED_v2.0.0"), "zip", src.parent)
    md5 = hashlib.md5(open(zip_path, "rb").read()).hexdigest()
    return f"file://{zip_path}", md5


def test_prepare_downloads_verifies_and_extracts(tmp_path, archive, monkeypatch):
    url, md5 = archive
    monkeypatch.setitem(layouts.LAYOUTS, "urban_sed", Layout(layouts.read_urban_sed, (Archive(url, md5),)))
    root = prepare("urban_sed", tmp_path / "data" / "urban_sed", progress=False)
    ds = layouts.load_dataset("urban_sed", root=root)
    assert len(ds.recordings("train")) == 2
    prepare("urban_sed", root, progress=False)  # a second run reuses the verified download


def test_md5_mismatch_keeps_nothing(tmp_path, archive):
    url, _ = archive
    with pytest.raises(DataError, match=r"md5 mismatch: got [0-9a-f]{32}, expected 0{32}"):
        fetch(Archive(url, "0" * 32), tmp_path / "dl", progress=False)
    assert list((tmp_path / "dl").iterdir()) == []


def test_unreachable_url_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="cannot download .*download it by hand"):
        fetch(Archive(f"file://{tmp_path}/absent.zip", None), tmp_path / "dl", progress=False)


def test_unknown_and_generated_datasets(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'nope'"):
        prepare("nope", tmp_path)
    with pytest.raises(DataError, match="sedbench data generate synth"):
        prepare("synth", tmp_path)
