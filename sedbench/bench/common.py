"""What every bench item shares: the models measured, timing, the progress log."""

from __future__ import annotations

import subprocess
import sys
import time

PAPER_CRNN = {"maps": 256, "pool": [5, 4, 2], "rnn_layers": 1, "kernel": [5, 5]}
SEQ_LEN, BATCH, N_CLASSES = 256, 8, 16
DEMO_CRNN = {"maps": 32, "pool": [5, 4, 2], "rnn_layers": 1, "kernel": [5, 5]}  # the demo's largest CRNN (59k)
DEMO_SEQ_LEN = 128


def best_wall(cmd: list[str], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        best = min(best, time.perf_counter() - t0)
    return best


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
