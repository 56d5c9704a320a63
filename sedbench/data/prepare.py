"""``sedbench data prepare NAME --root DIR``: download, verify (md5) and extract public archives."""

from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path

from sedbench.data.layouts import LAYOUTS, Archive
from sedbench.errors import DataError, log


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(archive: Archive, dest: Path, progress: bool = True) -> Path:
    """Download ``archive`` into ``dest`` (resumable by skipping a verified file) and check its md5."""
    from tqdm.auto import tqdm

    dest.mkdir(parents=True, exist_ok=True)
    target = dest / archive.url.rsplit("/", 1)[-1]
    if target.is_file() and archive.md5 and md5sum(target) == archive.md5:
        return target
    part = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(archive.url, timeout=60) as resp, open(part, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=target.name, disable=not progress) as bar:
                for chunk in iter(lambda: resp.read(1 << 20), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise DataError(None, f"cannot download {archive.url} ({exc})",
                        f"check the network, or download it by hand into {dest} and run prepare again") from None
    digest = md5sum(part)
    if archive.md5 and digest != archive.md5:
        part.unlink(missing_ok=True)
        raise DataError(target, f"md5 mismatch: got {digest}, expected {archive.md5}",
                        "the download is corrupt or incomplete; run prepare again")
    if not archive.md5:
        log.warning("%s: no published checksum; md5 of the download is %s", target.name, digest)
    part.replace(target)
    return target


def prepare(name: str, root: str | Path, progress: bool = True) -> Path:
    """Fetch and extract every archive of dataset ``name`` into ``root``; returns ``root``."""
    if name not in LAYOUTS:
        raise DataError(None, f"unknown dataset {name!r}", f"use one of {', '.join(sorted(LAYOUTS))}")
    layout = LAYOUTS[name]
    if not layout.archives:
        raise DataError(None, f"{name} has no public archive to download", layout.note or "use `data generate`")
    root = Path(root)
    downloads = root / "downloads"
    for archive in layout.archives:
        path = fetch(archive, downloads, progress)
        stamp = downloads / f".{path.name}.extracted"
        if not stamp.is_file():
            safe_extract(path, root)
            stamp.touch()
    return root


def safe_extract(archive: Path, root: Path) -> None:
    """Extract a zip or tar archive into ``root``, refusing the whole archive when any member would land
    outside ``root`` (``..`` or absolute paths, links pointing out, device files): nothing is written then."""
    import os
    import tarfile
    import zipfile

    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)

    def refuse(member: str, why: str) -> DataError:
        return DataError(archive, f"member {member!r} {why}; nothing was extracted",
                         "do not use this archive: download it again from the dataset's official source")

    def check(name: str, base: Path = root) -> None:
        target = (base / name).resolve()
        if os.path.isabs(name) or (target != root and root not in target.parents):
            raise refuse(name, f"would be written outside {root}")

    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                for name in z.namelist():
                    check(name)
                z.extractall(root)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                for m in t.getmembers():
                    check(m.name)
                    if m.issym():
                        check(m.linkname, (root / m.name).parent)
                    elif m.islnk():
                        check(m.linkname)
                    elif not (m.isfile() or m.isdir()):
                        raise refuse(m.name, "is a device or special file")
                if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: the stdlib's own guard as well
                    t.extractall(root, filter="data")
                else:
                    t.extractall(root)
        else:
            raise DataError(archive, "not a zip or tar archive", "delete it and run prepare again")
    except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(archive, f"cannot extract ({exc})", "delete it and run prepare again") from None
