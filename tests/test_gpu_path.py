"""The GPU path, checked on the CPU (issue 29): packing trials onto faked CUDA devices, claiming a GPU per trial
process, reading nvidia-smi, the device settings a run derives from ``trainer.accelerator``, what a run
records about its hardware, and ``make gpu-check`` on a machine without CUDA."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sedbench import hardware, packing
from sedbench.hardware import GPU
from sedbench.packing import choose

ROOT = Path(__file__).resolve().parents[1]
DEMO_CRNN, PAPER_CRNN = 59_152, 3_680_000


def gpus(n: int, free_gb: float = 139.0) -> list[GPU]:
    return [GPU(str(i), "NVIDIA H200", 139.8, free_gb, f"GPU-{i}aaaa", "570.86") for i in range(n)]


@pytest.mark.parametrize(("n_gpus", "model", "mps", "cores", "n_jobs", "per_gpu", "threads"), [
    (1, DEMO_CRNN, False, 16, 4, 4, 4),      # small model: 4 per GPU without MPS, the cores shared
    (1, DEMO_CRNN, True, 16, 8, 8, 2),       # with MPS: 8
    (4, DEMO_CRNN, False, 16, 16, 4, 1),     # one group per GPU
    (4, DEMO_CRNN, True, 16, 16, 4, 1),      # MPS would allow 8 per GPU; 16 cores hold 4 each
    (4, DEMO_CRNN, True, 64, 32, 8, 2),
    (1, PAPER_CRNN, False, 16, 1, 1, 16),    # a large model alone on its GPU, with every core
    (4, PAPER_CRNN, True, 16, 8, 2, 2),
    (2, None, False, 2, 2, 1, 1),            # unknown size (small); 2 cores cap it at one per GPU
])
def test_auto_packs_several_small_trials_per_gpu(n_gpus, model, mps, cores, n_jobs, per_gpu, threads):
    split = choose("auto", None, model, "local", accelerator="gpu", cores=cores, memory_gb=512.0, gpus=gpus(n_gpus),
                   mps=mps)
    assert (split.n_jobs, split.per_gpu, split.threads) == (n_jobs, per_gpu, threads)
    assert split.gpus == tuple(str(i) for i in range(n_gpus))
    assert split.n_jobs * split.threads <= cores
    text = split.describe()
    assert f"{per_gpu} per GPU" in text and ("with CUDA MPS" if mps else "without CUDA MPS") in text


def test_gpu_packing_respects_free_gpu_memory_host_memory_and_given_settings():
    tight = choose("auto", None, DEMO_CRNN, "local", accelerator="gpu", cores=16, memory_gb=64.0,
                   gpus=gpus(2, free_gb=4.0), mps=True)
    assert (tight.n_jobs, tight.per_gpu) == (4, 2) and "4 GB free GPU memory holds 2" in tight.reason
    host = choose("auto", None, DEMO_CRNN, "local", accelerator="gpu", cores=16, memory_gb=3.0, gpus=gpus(1))
    assert host.n_jobs == 3 and "3 GB of memory" in host.reason
    given = choose("auto", 3, DEMO_CRNN, "local", accelerator="gpu", cores=16, memory_gb=64.0, gpus=gpus(1))
    assert (given.n_jobs, given.threads) == (4, 3) and "trainer.num_threads=3 given" in given.reason
    explicit = choose(6, None, DEMO_CRNN, "local", accelerator="gpu", cores=12, gpus=gpus(4))
    assert (explicit.n_jobs, explicit.threads, explicit.per_gpu, explicit.gpus) == (6, 2, 2, ("0", "1", "2", "3"))
    one = choose(1, None, DEMO_CRNN, "local", accelerator="gpu", cores=12, gpus=gpus(4))
    assert (one.n_jobs, one.gpus) == (1, ("0",))
    # no device listed, or a launcher placing trials elsewhere: one at a time, as before
    assert choose("auto", None, DEMO_CRNN, "local", accelerator="gpu", cores=16, gpus=[]).n_jobs == 1
    assert choose("auto", None, DEMO_CRNN, "remote", accelerator="gpu", cores=16, gpus=gpus(4)).n_jobs == 1
    # the CPU path is unchanged by a device list
    assert choose("auto", None, DEMO_CRNN, "local", accelerator="cpu", cores=2, memory_gb=8.0,
                  gpus=gpus(4)).gpus == ()


def test_each_trial_process_claims_one_gpu_slot_for_its_life(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert packing.gpu_slots(["0", "1"], 2) == [("0", 0), ("1", 0), ("0", 1), ("1", 1)]
    claimed, held = [], []
    try:
        for _ in range(4):  # four processes; here one process that sets its claim aside each time, lock held
            claimed.append(packing.claim_gpu(["0", "1"], 2, tmp_path))
            assert os.environ["CUDA_VISIBLE_DEVICES"] == claimed[-1]
            assert packing.claim_gpu(["0", "1"], 2, tmp_path) == claimed[-1]  # the same on a later trial
            held.append(packing._GPU_SLOT.pop())  # the next "process"
        assert claimed == ["0", "1", "0", "1"]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu0-0.lock", "gpu0-1.lock", "gpu1-0.lock",
                                                              "gpu1-1.lock"]
    finally:
        packing._GPU_SLOT.extend(held)
        packing.release_gpu()
    assert packing.claim_gpu(["0"], 4, tmp_path) is None  # one GPU: nothing to choose, nothing set
    packing.release_gpu()


def test_a_dead_workers_slot_goes_to_its_replacement(tmp_path, monkeypatch):
    """A slot is a lock held by a live process: when the process ends, the next process gets it."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    code = ("import sys, time; from sedbench import packing; print(packing.claim_gpu(['0','1'], 1, sys.argv[1]),"
            " flush=True); time.sleep(float(sys.argv[2]))")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path), "30"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "0"
        second = subprocess.run([sys.executable, "-c", code, str(tmp_path), "0"], capture_output=True, text=True)
        assert second.stdout.strip() == "1"  # GPU 0's slot is held
    finally:
        holder.kill()
        holder.wait()
    third = subprocess.run([sys.executable, "-c", code, str(tmp_path), "0"], capture_output=True, text=True)
    assert third.stdout.strip() == "0"  # released with its process


