"""`make bench` end to end on a tiny scale: every figure of issue 8 is measured and written.

No timing is asserted (these machines are noisy); the real figures come from `make bench`.
"""

import json
import subprocess
import sys

import pytest

from sedbench.bench import GOALS, LABELS, goals, table


@pytest.mark.slow
def test_bench_measures_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, "-m", "sedbench.bench", "--out", str(out), "--minutes-train", "3",
                        "--steps", "1", "--warmup", "1", "--rounds", "1", "--no-compile", "--sweep-fit-seconds", "3",
                        "--memory-minutes", "2", "--memory-train-seconds", "3"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result["goals"]) == set(GOALS) | {"metrics_identical"}
    assert result["goals"]["metrics_identical"]["value"] is True  # sedbench.metrics equals sed_eval
    for key, g in result["goals"].items():
        assert isinstance(g["met"], bool) and g["value"] is not None, key
    t = result["training"]
    assert t["model"]["parameters"] > 3_000_000 and t["flops_per_frame"] > 5e7  # the paper's CRNN
    assert 0 < t["flops_fraction_fp32"] and t["bf16_frames_per_second"] > 0
    assert result["memory"]["audio_minutes"] == pytest.approx(2, abs=0.2)
    for label in LABELS.values():
        assert label in r.stdout  # the printed table


def test_goals_and_table_read_a_result():
    result = {"training": {"train_loop_ratio": 0.97, "flops_fraction_fp32": 0.5, "flops_per_frame": 1e8,
                           "achieved_flops_fp32": 1e11, "matmul_flops_fp32": 2e11, "bf16_speedup_over_fp32": 1.5,
                           "achieved_flops_bf16": 1.5e11, "matmul_flops_bf16": 4e11},
              "metrics_0.02s": {"speedup": 300.0, "identical": True}, "metrics_1.0s": {"identical": False},
              "pipeline": {"pipeline_over_training": 25.0}, "cache": {"cache_warm_over_cold": 0.01},
              "sweep": {"sweep_wall_over_fit": 1.2}, "cli": {"cli_help_extra_seconds": 0.05}}
    result["goals"] = goals(result)
    met = {k: g["met"] for k, g in result["goals"].items()}
    assert met == {"train_loop_ratio": True, "flops_fraction_fp32": False, "metrics_speedup_0.02s": True,
                   "pipeline_over_training": True, "cache_warm_over_cold": True, "sweep_wall_over_fit": False,
                   "cli_help_extra_seconds": True, "metrics_identical": False}
    text = table(result)
    assert "not measured" in text  # no memory run
    assert text.count(" NO") == 3
