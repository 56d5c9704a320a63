"""`make bench`, part by part: no timing is asserted (these machines are noisy); `make bench` gives the figures.

The end-to-end run on a tiny scale is in `make test-full`.
"""

import json
import subprocess
import sys

import pytest

from sedbench.bench import data, run, scores, sweeps, training
from sedbench.bench.goals import GOALS, LABELS, goals, table

AVX2 = {"capability": "AVX2", "model": "Some CPU", "bf16_native": False, "bf16_via": None}
AMX = {"capability": "AVX512", "model": "Other CPU", "bf16_native": True, "bf16_via": "AVX512-BF16 + AMX"}


def a_result(bf16: dict) -> dict:
    return {"machine": {"cpu": "Some CPU", "cpu_capability": "AVX2", "cpus": 2, "torch": "2.13.0"},
            "training": {"train_loop_ratio": 0.97, "flops_fraction_fp32": 0.5, "flops_per_frame": 1e8,
                         "achieved_flops_fp32": 1e11, "matmul_flops_fp32": 2e11, "bf16": bf16},
            "metrics_0.02s": {"speedup": 300.0, "identical": True}, "metrics_1.0s": {"identical": False},
            "pipeline": {"pipeline_over_training": 25.0}, "cache": {"cache_warm_over_cold": 0.01},
            "sweep": {"sweep_wall_over_fit": 1.2}, "cli": {"cli_help_extra_seconds": 0.05}}


def test_goals_and_table_read_a_result_and_every_figure_names_its_cpu():
    result = a_result(training.bench_bf16(None, 1, 1, 1e8, 1e4, 2e11, info=AVX2))
    result["goals"] = goals(result)
    met = {k: g["met"] for k, g in result["goals"].items()}
    assert met == {"train_loop_ratio": True, "flops_fraction_fp32": False, "metrics_speedup_0.02s": True,
                   "pipeline_over_training": True, "cache_warm_over_cold": True, "sweep_wall_over_fit": False,
                   "cli_help_extra_seconds": True, "metrics_identical": False}
    assert all(g["cpu_capability"] == "AVX2" and g["cpu_model"] == "Some CPU" for g in result["goals"].values())
    text = table(result)
    assert "not measured" in text  # no memory run
    assert text.count(" NO") == 3 and "measured on: Some CPU, 2 cores, torch CPU capability AVX2" in text
    assert "bf16-mixed: unsupported here, not measured (AVX2 (Some CPU), no native bf16" in text


def test_gpu_figures_are_read_where_measured_and_not_measured_elsewhere():
    result = a_result(training.bench_bf16(None, 1, 1, 1e8, 1e4, 2e11, info=AVX2))
    result["machine"]["gpu"] = "1 x NVIDIA H200 (140 GB), CUDA 12.8, cuDNN 91002, driver 570.86"
    result["goals"] = goals(result)
    assert not {"gpu_frames_speedup", "gpu_packing_speedup", "gpu_identical"} & set(result["goals"])
    assert "15. GPU: paper CRNN frames/s" in table(result) and "GPU: 1 x NVIDIA H200" in table(result)
    result.update(gpu={"frames_speedup": 31.0, "packing_speedup": 1.1}, gpu_determinism={"identical": True})
    result["goals"] = goals(result)
    met = {k: result["goals"][k]["met"] for k in ("gpu_frames_speedup", "gpu_packing_speedup", "gpu_identical")}
    assert met == {"gpu_frames_speedup": True, "gpu_packing_speedup": False, "gpu_identical": True}


def test_bf16_is_not_measured_without_native_bf16_and_costs_nothing(monkeypatch):
    def fail(*_, **__):
        raise AssertionError("bf16 measured on a CPU that emulates it")

    monkeypatch.setattr(training, "sedbench_loop", fail)
    monkeypatch.setattr(training, "matmul_rate", fail)
    b = training.bench_bf16(None, 6, 2, 1e8, 1e4, 2e11, info=AVX2)
    assert b["status"] == "unsupported" and b["cpu_capability"] == "AVX2" and "no native bf16" in b["reason"]