def test_nvidia_smi_rows_and_cuda_visible_devices():
    rows = [["0", "GPU-aaaa", "NVIDIA H200", "143771", "143000", "570.86"],
            ["1", "GPU-bbbb", "NVIDIA H200", "143771", "[N/A]", "570.86"]]
    assert [d.index for d in hardware.cuda_devices(rows, env=None)] == ["0", "1"]
    first = hardware.cuda_devices(rows, env=None)[0]
    assert (first.name, first.total_gb, first.free_gb, first.driver) == ("NVIDIA H200", 140.4, 139.65, "570.86")
    assert hardware.cuda_devices(rows, env=None)[1].free_gb is None
    assert [d.index for d in hardware.cuda_devices(rows, env="1")] == ["1"]
    assert [d.index for d in hardware.cuda_devices(rows, env="GPU-bb,0")] == ["1", "0"]
    assert hardware.cuda_devices(rows, env="") == [] and hardware.cuda_devices(rows, env="7,0") == []

    def smi(args, **_):
        assert args[0] == "nvidia-smi" and args[1] == f"--query-gpu={hardware.SMI_QUERY}"
        return subprocess.CompletedProcess(args, 0, "0, GPU-aaaa, NVIDIA H200, 143771, 143000, 570.86\n", "")

    assert hardware._smi_rows(smi) == [rows[0]]
    assert hardware._smi_rows(lambda args, **_: subprocess.CompletedProcess(args, 9, "", "no driver")) is None


def test_gpu_info_describes_this_machine_and_a_faked_cuda_one():
    info = hardware.gpu_info()
    if not info["available"]:
        assert hardware.describe_gpu(info).startswith("no CUDA device")
        assert info["devices"] == [] and info["driver"] is None
    fake = {"available": True, "torch": "2.13.0", "cuda": "12.8", "cudnn": 91002, "driver": "570.86", "mps": False,
            "devices": [{"index": "0", "name": "NVIDIA H200", "memory_gb": 139.8}] * 2}
    assert hardware.describe_gpu(fake) == "2 x NVIDIA H200 (140 GB), CUDA 12.8, cuDNN 91002, driver 570.86"


def test_a_run_records_its_hardware():
    rec = hardware.run_hardware("cpu")
    assert rec["device"] == "cpu" and rec["cpu_capability"] == hardware.cpu_info()["capability"]
    assert rec["torch"] and "gpu" not in rec


