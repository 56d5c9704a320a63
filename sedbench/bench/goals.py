"""Each figure's goal, where it is in the result and its label; the table ``make bench`` prints."""

from __future__ import annotations

# every figure of the bench, once: (key, label, where it is in the result, goal, "min" = at least / "max" = at most /
# "equal")
FIGURES = (
    ("train_loop_ratio", "1. training: sedbench loop / plain PyTorch loop (frames/s)",
     ("training", "train_loop_ratio"), 0.95, "min"),
    ("flops_fraction_fp32", "2. training FLOP/s / fp32 matmul FLOP/s", ("training", "flops_fraction_fp32"), 0.6, "min"),
    ("metrics_speedup_0.02s", "3. metrics: sed_eval time / sedbench time, 0.02 s", ("metrics_0.02s", "speedup"),
     50.0, "min"),
    ("metrics_identical", "3. metrics: values identical to sed_eval (0.02 s, 1 s)", ("metrics_0.02s", "metrics_1.0s"),
     True, "equal"),
    ("pipeline_over_training", "4. DataModule frames/s / training frames/s", ("pipeline", "pipeline_over_training"),
     20.0, "min"),
    ("cache_warm_over_cold", "5. feature cache: warm set-up / cold set-up", ("cache", "cache_warm_over_cold"), 0.05,
     "max"),
    ("sweep_wall_over_fit", "6. sweep wall / sum of trial fit times", ("sweep", "sweep_wall_over_fit"), 1.15, "max"),
    ("cli_help_extra_seconds", "7. `sedbench --help` - `python -c pass` (s)", ("cli", "cli_help_extra_seconds"), 1.0,
     "max"),
    ("train_peak_rss_gb", "8. peak RSS training on paper-size synth (GB)", ("memory", "train_peak_rss_gb"), 2.0,
     "max"),
    ("train_scoring_share", "8. paper-size run: share of its wall time scoring", ("memory", "scoring_share"), 0.20,
     "max"),
    ("event_metrics_speedup", "9. event-based: sed_eval time / sedbench time",
     ("event_metrics", "event_metrics_speedup"), 10.0, "min"),
    ("event_metrics_identical", "9. event-based: values identical to sed_eval", ("event_metrics",), True, "equal"),
    ("psds_time_over_sed_scores_eval", "10. PSDS, DESED-sized: sedbench / sed_scores_eval time",
     ("psds", "psds_time_over_sed_scores_eval"), 1.1, "max"),
    ("psds_identical", "10. PSDS: values identical to sed_scores_eval", ("psds",), True, "equal"),
    ("small_model_loop_ratio", "11. demo CRNN (59k): sedbench loop / plain loop", ("small_model", "loop_ratio"), 0.95,
     "min"),
    ("small_model_overhead_share", "12. demo CRNN trial: share of wall outside train steps",
     ("small_model", "overhead_share"), 0.20, "max"),
    ("sweep_packing_speedup", "13. demo grid trials/h: n_jobs=auto / 1 process", ("sweep", "packing_speedup"), 1.3,
     "min"),
    ("pruning_compute_fraction", "14. pruned sweep fit time / full grid's (Hyperband)",
     ("pruning", "compute_fraction"), 0.40, "max"),
    ("pruning_f1_gap_points", "14. full grid best test F1 - pruned sweep's (points)", ("pruning", "f1_gap_points"), 1.0,
     "max"),
    # on a machine with CUDA only (sedbench.bench.gpu): not measured elsewhere
    ("gpu_frames_speedup", "15. GPU: paper CRNN frames/s / the same run's CPU figure", ("gpu", "frames_speedup"),
     2.0, "min"),
    ("gpu_packing_speedup", "16. GPU: demo grid trials/h, N per GPU / 1 per GPU", ("gpu", "packing_speedup"), 1.3,
     "min"),
    ("gpu_identical", "17. GPU: two identical runs, metrics identical", ("gpu_determinism",), True, "equal"),
    ("psds_paper_time_over_sed_scores_eval", "18. PSDS, paper-size split, fragmented: sedbench / sed_scores_eval",
     ("psds_paper", "psds_paper_time_over_sed_scores_eval"), 0.05, "max"),
    ("psds_paper_identical", "18. PSDS paper-size: values identical to sed_scores_eval", ("psds_paper",), True,
     "equal"),
    ("fused_trials_ratio", "19. 5 claims-CRNN seeds, trials/h: fused / solo (CPU)", ("fused", "trials_per_hour_ratio"),
     1.4, "min"),
    ("fused_step_ratio", "19. the same, training steps only: fused / solo (CPU)", ("fused", "step_ratio"), 1.4, "min"),
    # on a machine with CUDA only
    ("gpu_fused_5", "20. GPU: 5 claims-CRNN seeds fused, trials/h / solo", ("gpu_fused", "ratio_5"), 4.0, "min"),
    ("gpu_fused_20", "21. GPU: 20 seeds fused, trials/h / solo", ("gpu_fused", "ratio_20"), 10.0, "min"),
    ("gpu_batch_64_over_8", "22. GPU: paper CRNN frames/s, batch 64 / batch 8", ("gpu_fused", "batch_64_over_8"),
     1.0, "min"),
    ("meter_overhead_share", "23. energy/memory records: share of a demo trial's wall",
     ("meter", "overhead_share"), 0.02, "max"),
)
GOALS = {key: (goal, kind) for key, _, _, goal, kind in FIGURES if kind != "equal"}
LABELS = {key: label for key, label, _, _, _ in FIGURES}


