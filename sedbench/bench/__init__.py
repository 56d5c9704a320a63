"""``make bench`` (``python -m sedbench.bench``): every figure a ratio against a baseline measured in the same run.

These machines are noisy, so nothing here is a timed assertion: each figure is the ratio of two
measurements taken side by side (alternating where they are cheap enough to repeat), and
``results/bench.json`` keeps both. The table printed at the end shows each ratio with its goal.

1. training throughput: sedbench's Lightning loop against a plain PyTorch loop (same model,
   batch, data and threads) on the paper's CRNN (3 x 256 maps, pooling (5,4,2), 1 GRU of 256,
   16 classes, sequences of 256 frames);
2. achieved FLOP/s of that training (FLOPs counted by torch per step) against the fp32
   matrix-multiply rate torch reaches here; the same with bf16 autocast where the CPU computes bf16
   natively (elsewhere ``unsupported``, see ``sedbench.hardware``), and torch.compile;
3. metrics: ``sedbench.metrics`` against sed_eval, 2 h x 16 classes, at 0.02 s and 1 s;
4. data pipeline: frames per second the DataModule delivers against frames per second trained;
5. feature cache: warm data set-up time against cold;
6. sweep orchestration: a small sweep's wall time against the sum of its trials' fit times;
7. CLI start-up: ``sedbench --help`` against ``python -c pass``;
8. memory: peak RSS of a training run on a paper-size synth set (566 minutes), its features read
   through memory maps of files beside the feature cache (``sedbench.data.frames``), scoring included; and
   the share of that run's wall time its scoring takes (event-based scores, PSDS, ROC AUC, median filters);
9. event-based metrics: sedbench's fast path against sed_eval's EventBasedMetrics (2 h x 16
   classes, fragmented detections), values identical;
10. PSDS1 + PSDS2 + 1-s ROC AUC on a DESED-sized case (2,500 ten-second clips, 10 classes, 156
   frames per clip as the DESED baseline outputs): ``sedbench score --scores`` (reading the tables,
   the reference and the durations, then sed_scores_eval) against sed_scores_eval's own readers and
   functions on the same files, values identical;
11. small model: item 1's two loops on the demo's largest CRNN (maps 32, 59k parameters, 128-frame
   sequences, batch 8), where per-step overheads weigh most;
12. a demo trial's overheads: the demo's largest CRNN (maps 32) run twice in one sweep process with the
   demo's settings; the share of the second trial's wall time (Optuna's start to completion) spent outside
   training steps, with its split (``time/*`` of metrics.json: start-up, data, validation, test, detection
   scores, recording; the first trial's split shows what a worker pays once), and the split of item 13's
   auto grid;
13. packing: trials per hour of the demo grid with ``sweep.n_jobs=auto`` against one process using
   every core (``sweep.n_jobs=1``, ``trainer.num_threads`` = cores);
14. pruning: Hyperband replayed on the learning curves of a finished full grid (item 13's auto run, or
   ``--pruning-from STUDY``, e.g. ``demo``): its share of the grid's fit time and its loss of best test
   F1_frm (``sedbench.pruning``); the median pruner beside it, and the best-so-far curves as a PNG;
15-17. where CUDA is present (the checks of ``make gpu-check``, :mod:`.gpu`): the paper CRNN's training frames/s
   on the GPU against the same run's CPU figure; a demo grid's trials per hour packed N per GPU
   (``sweep.n_jobs=auto``) against one at a time; two identical ``trainer=gpu`` runs compared metric by
   metric. Without CUDA they are not measured, and bench.json says so (``machine.gpu``);
18. PSDS on item 8's paper-size test split (113 minutes, 16 classes, 5.7-minute files) for a maximally
   fragmented output: sedbench's intersection statistics on the whole split, and against sed_scores_eval's on
   the first minute of two of its files (whole files take sed_scores_eval tens of minutes each), values
   identical;
19. seeds trained together (:mod:`.fused`, sedbench.training.fused): 5 seeds of the claims study's CRNN (15k
   parameters, 128-frame sequences, batch 8, one thread) as whole trials at the same step budget, one fused group
   against the 5 solo runs: trials per hour of each, and the ratio of their training steps alone;
20-22. where CUDA is present: 5 and 20 seeds of that CRNN fused against one at a time (trials per hour at a fixed
   step budget, from their step times), and the paper CRNN's training frames/s at batch 64 against 8.
23. what recording a run's energy and peak memory costs it (sedbench.energy reads its counters when training and
   testing start and stop, nothing in between): those readings' seconds per run, timed over 200 runs' worth,
   against the wall time of item 12's trial (goal: at most 2 %).

``--parts events,psds,memory,psds_paper,small_model,packing,pruning,gpu,fused`` measures only those parts and merges
them into an existing ``--out`` (``pruning`` needs ``--pruning-from``; ``packing`` measures it on its own auto
run otherwise; ``memory`` and ``psds_paper`` need ``--memory-data``).

Every figure records the CPU it was measured on (torch's CPU capability and the model name); bench.json's
``machine`` also names the GPU, CUDA, cuDNN and driver, or that there is none.

The package holds one module per group of items: :mod:`.training` (1, 2, 11), :mod:`.scores` (3, 9, 10, 18),
:mod:`.data` (4, 5, 8, 23), :mod:`.sweeps` (6, 12-14), :mod:`.gpu` (15-17, ``make gpu-check``), :mod:`.fused`
(19-22); :mod:`.goals`
(each figure's goal, label and place in the result, and the table), :mod:`.run` (the command line: everything,
or ``--parts``). Timing helpers and the models measured are in :mod:`.common`.
"""