def test_mps_daemon_is_seen_by_its_control_pipe(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_MPS_PIPE_DIRECTORY", str(tmp_path))
    assert not hardware.mps_running()
    (tmp_path / "control").touch()
    assert hardware.mps_running()


def test_make_setup_reinstalls_torch_when_TORCH_changes(tmp_path):
    """A fake virtual environment whose pip records its calls: the same TORCH installs nothing again, another
    replaces torch (a CUDA wheel of the same version would otherwise be taken as installed)."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    calls = tmp_path / "pip.log"
    for tool in ("pip", "python"):
        script = venv / "bin" / tool
        script.write_text(f"#!/bin/sh\necho \"{tool} $*\" >> {calls}\n")
        script.chmod(0o755)

    def setup(torch: str) -> list[str]:
        calls.write_text("")
        done = subprocess.run(["make", "-s", "-C", str(ROOT), "setup", f"VENV={venv}", f"TORCH={torch}"],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return calls.read_text().splitlines()

    first = setup("torch==2.13.0")
    assert first == ["pip install --quiet torch==2.13.0", "pip install --quiet -c requirements-lock.txt -e .[dev]"]
    assert setup("torch==2.13.0") == []  # nothing changed: nothing installed
    cuda = "torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
    assert setup(cuda) == ["pip uninstall --quiet -y torch", f"pip install --quiet {cuda}",
                           "pip install --quiet -c requirements-lock.txt -e .[dev]"]
    assert (venv / ".torch").read_text().strip() == cuda
    assert setup(cuda) == []


def test_device_settings_follow_the_accelerator(monkeypatch):
    from sedbench.training import device

    assert device.loader_options("auto", "cpu") == {"num_workers": 0, "pin_memory": False,
                                                    "persistent_workers": False}
    assert device.loader_options(2, "cpu")["num_workers"] == 2
    monkeypatch.setattr(device, "on_cuda", lambda accelerator: accelerator != "cpu")  # a faked CUDA machine
    assert device.loader_options("auto", "gpu", threads=16) == {"num_workers": 4, "pin_memory": True,
                                                                "persistent_workers": True}
    assert device.loader_options("auto", "gpu", threads=2)["num_workers"] == 1  # packed: its share of cores
    assert device.loader_options("auto", "gpu", threads=1)["num_workers"] == 0
    assert device.evaluation_device("gpu") == "cuda" and device.evaluation_device("cpu") == "cpu"
    assert device.evaluation_device("gpu", "cpu") == "cpu"
    assert device.bar_refresh("cpu") == 1 and device.bar_refresh("gpu") == device.BAR_REFRESH_ON_DEVICE


def test_without_cuda_evaluate_runs_on_the_cpu_and_refuses_cuda():
    import torch

    from sedbench.errors import SedbenchError
    from sedbench.training import device

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert device.evaluation_device("gpu") == "cpu" and device.evaluation_device("auto") == "cpu"
    with pytest.raises(SedbenchError, match="--device cpu"):
        device.evaluation_device("gpu", "cuda")


def test_numerics_policy_is_set_as_configured(monkeypatch):
    import torch

    from sedbench.training.device import configure_numerics

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        fast = configure_numerics({"deterministic": False, "tf32": True})
        assert fast == {"deterministic": False, "fp32_precision": "tf32", "cublas_workspace": None}
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
        exact = configure_numerics({"deterministic": True, "tf32": False})
        assert exact == {"deterministic": True, "fp32_precision": "ieee", "cublas_workspace": ":4096:8"}
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        assert torch.get_float32_matmul_precision() == "highest"
    finally:
        configure_numerics({"deterministic": True, "tf32": False})


def test_gpu_check_without_cuda_says_so_in_one_line_and_exits_0():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: make gpu-check checks it (slow tier: test_gpu_check_runs_on_the_cpu)")
    done = subprocess.run([sys.executable, "-m", "sedbench.bench.gpu"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.splitlines() == [f"make gpu-check: {hardware.describe_gpu()}, nothing checked"]
    assert "gpu-check:" in (ROOT / "Makefile").read_text() and "make gpu-check" in (ROOT / "README.md").read_text()


def test_the_precision_check_of_gpu_check_passes_on_the_cpu():
    from sedbench.bench.gpu import check_precision

    result = check_precision("cpu")
    assert result["pass"], result["figure"]
    assert len(result["cases"]) == 4 and all(c["rnn_dtypes"] == ["float32"] for c in result["cases"].values())


@pytest.mark.slow
def test_gpu_check_runs_on_the_cpu(tmp_path):
    """The whole script on the CPU at toy sizes (--device cpu --quick): every item runs and passes, so that on a
    GPU a failure is the GPU's, not the script's."""
    import json

    out = tmp_path / "gpu-check.json"
    done = subprocess.run([sys.executable, "-m", "sedbench.bench.gpu", "--device", "cpu", "--quick", "--out",
                           str(out)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    items = json.loads(out.read_text())["items"]
    assert list(items) == ["precision", "determinism", "record", "evaluate", "frames", "packing", "fused"]
    assert all(r["pass"] for r in items.values())
    assert items["determinism"]["identical"] and items["determinism"]["compared"] > 20
    assert items["fused"]["ratio_2"] > 0 and items["fused"]["batch_64_over_8"] > 0
    assert "7/7 passed" in done.stdout