def goals(result: dict) -> dict:
    """Each measured figure with its goal and whether it is met; an ``equal`` figure holds when every part it
    names (``(part, ...)``) was measured with identical values. Parts not measured are left out."""
    # every figure carries the CPU it was measured on: figures from different machines are not comparable
    machine = result.get("machine", {})
    cpu = {"cpu_capability": machine.get("cpu_capability"), "cpu_model": machine.get("cpu")}
    out = {}
    for key, _, where, goal, kind in FIGURES:
        if kind == "equal":
            if all(p in result for p in where):
                value = all(result[p]["identical"] for p in where)
                out[key] = {"value": value, "goal": True, "kind": "equal", "met": value, **cpu}
            continue
        part, name = where
        value = result.get(part, {}).get(name)
        if value is not None:
            out[key] = {"value": value, "goal": goal, "kind": kind,
                        "met": value >= goal if kind == "min" else value <= goal, **cpu}
    return out


def table(result: dict) -> str:
    m = result.get("machine", {})
    lines = [f"measured on: {m.get('cpu', '?')}, {m.get('cpus', '?')} cores, torch CPU capability "
             f"{m.get('cpu_capability', '?')}, torch {m.get('torch', '?')}; GPU: {m.get('gpu', 'not recorded')}", "",
             f"{'figure':<58}{'value':>10}{'goal':>10}  met", "-" * 84]
    for key, label in LABELS.items():
        g = result["goals"].get(key)
        if g is None:
            gpu = "GPU:" in label and not (m.get("cuda") or {}).get("available")
            lines.append(f"{label:<58}{'-':>10}{'':>10}  not measured{': no GPU' if gpu else ''}")
            continue
        sign = ">=" if g["kind"] == "min" else "<=" if g["kind"] == "max" else "=="
        value = g["value"] if isinstance(g["value"], bool) else f"{g['value']:.3g}"
        lines.append(f"{label:<58}{value!s:>10}{sign + ' ' + str(g['goal']):>10}  {'yes' if g['met'] else 'NO'}")
    t = result.get("training")
    if t is None:
        return "\n".join(lines)
    lines += ["", f"training: {t['flops_per_frame'] / 1e6:.0f} MFLOP per frame; "
                  f"fp32 {t['achieved_flops_fp32'] / 1e9:.0f} "
              f"GFLOP/s of {t['matmul_flops_fp32'] / 1e9:.0f} (matmul)"]
    b = t["bf16"]
    if b["status"] == "measured":
        lines.append(f"bf16-mixed ({b['via']}): {b['speedup_over_fp32']:.2f}x fp32 speed "
                     f"({b['achieved_flops'] / 1e9:.0f} "
                     f"GFLOP/s, bf16 matmul {b['matmul_flops'] / 1e9:.0f})")
    else:
        lines.append(f"bf16-mixed: unsupported here, not measured ({b['reason']})")
    if "compile_speedup_over_eager_plain" in t:
        lines.append(f"torch.compile: {t['compile_speedup_over_eager_plain']:.2f}x the eager plain loop "
                     f"(compiling took {t['compile_warmup_seconds']:.0f} s)")
    elif "compile_error" in t:
        lines.append(f"torch.compile: {t['compile_error']}")
    return "\n".join(lines)
