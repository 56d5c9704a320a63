"""`data prepare` on local archives (file:// URLs): tests never download."""

import hashlib
import shutil

import pytest
from helpers import urban

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


def _tar(path, members):
    """A tar archive of ``(name, kind, data_or_link)`` members, crafted by hand."""
    import io
    import tarfile

    with tarfile.open(path, "w") as t:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(payload)
                t.addfile(info, io.BytesIO(payload))
            else:
                info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                info.linkname = payload
                t.addfile(info)
    return path


@pytest.mark.parametrize("members", [
    [("ok.txt", "file", b"fine"), ("../evil.txt", "file", b"escaped")],
    [("ok.txt", "file", b"fine"), ("/tmp/evil-absolute.txt", "file", b"escaped")],
    [("data/link", "symlink", "../../outside"), ("ok.txt", "file", b"fine")],
    [("data/hard", "hardlink", "../outside.txt")],
])
def test_archive_members_outside_the_target_are_refused(tmp_path, members):
    from sedbench.data.prepare import safe_extract

    archive = _tar(tmp_path / "crafted.tar", members)
    root = tmp_path / "root" / "dataset"
    with pytest.raises(DataError, match="would be written outside .*nothing was extracted.*official source"):
        safe_extract(archive, root)
    assert list(root.iterdir()) == []  # checked before anything is written
    assert not (tmp_path / "root" / "evil.txt").exists() and not (tmp_path / "root" / "outside").exists()


def test_zip_member_outside_the_target_is_refused(tmp_path):
    import zipfile

    from sedbench.data.prepare import safe_extract

    with zipfile.ZipFile(tmp_path / "crafted.zip", "w") as z:
        z.writestr("ok.txt", "fine")
        z.writestr("../../evil.txt", "escaped")
    with pytest.raises(DataError, match="'../../evil.txt' would be written outside"):
        safe_extract(tmp_path / "crafted.zip", tmp_path / "root")
    assert list((tmp_path / "root").iterdir()) == []
    safe_extract(_tar(tmp_path / "good.tar", [("a/b.txt", "file", b"x")]), tmp_path / "good")
    assert (tmp_path / "good" / "a" / "b.txt").read_bytes() == b"x"
    (tmp_path / "junk.zip").write_bytes(b"\x00not an archive" * 10)
    with pytest.raises(DataError, match="junk.zip: not a zip or tar archive"):
        safe_extract(tmp_path / "junk.zip", tmp_path / "junk")
