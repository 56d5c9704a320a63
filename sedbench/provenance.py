"""What produced a run: sedbench's code (commit, uncommitted changes), the libraries' versions, the dataset's
fingerprint. Every run records it (metrics.json ``provenance``, MLflow tags ``provenance.*``, the Optuna trial's
``provenance`` attribute); a sweep records what it started with, and a trial that ran on other code, other
libraries or another copy of the dataset is marked (:func:`differences`), so that a comparison never mixes them
silently.

- **Code**: the git commit of the checkout sedbench runs from, whether tracked files differ from it (``dirty``,
  with the changed files) and a hash of those differences (``diff``), so that two dirty states are told apart.
  Outside a git checkout (an installed package): ``checkout: false``, and the version only.
- **Libraries**: Python's version and the installed versions of the libraries that make the numbers
  (:data:`LIBRARIES`), read from the installed metadata, not by importing them.
- **Dataset**: :func:`sedbench.data.fingerprint.dataset_fingerprint`, the metadata and the audio files' names,
  sizes and content hashes of the splits a run read.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import subprocess
from pathlib import Path

LIBRARIES = ("numpy", "scipy", "torch", "pytorch-lightning", "hydra-core", "optuna", "mlflow", "librosa", "soundfile",
             "sed_eval", "sed_scores_eval", "scikit-learn", "pandas")
CODE_ROOT_ENV = "SEDBENCH_CODE_ROOT"   # tests point it at a checkout of their own


def code_root() -> Path:
    """The folder whose git state is sedbench's code: ``$SEDBENCH_CODE_ROOT``, else the one holding the package."""
    return Path(os.environ.get(CODE_ROOT_ENV) or Path(__file__).resolve().parents[1])


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def code(root: Path | None = None) -> dict:
    """``{"checkout", "commit", "dirty", "changed", "diff"}`` of the code sedbench runs from (see the module)."""
    root = Path(root or code_root()).resolve()
    top = _git(root, "rev-parse", "--show-toplevel")
    commit = _git(root, "rev-parse", "HEAD") if top and Path(top.strip()).resolve() == root else None
    if commit is None:  # not a checkout, or a package installed inside another project's checkout
        return {"checkout": False, "commit": None, "dirty": None, "changed": [], "diff": None}
    status = _git(root, "status", "--porcelain", "--untracked-files=no") or ""
    changed = sorted(line[3:].strip() for line in status.splitlines() if line.strip())
    diff = _git(root, "diff", "HEAD", "--no-color") or ""
    return {"checkout": True, "commit": commit.strip(), "dirty": bool(changed), "changed": changed,
            "diff": hashlib.sha1(diff.encode()).hexdigest()[:12] if changed else None}


@functools.lru_cache(maxsize=1)
def libraries() -> dict[str, str]:
    """Python's and the key libraries' versions (``"missing"`` for one not installed)."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("sedbench", *LIBRARIES):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def _cache(cache_dir: str | None):
    from sedbench.data.features import FeatureCache

    return FeatureCache(cache_dir)


def run_provenance(dataset=None, cache_dir: str | None = None) -> dict:
    """What a run records: its code, its libraries and (given the :class:`sedbench.data.dataset.Dataset` it read)
    the dataset's name, root and fingerprint (content hashes memoized in the feature cache at ``cache_dir``)."""
    out = {"code": code(), "libraries": libraries()}
    if dataset is not None:
        from sedbench.data.fingerprint import dataset_fingerprint

        out["dataset"] = {"name": dataset.name, "root": str(dataset.root) if dataset.root else None,
                          "fingerprint": dataset_fingerprint(dataset, cache=_cache(cache_dir))}
    return out


def code_id(c: dict | None) -> str:
    """A short name of a code state: ``cdf668d``, ``cdf668d+3f2a1b`` (uncommitted changes, their hash) or
    ``no checkout``."""
    if not c:
        return "unknown"
    if not c.get("checkout"):
        return "no checkout"
    return c["commit"][:7] + (f"+{c['diff'][:6]}" if c.get("dirty") else "")


def differences(start: dict | None, now: dict | None) -> list[str]:
    """Which of ``code``, ``libraries`` and ``dataset`` differ between two provenance records (a sweep's start
    and one trial); a part missing from either is not compared."""
    if not start or not now:
        return []
    out = []
    if start.get("code") and now.get("code") and code_id(start["code"]) != code_id(now["code"]):
        out.append("code")
    if start.get("libraries") and now.get("libraries") and start["libraries"] != now["libraries"]:
        out.append("libraries")
    fingerprints = start.get("datasets") or ([start["dataset"]["fingerprint"]] if start.get("dataset") else [])
    mine = (now.get("dataset") or {}).get("fingerprint")
    if fingerprints and mine and mine not in fingerprints:
        out.append("dataset")
    return out


def library_changes(a: dict, b: dict) -> list[str]:
    """``name a -> b`` for each library whose version differs between two ``libraries`` records."""
    return [f"{k} {a.get(k, 'missing')} -> {b.get(k, 'missing')}" for k in sorted({*a, *b}) if a.get(k) != b.get(k)]


def distinct(records: list[dict | None], among: list[dict | None] | None = None) -> dict[str, list[str]]:
    """The distinct dataset fingerprints, code states and library sets among runs' provenance records (runs that
    recorded none are left out). A library set is written by the versions of the libraries that differ among
    ``among`` (default: ``records``), e.g. ``optuna 5.1.0``; one empty entry when none differ."""
    records = [r for r in records if r]
    libs = [r["libraries"] for r in (among if among is not None else records) if r and r.get("libraries")]
    differing = sorted(k for k in {k for lib in libs for k in lib} if len({lib.get(k) for lib in libs}) > 1)
    return {"dataset": sorted({r["dataset"]["fingerprint"] for r in records if r.get("dataset")}),
            "code": sorted({code_id(r["code"]) for r in records if r.get("code")}),
            "libraries": sorted({", ".join(f"{k} {r['libraries'].get(k, 'missing')}" for k in differing)
                                 for r in records if r.get("libraries")})}


def sweep_provenance(configs) -> dict:
    """What a sweep starts with: its code and libraries, and the fingerprints of the distinct datasets its cells
    read (``configs``: their composed configurations; ``data`` and ``features.cache_dir`` are read)."""
    from sedbench.data.fingerprint import dataset_fingerprint
    from sedbench.data.layouts import dataset_from_config

    fingerprints, seen = [], set()
    for cfg in configs:
        key = repr(sorted((str(k), str(v)) for k, v in cfg.data.items()))
        if key in seen:
            continue
        seen.add(key)
        cache_dir = (cfg.get("features") or {}).get("cache_dir")
        fingerprints.append(dataset_fingerprint(dataset_from_config(cfg.data), cache=_cache(cache_dir)))
    return {"code": code(), "libraries": libraries(), "datasets": sorted(set(fingerprints))}
