"""What a network computes in float32 whatever autocast says (``trainer.precision=16-mixed`` or ``bf16-mixed``).

* **Feature front ends inside a network** (``models.attention.LogMel``): a loud tone's power spectrum (about
  2e5 at amplitude 0.9) exceeds float16's range (65504) and the log's floor ``1e-10`` rounds to 0 in float16,
  so silence and zero padding (the last piece of every evaluation file) would give -inf, then NaN after batch
  norm. They compute in float32.
* **Recurrent layers** (GRU, LSTM) run in :data:`RNN_DTYPE`, float32, under any autocast. On CUDA, autocast
  sends cuDNN's RNN through its own wrapper (PyTorch's ``aten/src/ATen/cudnn/AutocastRNN.cpp``,
  ``_cudnn_rnn_cast_reflatten``), which casts the input, hidden state and weights to float16 whatever the
  autocast dtype: under ``bf16-mixed`` a GRU would run in float16, with float16's range (read in PyTorch's
  source; no GPU was at hand to observe it, ``make gpu-check`` item 1 checks the dtype on one). On the CPU
  autocast leaves RNNs in float32 already. One stated dtype on every device, at the cost of the RNN's share of
  a step running without half-precision tensor cores.

Convolutions, linear layers and attention follow autocast (their inputs are normalized activations).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

RNN_DTYPE = torch.float32


def in_fp32(fn: Callable, x: torch.Tensor, *args, **kwargs):
    """``fn(x, ...)`` with autocast off and ``x`` in float32; outside autocast the same as ``fn(x, ...)``."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        return fn(x.float(), *args, **kwargs)