def test_bf16_is_measured_where_native(monkeypatch):
    calls = []
    monkeypatch.setattr(training, "sedbench_loop", lambda dm, s, w, precision: calls.append(precision)
                        or {"frames_per_second": 2e4})
    monkeypatch.setattr(training, "matmul_rate", lambda dtype: calls.append(dtype) or 8e11)
    b = training.bench_bf16(None, 6, 2, 1e8, 1e4, 2e11, info=AMX)
    assert calls == ["bf16-mixed", "bfloat16"] and b["status"] == "measured" and b["via"] == "AVX512-BF16 + AMX"
    assert b["speedup_over_fp32"] == 2.0 and b["flops_fraction_of_bf16_matmul"] == pytest.approx(1e8 * 2e4 / 8e11)
    result = a_result(b)
    result["goals"] = goals(result)
    assert "bf16-mixed (AVX512-BF16 + AMX): 2.00x fp32 speed" in table(result)


def test_matmul_rate_and_the_paper_crnn_flops():
    assert training.matmul_rate("float32", n=128, repeat=2) > 1e6
    per_frame = training.flops_per_step(40, batch_size=1, seq_len=16) / 16
    assert 5e7 < per_frame < 2e8  # the paper's CRNN: about 100 MFLOP per training frame


def test_the_metrics_figure_on_a_small_case_is_identical_to_sed_eval():
    """The one end-to-end figure of the fast tier: sed_eval against sedbench.metrics, 6 minutes x 16 classes."""
    for resolution in (0.02, 1.0):
        m = scores.bench_score(resolution, hours=0.1)
        assert m["identical"] is True and m["speedup"] > 0 and 0 < m["f1"] < 1


def test_event_and_psds_figures_on_small_cases_are_identical_to_the_references(tmp_path):
    events = scores.bench_events(hours=0.1)
    assert events["identical"] is True and events["event_metrics_speedup"] > 0 and events["system_events"] > 0
    psds = scores.bench_psds(tmp_path, files=30)
    assert psds["identical"] is True and 0 < psds["psds1"] < 1 and psds["psds_time_over_sed_scores_eval"] > 0


