"""Every command against bad stores, as a new user meets them (issue 39): one `error:` line naming the store (its
password hidden) and the fix, exit code 2, no traceback, and nothing created."""

from __future__ import annotations

import pytest

from sedbench.commands.cli import main

READERS = [["report", "demo"], ["status"], ["status", "demo"], ["plan", "demo"], ["claims", "demo"],
           ["compare", "--sweep", "demo", "model=crnn", "--vs", "model=cnn"], ["evaluate", "--sweep", "demo"]]


def one_error(capsys) -> str:
    out = capsys.readouterr()
    lines = [x for x in out.err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in out.out + out.err, out
    return lines[0]


@pytest.mark.parametrize("argv", READERS, ids=" ".join)
def test_a_reading_command_in_a_folder_without_sweeps_says_so_and_creates_nothing(argv, tmp_path, monkeypatch,
                                                                                   capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    line = one_error(capsys)
    assert "results/optuna.db: no Optuna storage here (no sweep has run with it)" in line and "Fix: " in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url, message", [
    ("sqlite:///{tmp}/bad.db", "bad.db: not a readable Optuna storage (file is not a database). Fix: "),
    ("sqlite:///{tmp}/empty.db", "empty.db: not a readable Optuna storage (no such table: version_info). Fix: "),
    ("postgresql://me:secret@127.0.0.1:1/x", "the Optuna storage postgresql://me:***@127.0.0.1:1/x does not answer"),
    ("not-a-url", "--storage 'not-a-url' is not a usable database URL"),
])
@pytest.mark.parametrize("argv", [["report", "demo"], ["status"], ["plan", "demo"]], ids=" ".join)
def test_a_bad_store_is_one_line_with_its_password_hidden(argv, url, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.db").write_text("these bytes are not a database")
    (tmp_path / "empty.db").write_bytes(b"")
    before = sorted((p.name, p.stat().st_size) for p in tmp_path.iterdir())
    assert main([*argv, "--storage", url.format(tmp=tmp_path)]) == 2
    line = one_error(capsys)
    assert message in line and "secret" not in line
    assert sorted((p.name, p.stat().st_size) for p in tmp_path.iterdir()) == before
