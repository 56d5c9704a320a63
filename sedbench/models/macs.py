"""Multiply-accumulates (MACs) of a model per 10 s of audio, as DCASE's sound event detection task asks
systems to report them: a property of the architecture, counted by hand from each layer's shapes, not by
whatever kernels a device happens to run.

One forward pass over one sequence of ``seq_len`` frames, in evaluation mode, is watched by forward hooks;
each layer that multiplies by weights adds its count, and the total is scaled to the frames of 10 s
(``10 / hop_seconds``), as inference runs sequence by sequence:

* ``Conv1d``/``Conv2d``: output elements x (input channels / groups) x kernel size;
* ``Linear``: input rows x in_features x out_features;
* ``GRU``/``LSTM``: per layer and direction, steps x gates x units x (layer inputs + units), with 3 gates
  (GRU) or 4 (LSTM): the input and recurrent matrix products; the gates' elementwise products are not
  counted, as no matrix product is (batch norm, activations, pooling, dropout, the attention softmax);
* ``MultiheadAttention``: the query, key and value projections, query x key scores, the weighted sum of
  values and the output projection.

A frames model (the GMM baseline) counts its own per frame (``n_macs``). :func:`flop_counter_macs` gives
``torch.utils.flop_counter``'s count on the CPU for the tests to compare (it counts 2 FLOPs per MAC).
"""

from __future__ import annotations

SECONDS = 10.0  # DCASE reports MACs per 10 s of audio


def frames_per(seconds: float, hop_seconds: float) -> int:
    """Frames of ``seconds`` of audio at a hop of ``hop_seconds``."""
    return int(round(seconds / hop_seconds))


def _conv(module, inputs, output) -> int:
    import math

    return output.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)


def _linear(module, inputs, output) -> int:
    return inputs[0].numel() // module.in_features * module.in_features * module.out_features


def _recurrent(module, inputs, output) -> int:
    import torch

    x = inputs[0]
    if isinstance(x, torch.nn.utils.rnn.PackedSequence):
        steps = int(x.data.shape[0])  # the valid steps of every sequence
    else:
        steps = x.shape[0] * x.shape[1] if x.dim() == 3 else x.shape[0]  # batch x time (or time, unbatched)
    gates = 3 if isinstance(module, torch.nn.GRU) else 4
    directions = 2 if module.bidirectional else 1
    total, width = 0, module.input_size
    for _ in range(module.num_layers):
        total += directions * steps * gates * module.hidden_size * (width + module.hidden_size)
        width = module.hidden_size * directions
    return total


def _attention(module, inputs, output) -> int:
    query, key = inputs[0], inputs[1]
    batch_first = getattr(module, "batch_first", False)
    length, source = (query.shape[-2], key.shape[-2]) if batch_first else (query.shape[0], key.shape[0])
    batch = query.numel() // (length * module.embed_dim)
    e, kdim, vdim = module.embed_dim, module.kdim, module.vdim
    projections = length * e * e + source * e * (kdim + vdim) + length * e * e  # q, k, v in; out
    return batch * (projections + 2 * length * source * e)  # scores and the weighted sum, all heads


def count_macs(net, n_features: int, seq_len: int, hop_seconds: float, seconds: float = SECONDS) -> int:
    """MACs of ``net`` (a network taking ``(B, T, n_features)``) per ``seconds`` of audio: one evaluation-mode
    pass over a sequence of ``seq_len`` frames, scaled to the frames of ``seconds``; a frames model's own count
    (``n_macs``) per frame times those frames."""
    frames = frames_per(seconds, hop_seconds)
    if hasattr(net, "n_macs"):
        return int(net.n_macs(n_features)) * frames
    import torch

    counters = {torch.nn.Conv1d: _conv, torch.nn.Conv2d: _conv, torch.nn.Linear: _linear, torch.nn.GRU: _recurrent,
                torch.nn.LSTM: _recurrent, torch.nn.MultiheadAttention: _attention}
    counted = [0]
    hooks = []
    for module in net.modules():
        count = next((c for kind, c in counters.items() if isinstance(module, kind)), None)
        if count is not None:
            hooks.append(module.register_forward_hook(
                lambda m, i, o, count=count: counted.__setitem__(0, counted[0] + count(m, i, o))))
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            net(torch.zeros(1, seq_len, n_features))
    finally:
        for h in hooks:
            h.remove()
        net.train(was_training)
    return int(round(counted[0] * frames / seq_len))


def flop_counter_macs(net, n_features: int, seq_len: int) -> int:
    """``torch.utils.flop_counter``'s count of one evaluation-mode pass over a ``seq_len``-frame sequence, in MACs
    (half its FLOPs): a check of :func:`count_macs` on the device at hand, not the architecture's count."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    was_training = net.training
    net.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            net(torch.zeros(1, seq_len, n_features))
    finally:
        net.train(was_training)
    return counter.get_total_flops() // 2