def test_parts_are_measured_alone_and_merged_into_an_earlier_result(tmp_path, monkeypatch):
    out = tmp_path / "bench.json"
    earlier = a_result(training.bench_bf16(None, 1, 1, 1e8, 1e4, 2e11, info=AVX2))
    out.write_text(json.dumps(earlier))
    monkeypatch.setattr(run, "bench_events", lambda: {"event_metrics_speedup": 40.0, "identical": True})
    assert run.main(["--parts", "events", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["training"] == earlier["training"] and result["event_metrics"]["event_metrics_speedup"] == 40.0
    assert result["goals"]["event_metrics_speedup"]["met"] and result["goals"]["event_metrics_identical"]["value"]
    assert result["goals"]["train_loop_ratio"]["value"] == 0.97 and "psds" not in result


def test_the_small_model_figure_times_both_loops_on_the_demo_crnn(synth_dir, tmp_path):
    from sedbench.data.dataset import read_folder

    small = training.bench_small_model(read_folder(synth_dir), tmp_path / "cache", steps=3, warmup=1, rounds=1)
    assert small["model"]["parameters"] == 59152 and small["model"]["seq_len"] == 128  # the demo's largest CRNN
    assert small["loop_ratio"] > 0 and len(small["plain_frames_per_second"]) == 1


def test_pipeline_and_cache_figures(synth_dir, tmp_path):
    from sedbench.data.dataset import read_folder

    cache = data.bench_cache(read_folder(synth_dir), tmp_path / "cache")
    assert cache["cold_seconds"] > 0 and cache["warm_seconds"] > 0 and cache["cache_warm_over_cold"] > 0
    pipe = data.bench_pipeline(cache.pop("dm"))
    assert pipe["frames"] > 0 and pipe["frames_per_second"] > 0


def test_the_trial_split_and_the_pruning_replay_read_a_finished_sweep(tiny_sweep, tmp_path):
    """Items 12 and 14 on the shared three-trial sweep (item 13 runs the demo grid twice: make bench only)."""
    import optuna

    trials = optuna.load_study(study_name=tiny_sweep.name, storage=tiny_sweep.storage).trials
    for t in trials:
        split = sweeps.trial_split(t)
        assert split["seconds"]["steps"] > 0 and 0 < split["overhead_share"] < 1
        assert sum(split["seconds"].values()) == pytest.approx(split["wall_seconds"], abs=0.05)
        assert set(split["seconds"]) >= {"startup", "steps", "data", "validation", "test", "detection", "other"}
    png = tmp_path / "pruning.png"
    p = sweeps.bench_pruning(tiny_sweep.name, tiny_sweep.storage, tiny_sweep.tracking, png)
    assert p["pruner"] == "hyperband" and [r["pruner"] for r in p["replays"]] == ["hyperband", "median"]
    assert p["compute_fraction"] == 1.0 and p["f1_gap_points"] == 0.0  # one epoch each: nothing to prune
    spread = p["hyperband_over_study_names"]
    assert spread["names"] == 20 and spread["compute_fraction"]["min"] == spread["compute_fraction"]["max"] == 1.0
    assert png.stat().st_size > 10_000


@pytest.mark.slow
def test_bench_measures_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, "-m", "sedbench.bench", "--out", str(out), "--minutes-train", "3",
                        "--steps", "1", "--warmup", "1", "--rounds", "1", "--no-compile", "--sweep-fit-seconds", "3",
                        "--memory-minutes", "2", "--memory-train-seconds", "3", "--psds-files", "40",
                        "--packing-epochs", "1", "--fused-steps", "2", "--fused-seeds", "2"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    result = json.loads(out.read_text())
    import torch

    gpu_figures = {"gpu_frames_speedup", "gpu_packing_speedup", "gpu_identical",  # items 15-17, 20-22: CUDA only
                   "gpu_fused_5", "gpu_fused_20", "gpu_batch_64_over_8"}
    expected = set(GOALS) | {"metrics_identical", "event_metrics_identical", "psds_identical", "gpu_identical",
                             "psds_paper_identical"}
    assert set(result["goals"]) == (expected if torch.cuda.is_available() else expected - gpu_figures)
    assert result["machine"]["gpu"] and "available" in result["machine"]["cuda"]
    assert result["goals"]["metrics_identical"]["value"] is True  # sedbench.metrics equals sed_eval
    for key, g in result["goals"].items():
        assert isinstance(g["met"], bool) and g["value"] is not None and g["cpu_capability"], key
    t = result["training"]
    assert t["model"]["parameters"] > 3_000_000 and t["flops_per_frame"] > 5e7  # the paper's CRNN
    assert 0 < t["flops_fraction_fp32"]
    assert t["bf16"]["status"] == ("measured" if result["machine"]["bf16_native"] else "unsupported")
    assert result["memory"]["audio_minutes"] == pytest.approx(2, abs=0.2)
    assert 0 < result["memory"]["scoring_share"] < 1 and result["psds_paper"]["identical"]
    meter = result["meter"]  # item 23: what the energy and memory records cost a run, against item 12's trial
    assert meter["seconds_per_run"] > 0 and meter["method"].startswith("cpu: ") and meter["trial_wall_seconds"] > 0
    for label in LABELS.values():
        assert label in r.stdout  # the printed table
    if not torch.cuda.is_available():
        assert "not measured: no GPU" in r.stdout


def test_the_fused_figure_trains_the_same_seeds_together_and_one_after_another(synth_dir, tmp_path):
    """Item 19 at a toy budget: the same 5 seeds, the same steps, fused and solo, both recorded."""
    from sedbench.bench.fused import bench_fused_trials

    fused = bench_fused_trials(synth_dir, tmp_path, seeds=2, steps=3)
    assert fused["same_steps"] and fused["trials_per_hour_ratio"] > 0 and fused["step_ratio"] > 0
    assert fused["model"]["parameters"] == 15248  # the claims study's CRNN, 16 classes


def test_the_gpu_checks_fused_item_runs_on_the_cpu(synth_dir, tmp_path):
    """make gpu-check's item 7 on the CPU at toy sizes: members equal their solo networks, ratios measured."""
    from sedbench.bench.fused import check_fused

    result = check_fused("cpu", synth_dir, tmp_path, quick=True)
    assert result["pass"] and result["exactness"]["max_relative_difference"] < 1e-5
    assert result["ratio_2"] > 0 and result["ratio_3"] > 0 and result["batch_64_over_8"] > 0


def test_the_meter_figure_times_what_a_run_reads_of_its_energy_and_memory():
    from sedbench.bench.data import bench_meter

    got = bench_meter(30.0, repeats=5)
    assert got["seconds_per_run"] > 0 and got["overhead_share"] == got["seconds_per_run"] / 30.0
    assert got["method"].startswith("cpu: ") and "trial_wall_seconds" not in bench_meter(None, repeats=1)
