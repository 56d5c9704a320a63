"""Installs that reproduce: `make setup` installs every package at the lock's version (requirements-lock.txt, made by
`make lock`), so a fresh clone gets what the tests passed with, whatever is newest on the day."""

import re
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements-lock.txt"


def locked() -> dict[str, str]:
    out = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and name and version, f"requirements-lock.txt: {line!r} is not name==version"
            out[name] = version
    return out


def test_every_installed_package_is_the_locks_version():
    wrong = {name: (version, metadata.version(name)) for name, version in locked().items()
             if metadata.version(name) != version}
    assert not wrong, f"installed versions differ from the lock (run `make setup`): {wrong}"


def test_the_lock_covers_every_requirement_and_leaves_torch_to_the_torch_variable():
    names = {re.sub(r"[-_.]+", "-", n).lower() for n in locked()}
    requires = metadata.requires("sedbench") or []
    wanted = {re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0]).lower() for r in requires
              if "extra ==" not in r or 'extra == "dev"' in r}
    assert wanted - {"torch"} <= names, wanted - {"torch"} - names
    assert "torch" not in names and not any(n.startswith("nvidia-") for n in names)
    makefile = (REPO / "Makefile").read_text()
    assert "-c $(LOCK)" in makefile and "LOCK   := requirements-lock.txt" in makefile
