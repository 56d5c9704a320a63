"""``sweep.n_jobs=auto``: the default composes, chooses a sane split on 1, 2 and 16 cores, and runs trials so."""

import pytest
from helpers import CONF, completed_per_cell, run_app
from helpers import load_study as study

from sedbench import packing
from sedbench.packing import choose

pytestmark = pytest.mark.xdist_group("sweeps")  # whole sweeps: one worker, one at a time

DEMO_CRNN, PAPER_CRNN = 59_152, 3_680_000


def test_auto_is_the_default_and_composes_with_every_launcher_preset():
    from hydra import compose, initialize_config_dir

    from sedbench.tracking import register_resolver

    register_resolver()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        default = compose(config_name="config", return_hydra_config=True)
        slurm = compose(config_name="config", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
        fixed = compose(config_name="config", overrides=["sweep.n_jobs=3"], return_hydra_config=True)
    assert default.sweep.n_jobs == "auto"
    assert packing.launcher_kind(default.hydra.launcher._target_) == "local"
    assert default.hydra.launcher.n_jobs == 1  # a placeholder until the sweeper decides
    assert slurm.hydra.launcher.array_parallelism == 1 and fixed.hydra.launcher.n_jobs == 3


@pytest.mark.parametrize(("cores", "model", "n_jobs", "threads"), [
    (1, DEMO_CRNN, 1, 1), (2, DEMO_CRNN, 2, 1), (16, DEMO_CRNN, 16, 1),       # small: one process per core
    (1, PAPER_CRNN, 1, 1), (2, PAPER_CRNN, 1, 2), (16, PAPER_CRNN, 4, 4),     # large: threads, at most 4 each
    (2, None, 2, 1),                                                          # unknown size: taken as small
])
def test_auto_split_on_1_2_and_16_cores(cores, model, n_jobs, threads):
    split = choose("auto", None, model, "local", cores=cores, memory_gb=64.0)
    assert (split.n_jobs, split.threads) == (n_jobs, threads)
    assert split.n_jobs * split.threads <= cores  # never more threads than cores
    assert f"{cores} cores" in split.reason


def test_auto_respects_memory_given_threads_and_the_device():
    assert choose("auto", None, DEMO_CRNN, "local", cores=16, memory_gb=6.5).n_jobs == 6  # 1 GB per small trial
    assert choose("auto", None, PAPER_CRNN, "local", cores=16, memory_gb=4.0).n_jobs == 1
    given = choose("auto", 2, DEMO_CRNN, "local", cores=16, memory_gb=64.0)
    assert (given.n_jobs, given.threads) == (8, 2) and "trainer.num_threads=2 given" in given.reason
    gpu = choose("auto", None, DEMO_CRNN, "local", accelerator="gpu", cores=16)
    assert (gpu.n_jobs, gpu.threads) == (1, None)


def test_explicit_n_jobs_shares_the_cores_and_other_launchers_get_one():
    assert (choose(4, None, DEMO_CRNN, "local", cores=16).threads) == 4
    assert (choose(4, 1, DEMO_CRNN, "local", cores=16).threads) == 1
    assert choose(1, None, PAPER_CRNN, "local", cores=16).threads is None  # torch's default: every core
    assert choose("auto", None, DEMO_CRNN, "remote", cores=16).n_jobs == 1
    assert choose("auto", None, DEMO_CRNN, "sequential", cores=16).n_jobs == 1
    assert choose(8, None, DEMO_CRNN, "remote", cores=16).n_jobs == 8


def test_largest_model_counts_each_cell_without_training(tmp_path):
    from helpers import compose_cfg, tiny_folder_dataset

    data = tiny_folder_dataset(tmp_path / "tiny")
    cfgs = [compose_cfg("data=folder", f"data.root={data}", f"model.maps={m}") for m in (16, 32)]
    cfgs.append(compose_cfg("data=folder", f"data.root={data}", "model=rnn", "model.maps=16"))
    from sedbench.training.params import count_parameters_of

    sizes = [count_parameters_of(c) for c in cfgs]
    assert packing.largest_model(cfgs) == max(sizes) and len(set(sizes)) == 3


def test_a_default_sweep_runs_as_many_processes_as_auto_chooses(tmp_path):
    """No sweep.n_jobs given: the toy grid (tiny CRNNs) runs one one-thread process per core here."""
    expected = choose("auto", None, 1000, "local", memory_gb=packing.available_memory_gb())
    r = run_app(tmp_path, "model.maps=1,2,3,4", "+toy.sleep=1.0", "sweep.n_jobs=auto")
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(completed_per_cell(study(tmp_path)).values()) == [1] * 4
    pids = {line.split()[1] for line in (tmp_path / "trained.log").read_text().splitlines()}
    assert len(pids) == min(expected.n_jobs, 4)
    recorded = study(tmp_path).user_attrs["packing"]  # the decision and its reason, kept on the study
    assert recorded.startswith(f"{expected.n_jobs} process") and "x 1 thread (auto:" in recorded
    assert "< 1,000,000: one thread each" in recorded


@pytest.mark.slow  # end to end and long: make test-full (the fast tier covers the module with shorter cases)
def test_a_free_process_starts_the_next_trial_without_waiting_for_a_slow_one(tmp_path):
    """Two processes, one slow trial: the quick cells run beside it rather than after it (no batch barrier)."""
    r = run_app(tmp_path, "model.maps=1,2,3,4", "+toy.slow=[1]", "+toy.slow_sleep=8", "+toy.sleep=0.3",
                "sweep.n_jobs=2", "trainer.num_threads=1")
    assert r.returncode == 0, r.stdout + r.stderr
    trials = {t.params["model.maps"]: t for t in study(tmp_path).trials}
    assert {t.state.name for t in trials.values()} == {"COMPLETE"}
    slow_end = trials["1"].datetime_complete
    assert all(trials[m].datetime_complete < slow_end for m in ("2", "3", "4")), \
        {m: (t.datetime_start, t.datetime_complete) for m, t in trials.items()}


def test_a_parallel_sweep_stopped_by_failures_records_its_running_trials(tmp_path):
    r = run_app(tmp_path, "model.maps=1,2,3,4,5,6,7,8", "+toy.fail=[1,2,3,4,5,6,7,8]", "+toy.sleep=0.2",
                "sweep.max_failure_rate=0.5", "sweep.n_jobs=2", "trainer.num_threads=1")
    assert r.returncode == 1 and "trials failed, more than sweep.max_failure_rate" in r.stdout
    states = [t.state.name for t in study(tmp_path).trials]
    assert "RUNNING" not in states and states.count("FAIL") in (4, 5)  # the 4th failure stops; one was running


@pytest.mark.slow  # end to end and long: make test-full (the fast tier covers the module with shorter cases)
def test_ctrl_c_in_a_parallel_sweep_fails_the_running_trials_and_a_rerun_completes(tmp_path):
    import os
    import signal
    import time

    from helpers import trained

    args = ["model.maps=1,2,3", "+toy.sleep=3", "sweep.n_jobs=2", "trainer.num_threads=1"]
    proc = run_app(tmp_path, *args, wait=False)
    deadline = time.time() + 120
    while sum(trained(tmp_path).values()) < 2 and time.time() < deadline:  # both processes inside a trial
        time.sleep(0.05)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    st = study(tmp_path)
    state = [(t.number, t.state.name, t.user_attrs.get("error")) for t in st.trials]
    assert not [t for t in st.trials if t.state.name == "RUNNING"], (state, out[-2000:])
    assert sum(t.user_attrs.get("error") == "interrupted (Ctrl-C)" for t in st.trials) == 2, state
    r = run_app(tmp_path, *args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(completed_per_cell(study(tmp_path)).values()) == [1] * 3


def test_worker_processes_end_with_a_killed_sweep(tmp_path):
    """SIGKILL of a parallel sweep's process: its trial processes end too (else they would finish and record
    trials that the next worker, seeing no heartbeat, trains again)."""
    import os
    import signal
    import time

    from helpers import trained

    proc = run_app(tmp_path, "model.maps=1,2,3", "+toy.sleep=20", "sweep.n_jobs=2", "trainer.num_threads=1",
                   wait=False)
    deadline = time.time() + 120
    while sum(trained(tmp_path).values()) < 2 and time.time() < deadline:
        time.sleep(0.05)
    pids = {int(line.split()[1]) for line in (tmp_path / "trained.log").read_text().splitlines()}
    assert len(pids) == 2 and proc.pid not in pids
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return not open(f"/proc/{pid}/stat").read().split(")")[1].split()[0] == "Z"  # a zombie has ended

    deadline = time.time() + 15
    while any(alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in pids)
    assert not (tmp_path / "runs" / "s" / "s" / "0" / "metrics.json").exists()  # the trials did not finish
