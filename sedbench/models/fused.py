"""Several seeds of one CRNN-family configuration as one computation (issue 37).

``FusedCRNN(members)`` holds K :class:`sedbench.models.crnn.CRNN` networks that differ only in their weights
(their seeds) as one network, each member on its own batch:

    x (B, K, T, F): member k's batch in channel k
    -> each member's own conv blocks on its batch, one member after another (conv -> batch norm -> ReLU ->
       max-pool over frequency -> dropout with its own masks), its maps stacked over frequency
                                                               # (B, T, K x maps x F')
    -> block-diagonal GRU/LSTM layers (K x units; the off-diagonal blocks start at zero and their gradients
       are held at zero, so members never mix), time-locked dropout per member
    -> grouped dense layers (one matrix per member) -> batch norm -> ReLU -> dropout
    -> grouped output layer                                    # (K, B, T, classes)

The recurrent and dense layers are where fusing pays: a small model's many small matrix products become few
larger ones. The conv blocks are not fused: on the CPU a grouped convolution's backward took 7x one member's for 5
members, slower than the members' own convolutions one after another (measured with torch's profiler).

**Exactness.** Member k starts from member k's weights bit for bit (:meth:`FusedCRNN.member` gives them back). Its
dropout masks are drawn from a generator of its own, in the order and shapes the solo network draws them from
the global generator, so a member whose generator starts in the state a solo run's global generator is in draws
the same masks (:class:`MemberRNG`). Its conv blocks are its own modules (its solo network's numbers bit for bit);
in the block-diagonal and grouped products the zero blocks add exact zeros, but the kernels may sum in another
order: outputs and gradients agree with the solo network's to float32 rounding (tests/test_fused.py states the
tolerance). Optimizers that act elementwise (Adam, SGD) then update each member as its solo run would, since a
member's loss reaches only its own weights.

Not fused (``fusable`` says why): bidirectional recurrent layers, temporal pooling (clip labels), the other
architectures.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from sedbench.models.crnn import BLOCK, CRNN
from sedbench.models.precision import in_fp32

FUSED_PRECISIONS = ("32", "32-true", "bf16-mixed")
# On the CPU, models wider than this (model.maps: conv maps and recurrent and dense units) train solo. The block-
# diagonal recurrent layers compute K x K blocks of which K are used, so their waste grows with the width, while
# the per-operation overhead fusing saves shrinks. Measured on one AVX-512 core, 5 seeds fused against one at a time
# (training steps; issue 37): RNN 12 / 26 / 50 / 64 / 80 / 112 units 3.90 / 2.58 / 1.46 / 1.10 / 0.83 / 0.52x;
# CRNN 8 / 16 / 32 / 48 / 64 maps 1.76 / 1.38-1.5 / 1.18 / 1.06 / 0.91x; CNN 8 / 16 / 32 maps 1.18 / 1.01 / 0.97x;
# the paper CRNN (256 maps) 0.95x for 2 seeds, and 5 fused peaked at 3.0 GB against 1.3 GB solo.
FUSE_ON_CPU_MAX_MAPS = 48


def fuse_reason(cfg, on_cpu: bool = True) -> str | None:
    """None when the seeds of the configuration ``cfg`` (its ``model``, ``data`` and ``trainer``) can train as one
    fused computation (sedbench.training.fused), else the reason they train solo. Decided from the config (and
    whether it trains on the CPU) alone; clip labels, which only the dataset tells, are checked again when a group
    starts."""
    from sedbench.models.families import arch_of

    arch = arch_of(cfg.model).name
    if arch != "crnn":
        return f"model.arch={arch} has no fused form (the CRNN, CNN and RNN families have one)"
    if cfg.model.get("bidirectional"):
        return "bidirectional recurrent layers have no fused form yet"
    if cfg.model.get("temporal_pool"):
        return "temporal pooling (clip labels) has no fused form yet"
    if int(((cfg.data.get("augment") or {}).get("copies")) or 0) > 0:
        return "data.augment: each seed trains on its own copies"
    if cfg.trainer.get("lr_plateau"):
        return "trainer.lr_plateau: each seed would need its own learning rate"
    if str(cfg.trainer.precision) not in FUSED_PRECISIONS:
        return f"trainer.precision={cfg.trainer.precision} (fused: {', '.join(FUSED_PRECISIONS)})"
    if str(cfg.trainer.get("devices", 1)) not in ("1", "auto"):
        return f"trainer.devices={cfg.trainer.devices} (fused: one device)"
    if on_cpu and int(cfg.model.get("maps") or 0) > FUSE_ON_CPU_MAX_MAPS:
        return (f"on the CPU, models wider than {FUSE_ON_CPU_MAX_MAPS} maps or units train faster one seed at a "
                "time (measured)")
    return None


def fusable(net: nn.Module) -> str | None:
    """None when ``net`` can be a member of a :class:`FusedCRNN`, else the reason it cannot."""
    if type(net) is not CRNN:
        return f"{type(net).__name__} has no fused form (CRNN, CNN and RNN families only)"
    if any(r.bidirectional for r in net.rnns):
        return "bidirectional recurrent layers have no fused form yet"
    if net.temporal_pool:
        return "temporal pooling (clip labels) has no fused form yet"
    return None


class MemberRNG:
    """Each member's random draws, made as its solo run makes them from the global generator of the device its
    dropout runs on. On the CPU: one ``torch.Generator`` per member (``states``, e.g. taken with
    ``torch.get_rng_state()`` right after building the member under its seed; or ``generators`` shared with
    the member's data loader, which draws from the same global generator in a solo run). On CUDA: each
    member's state of the device's generator (``cuda_states``), swapped in while the member draws with the very
    operation its solo network uses (CUDA's dropout kernel draws differently from ``bernoulli_``)."""

    def __init__(self, states: list[torch.Tensor] | None = None, generators: list[torch.Generator] | None = None,
                 cuda_states: list[torch.Tensor] | None = None, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.cuda_states = list(cuda_states or [])
        self.generators = list(generators or [])
        for state in states or []:
            g = torch.Generator()
            g.set_state(state)
            self.generators.append(g)

    @property
    def on_cuda(self) -> bool:
        return self.device.type == "cuda"

    def subset(self, keep: list[int]) -> MemberRNG:
        """The draws of members ``keep`` only (the same generators and states, carried on)."""
        return MemberRNG(generators=[self.generators[k] for k in keep] if self.generators else None,
                         cuda_states=[self.cuda_states[k] for k in keep] if self.cuda_states else None,
                         device=self.device)

    def bernoulli(self, k: int, shape, keep: float, like: torch.Tensor) -> torch.Tensor:
        """Member ``k``'s mask of ``shape``, drawn as ``empty(shape).bernoulli_(keep)`` draws it, scaled by
        ``1 / keep`` (what F.dropout and LockedDropout multiply by on the CPU)."""
        noise = torch.empty(shape, dtype=like.dtype).bernoulli_(keep, generator=self.generators[k])
        return noise.div_(keep).to(like.device)

    def dropout(self, k: int, part: torch.Tensor, p: float, locked: bool) -> torch.Tensor:
        """Member ``k``'s dropout of ``part`` (its slice of a fused activation), as its solo network's
        ``nn.Dropout`` (``locked``: ``LockedDropout``) computes it."""
        keep = 1 - p
        if not self.on_cuda:
            shape = (part.shape[0], 1, part.shape[2]) if locked else part.shape
            return part * self.bernoulli(k, shape, keep, part)
        saved = torch.cuda.get_rng_state(self.device)
        torch.cuda.set_rng_state(self.cuda_states[k], self.device)
        try:
            part = part.contiguous()
            if locked:
                return part * (part.new_empty(part.shape[0], 1, part.shape[2]).bernoulli_(keep) / keep)
            return torch.nn.functional.dropout(part, p, training=True)
        finally:
            self.cuda_states[k] = torch.cuda.get_rng_state(self.device)
            torch.cuda.set_rng_state(saved, self.device)


class GroupedLinear(nn.Module):
    """K dense layers, one per member: ``(..., K * in) -> (..., K * out)``, weights ``(K, out, in)``."""

    def __init__(self, layers: list[nn.Linear]):
        super().__init__()
        self.k, self.n_in, self.n_out = len(layers), layers[0].in_features, layers[0].out_features
        self.weight = nn.Parameter(torch.stack([lin.weight.detach().clone() for lin in layers]))
        self.bias = nn.Parameter(torch.stack([lin.bias.detach().clone() for lin in layers]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        h = x.reshape(-1, self.k, self.n_in).transpose(0, 1)                 # (K, N, in)
        y = torch.baddbmm(self.bias.unsqueeze(1), h, self.weight.transpose(1, 2))  # (K, N, out)
        return y.transpose(0, 1).reshape(*lead, self.k * self.n_out)


def _block_diagonal_rnn(rnns: list[nn.RNNBase]) -> nn.RNNBase:
    """One GRU/LSTM layer of K x units whose weights are the members' on the diagonal blocks of every gate and
    zero elsewhere; a gradient hook keeps the zeros."""
    first, k = rnns[0], len(rnns)
    units, n_in = first.hidden_size, first.input_size
    gates = first.weight_ih_l0.shape[0] // units
    fused = type(first)(n_in * k, units * k, batch_first=True)
    with torch.no_grad():
        for name, param in fused.named_parameters():
            param.zero_()
            mask = torch.zeros_like(param, dtype=torch.bool)
            for m, rnn in enumerate(rnns):
                own = getattr(rnn, name)
                cols = n_in if name.startswith("weight_ih") else units
                for g in range(gates):
                    rows = slice(g * units * k + m * units, g * units * k + (m + 1) * units)
                    src = own[g * units:(g + 1) * units]
                    if param.dim() == 2:
                        param[rows, m * cols:(m + 1) * cols] = src
                        mask[rows, m * cols:(m + 1) * cols] = True
                    else:
                        param[rows] = src
                        mask[rows] = True
            if not mask.all():
                param.register_hook(lambda grad, mask=mask: grad.masked_fill(~mask, 0))
    fused.gates, fused.members, fused.units, fused.n_in = gates, k, units, n_in
    return fused


def _rnn_member(fused: nn.RNNBase, m: int, get) -> dict[str, torch.Tensor]:
    k, units, gates, n_in = fused.members, fused.units, fused.gates, fused.n_in
    out = {}
    for name, _ in fused.named_parameters():
        param = get(fused, name)
        cols = n_in if name.startswith("weight_ih") else units
        blocks = [param[g * units * k + m * units: g * units * k + (m + 1) * units] for g in range(gates)]
        if param.dim() == 2:
            blocks = [b[:, m * cols:(m + 1) * cols] for b in blocks]
        out[name] = torch.cat(blocks)
    return out


class FusedCRNN(nn.Module):
    """K members of one CRNN configuration as one network (see the module). ``forward(x (B, K, T, F))`` gives
    ``(K, B, T, classes)``; dropout draws each member's masks from ``rng`` (a :class:`MemberRNG`), required in
    training mode when the members have dropout."""

    def __init__(self, members: list[CRNN], rng: MemberRNG | None = None):
        super().__init__()
        reasons = {fusable(m) for m in members} - {None}
        if reasons:
            raise ValueError(f"cannot fuse these networks: {'; '.join(sorted(reasons))}")
        self.k, self.rng = len(members), rng
        first = members[0]
        self.pool, self.output_dropout = first.pool, first.output_dropout
        # the conv blocks stay each member's own (its modules, run one member after another): grouped
        # convolutions measured slower than the members' own on the CPU (their backward, 7x one member's for 5),
        # and a member's own kernels give its solo network's numbers bit for bit
        self.convs = nn.ModuleList(copy.deepcopy(m.conv) for m in members)
        self.conv_dropout = first.conv[4].p if len(first.conv) else 0.0
        self.maps = first.conv[0].out_channels if len(first.conv) else 0
        self.rnns = nn.ModuleList(_block_diagonal_rnn([m.rnns[j] for m in members]) for j in range(len(first.rnns)))
        self.rnn_dropout = first.rnn_dropout.p
        self.fnns = nn.ModuleList()
        for j in range(len(first.fnns)):
            lin = GroupedLinear([m.fnns[j][0] for m in members])
            bns = [m.fnns[j][1] for m in members]
            bn = nn.BatchNorm1d(bns[0].num_features * self.k, eps=bns[0].eps, momentum=bns[0].momentum)
            with torch.no_grad():
                for name in ("weight", "bias", "running_mean", "running_var"):
                    getattr(bn, name).copy_(torch.cat([getattr(b, name) for b in bns]))
                bn.num_batches_tracked.copy_(bns[0].num_batches_tracked)
            self.fnns.append(nn.ModuleList([lin, bn]))
        self.dropout = first.dropout.p
        self.out = GroupedLinear([m.out for m in members])

    def _drop_member(self, k: int, h: torch.Tensor, p: float) -> torch.Tensor:
        """Member ``k``'s dropout of its own activation ``h``, its mask drawn as its solo run draws it."""
        if not self.training or p == 0:
            return h
        if self.rng is None:
            raise RuntimeError("FusedCRNN in training mode with dropout needs a MemberRNG")
        return self.rng.dropout(k, h, p, locked=False)

    def _drop(self, h: torch.Tensor, p: float, split: int, locked: bool = False) -> torch.Tensor:
        """Each member's dropout on its slice of ``h`` along dim ``split``, masks drawn as its solo run draws
        them (for ``locked``: one mask per sequence, constant in time, as LockedDropout)."""
        if not self.training or p == 0:
            return h
        if self.rng is None:
            raise RuntimeError("FusedCRNN in training mode with dropout needs a MemberRNG")
        return torch.cat([self.rng.dropout(k, part, p, locked) for k, part in enumerate(h.chunk(self.k, dim=split))],
                         dim=split)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, K, T, _ = x.shape
        if self.pool:
            parts = []
            for k, conv in enumerate(self.convs):       # each member's conv blocks on its own batch
                h = x[:, k].unsqueeze(1)
                for i in range(0, len(conv), BLOCK):     # conv -> batch norm -> ReLU -> pool -> its own dropout
                    h = conv[i + 3](conv[i + 2](conv[i + 1](conv[i](h))))
                    h = self._drop_member(k, h, self.conv_dropout)
                parts.append(h.permute(0, 2, 1, 3).reshape(B, T, -1))    # (B, T, maps * F')
            h = torch.cat(parts, dim=-1)                                 # (B, T, K x maps * F')
        else:
            h = x.permute(0, 2, 1, 3).reshape(B, T, -1)                              # (B, T, K * F)
        last = len(self.rnns) + len(self.fnns) - 1
        for i, rnn in enumerate(self.rnns):
            h = in_fp32(rnn, h)[0]
            if self.output_dropout or i < last:
                h = self._drop(h, self.rnn_dropout, 2, locked=True)
        for i, (lin, bn) in enumerate(self.fnns, start=len(self.rnns)):
            h = lin(h)
            h = torch.relu(bn(h.reshape(B * T, -1)).reshape(B, T, -1))
            if self.output_dropout or i < last:
                h = self._drop(h, self.dropout, 2)
        y = self.out(h)                                                              # (B, T, K * classes)
        return y.reshape(B, T, K, -1).permute(2, 0, 1, 3)                            # (K, B, T, classes)

    def member(self, k: int, grad: bool = False, of=None) -> dict[str, torch.Tensor]:
        """Member ``k``'s weights and batch-norm statistics as its own CRNN's ``state_dict`` names them; with
        ``grad``, the gradients of its weights instead (no statistics); with ``of`` (a function of a parameter),
        what it gives for each parameter (an optimizer's state of it, say), no statistics."""
        if grad:
            of = lambda p: p.grad  # noqa: E731

        def get(module, name):
            value = getattr(module, name)
            return of(value) if of is not None else value

        grad = grad or of is not None
        stats = () if grad else ("running_mean", "running_var")
        out = {}
        if grad:
            out.update({f"conv.{n}": of(p) for n, p in self.convs[k].named_parameters()})
        else:
            out.update({f"conv.{n}": v for n, v in self.convs[k].state_dict().items()})
        for j, rnn in enumerate(self.rnns):
            out.update({f"rnns.{j}.{n}": v for n, v in _rnn_member(rnn, k, get).items()})
        for j, (lin, bn) in enumerate(self.fnns):
            part = slice(k * (bn.num_features // self.k), (k + 1) * (bn.num_features // self.k))
            out[f"fnns.{j}.0.weight"], out[f"fnns.{j}.0.bias"] = get(lin, "weight")[k], get(lin, "bias")[k]
            for name in ("weight", "bias", *stats):
                out[f"fnns.{j}.1.{name}"] = get(bn, name)[part]
            if not grad:
                out[f"fnns.{j}.1.num_batches_tracked"] = bn.num_batches_tracked
        out["out.weight"], out["out.bias"] = get(self.out, "weight")[k], get(self.out, "bias")[k]
        return {n: v.detach().clone() for n, v in out.items()}


def regroup(fused: FusedCRNN, keep: list[int], nets: list[CRNN], optimizer: torch.optim.Optimizer | None = None):
    """Members ``keep`` of ``fused`` as a new FusedCRNN on the same device: their current weights, batch-norm
    statistics and random draws carried on (``nets``: a solo network per kept member, loaded with its weights on
    the way); with ``optimizer`` (of ``fused``'s parameters, elementwise such as Adam), a new optimizer of the same
    kind and settings holding the kept members' state. Returns ``(fused, optimizer)``."""
    device = next(fused.parameters()).device
    for k, net in zip(keep, nets, strict=True):
        net.load_state_dict(fused.member(k))
    new = FusedCRNN(nets, fused.rng.subset(keep) if fused.rng is not None else None).to(device)
    new.train(fused.training)
    if optimizer is None:
        return new, None
    moved = type(optimizer)(new.parameters(), **optimizer.defaults)
    old_params = [p for group in optimizer.param_groups for p in group["params"]]
    states = [optimizer.state[p] for p in old_params if p in optimizer.state]
    if not states:
        return new, moved
    for key, value in states[0].items():
        if not torch.is_tensor(value) or value.dim() == 0:  # the step count: the same for every member
            for p in new.parameters():
                moved.state[p][key] = value.clone()
            continue
        scratch = []
        for k, net in zip(keep, nets, strict=True):
            twin = copy.deepcopy(net)
            twin.load_state_dict(fused.member(k, of=lambda p, key=key: optimizer.state[p][key]), strict=False)
            scratch.append(twin)
        for p, q in zip(new.parameters(), FusedCRNN(scratch).parameters(), strict=True):
            moved.state[p][key] = q.detach().to(device).clone()
    return new, moved
