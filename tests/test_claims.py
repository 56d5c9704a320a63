"""Claiming a trial: exactly one worker trains each popped trial, on SQLite and on PostgreSQL.

Optuna's pop of a WAITING trial is a read then a write; on SQLite nothing locks the row in between, so two
workers could pop (and train) the same trial. ``sedbench.studies.Claims`` adds the atomic step. The stress
test (``make test-full``) runs three workers on one 12-cell grid, ten times, with every core kept busy.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from helpers import completed_per_cell, load_study, run_app, trained

from sedbench.studies import Claims


def test_one_claim_per_trial_and_a_retaken_claim_stays_its_owners(tmp_path):
    url = f"sqlite:///{tmp_path}/optuna.db"
    a, b = Claims(url, "s"), Claims(url, "s")
    assert a.take(3) and not b.take(3)          # the second worker leaves trial 3 to the first
    assert a.take(3)                             # asked again (a reply lost to a dropped connection): still a's
    assert b.take(4) and not a.take(4)
    assert Claims(url, "other").take(3)          # trial numbers count per study
    assert a.owner(3) == a.worker != b.worker and a.owner(99) is None
    a.close(), b.close()


def test_threads_racing_for_the_same_trials_each_get_distinct_ones(tmp_path):
    url = f"sqlite:///{tmp_path}/optuna.db"
    claims = [Claims(url, "s") for _ in range(6)]
    won: dict[int, list[str]] = {n: [] for n in range(40)}
    start = threading.Barrier(len(claims))

    def race(c: Claims) -> None:
        start.wait()
        for n in range(40):
            if c.take(n):
                won[n].append(c.worker)

    threads = [threading.Thread(target=race, args=(c,)) for c in claims]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(len(w) == 1 for w in won.values()), won


CELLS, WORKERS, REPETITIONS = 12, 3, 10


def busy_cores() -> list[subprocess.Popen]:
    """One process spinning on every core: the machine is loaded, as a user's machine may be."""
    import os

    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_stress_workers_on_a_loaded_machine_train_every_cell_exactly_once(tmp_path, request, backend):
    storage_of = (lambda rep: None) if backend == "sqlite" else None
    if backend == "postgresql":
        server = request.getfixturevalue("postgres")
        storage_of = lambda rep: server.create_database(f"stress{rep}")  # noqa: E731
    grid = "model.maps=" + ",".join(str(m) for m in range(1, CELLS + 1))
    outcomes = []
    hogs = busy_cores()
    try:
        for rep in range(REPETITIONS):
            work = tmp_path / f"rep{rep}"
            work.mkdir()
            storage = storage_of(rep)
            t0 = time.perf_counter()
            procs = [run_app(work, grid, "+toy.sleep=0.2", wait=False, storage=storage) for _ in range(WORKERS)]
            outs = [p.communicate(timeout=600)[0] for p in procs]
            assert all(p.returncode == 0 for p in procs), outs
            completed, started = completed_per_cell(load_study(work, storage=storage)), trained(work)
            pids = Counter(line.split()[1] for line in (work / "trained.log").read_text().splitlines())
            outcomes.append(f"rep {rep}: {len(completed)} cells completed, max {max(completed.values())} "
                            f"per cell; {sum(started.values())} trainings, max {max(started.values())} per cell; "
                            f"workers trained {sorted(pids.values())}; {time.perf_counter() - t0:.0f} s")
            assert len(completed) == CELLS and set(completed.values()) == {1}, outcomes[-1]
            assert len(started) == CELLS and set(started.values()) == {1}, outcomes[-1]
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    print(f"\n{backend} stress, {WORKERS} workers, {CELLS} cells, all cores busy:\n  " + "\n  ".join(outcomes))


def test_claims_of_a_deleted_study_do_not_block_a_new_one_of_the_same_name(tmp_path):
    import optuna

    url = f"sqlite:///{tmp_path}/optuna.db"
    old = Claims(url, "s")
    optuna.create_study(study_name="s", storage=url)
    assert old.take(0) and old.take(1)
    assert not Claims(url, "s").take(0)           # the study still exists: its claims hold
    optuna.delete_study(study_name="s", storage=url)
    new = Claims(url, "s")                        # opened before the new study, as the sweeper does
    optuna.create_study(study_name="s", storage=url)
    assert new.take(0) and new.take(1) and not old.take(0)
