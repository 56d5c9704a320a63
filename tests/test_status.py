"""``sedbench status``: a sweep's progress read from its storage, also while the sweep runs elsewhere."""

import os
import signal
import time

import pytest
from helpers import load_study, run_app

from sedbench.commands.cli import main

pytestmark = pytest.mark.xdist_group("sweeps")  # whole sweeps: one worker, one at a time


def test_status_of_a_sweep_in_progress(tmp_path, capsys):
    proc = run_app(tmp_path, "model.maps=1,2,3", "+toy.slow=[3]", "+toy.slow_sleep=60", wait=False)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:  # two cells done, the third one training
            time.sleep(0.2)
            if (tmp_path / "optuna.db").is_file():
                states = sorted(t.state.name for t in load_study(tmp_path).trials) if _exists(tmp_path) else []
                if states.count("COMPLETE") == 2 and "RUNNING" in states:
                    break
        else:
            pytest.fail("the sweep did not reach its third trial")
        storage = f"sqlite:///{tmp_path}/optuna.db"
        assert main(["status", "s", "--storage", storage]) == 0
        out = capsys.readouterr().out
        assert "sweep s: 2 of 3 done (2 complete, 0 pruned), 1 running, 0 failed, 0 waiting" in out
        assert "running  trial 2: maps=3" in out and f":{proc.pid}" in out  # where it runs: host and process
        assert "toy      1.000" in out  # the best so far of the toy family (maps=1)
        assert "trials/hour; time left about" in out
        assert main(["status", "--storage", storage]) == 0  # every sweep in the storage
        assert "s " in capsys.readouterr().out
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)


def _exists(tmp_path) -> bool:
    """The sweep's study is there; False while the sweep is still creating the storage's tables (reading it then
    can collide with that creation: try again)."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        load_study(tmp_path)
        return True
    except (KeyError, SQLAlchemyError):
        return False


def test_status_errors_name_the_fix(tmp_path, capsys):
    assert main(["status", "--storage", f"sqlite:///{tmp_path}/none.db"]) == 2
    assert "no Optuna storage here" in capsys.readouterr().err
    assert run_app(tmp_path, "model.maps=1,2").returncode == 0
    assert main(["status", "other", "--storage", f"sqlite:///{tmp_path}/optuna.db"]) == 2
    assert "no sweep named 'other' in this storage. Fix: one of: s" in capsys.readouterr().err
    assert main(["status", "s", "--watch", "0", "--storage", f"sqlite:///{tmp_path}/optuna.db"]) == 2
