"""Seeds of one configuration as one computation (sedbench.models.fused): each member of a FusedCRNN computes what
its solo network computes, with its own initial weights, batches and dropout masks, for the CRNN, CNN and RNN
families.

Tolerance: grouped convolutions and block-diagonal recurrent layers sum the same products in another order than
the solo kernels (the zero blocks add exact zeros), so outputs and gradients agree to float32 rounding, not bit for
bit: within 1e-5 relative to each tensor's largest magnitude (float32 carries about 7 digits; a few hundred
accumulated products lose one to two of them). Weights start equal bit for bit."""

import pytest
import torch

from sedbench.models.crnn import CRNN
from sedbench.models.fused import FusedCRNN, MemberRNG, fusable

N_IN, CLASSES, B, T = 40, 6, 3, 16
FAMILIES = {  # small versions of conf/model/{crnn,cnn,rnn}.yaml
    "crnn": dict(maps=8, pool=[5, 4, 2], rnn_layers=1, fnn_layers=0),
    "cnn": dict(maps=8, pool=[2, 2, 2], rnn_layers=0, fnn_layers=3),
    "rnn": dict(maps=12, pool=[], rnn_layers=3, fnn_layers=2),
}
SEEDS = (0, 1, 2, 7)


def members(family: str, **extra):
    """Each member built under its seed, as a solo run builds it; the global generator's state right after (what
    the solo run's dropout then draws from)."""
    nets, states = [], []
    for seed in SEEDS:
        torch.manual_seed(seed)
        nets.append(CRNN(N_IN, CLASSES, **FAMILIES[family], **extra))
        states.append(torch.get_rng_state())
    return nets, states


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool((a - b).abs().max() <= 1e-5 * max(1.0, float(b.abs().max())))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_member_computes_what_its_solo_network_computes(family):
    nets, states = members(family)
    fused = FusedCRNN(nets, MemberRNG(states))
    for k, net in enumerate(nets):   # initial weights: bit for bit
        own = net.state_dict()
        assert all(torch.equal(v, own[n]) for n, v in fused.member(k).items()), family
        assert set(fused.member(k)) == set(own)
    x = torch.randn(B, len(SEEDS), T, N_IN, generator=torch.Generator().manual_seed(3))
    fused.train()
    y = fused(x)                                    # (K, B, T, classes)
    assert y.shape == (len(SEEDS), B, T, CLASSES)
    targets = (torch.rand(len(SEEDS), B, T, CLASSES, generator=torch.Generator().manual_seed(4)) > 0.7).float()
    loss = sum(torch.nn.functional.binary_cross_entropy_with_logits(y[k], targets[k]) for k in range(len(SEEDS)))
    loss.backward()
    for k, net in enumerate(nets):
        torch.set_rng_state(states[k])              # the solo run's dropout draws from here
        net.train()
        solo = net(x[:, k])
        torch.nn.functional.binary_cross_entropy_with_logits(solo, targets[k]).backward()
        assert close(y[k].detach(), solo.detach()), (family, k)
        grads = fused.member(k, grad=True)
        for name, p in net.named_parameters():
            assert close(grads[name], p.grad), (family, k, name)
        stats = fused.member(k)   # batch-norm running statistics moved as the solo network's did
        for name, v in net.state_dict().items():
            if "running" in name:
                assert close(stats[name], v), (family, k, name)
    fused.eval()
    for k, net in enumerate(nets):
        net.eval()
        assert close(fused(x)[k].detach(), net(x[:, k]).detach())


def test_adam_steps_keep_the_members_apart_and_equal_to_solo():
    """Three Adam steps on the fused network and on each solo network: the weights stay equal (the off-diagonal
    recurrent blocks stay zero, since their gradients are held at zero), but for the conv biases that feed a batch
    norm: their gradient is zero in exact arithmetic, and Adam turns its rounding noise into steps of the learning
    rate's size, differently in the two computations. Batch norm takes the mean out again, so the outputs agree."""
    nets, states = members("crnn")
    fused = FusedCRNN(nets, MemberRNG(states))
    opt = torch.optim.Adam(fused.parameters(), lr=1e-3)
    solo_opts = [torch.optim.Adam(n.parameters(), lr=1e-3) for n in nets]
    data = torch.Generator().manual_seed(5)
    for _ in range(3):
        x = torch.randn(B, len(SEEDS), T, N_IN, generator=data)
        targets = (torch.rand(len(SEEDS), B, T, CLASSES, generator=data) > 0.7).float()
        opt.zero_grad()
        y = fused(x)
        sum(torch.nn.functional.binary_cross_entropy_with_logits(y[k], targets[k]) for k in range(len(SEEDS))
            ).backward()
        opt.step()
        for k, (net, o) in enumerate(zip(nets, solo_opts, strict=True)):
            state = torch.get_rng_state()
            torch.set_rng_state(states[k])
            o.zero_grad()
            torch.nn.functional.binary_cross_entropy_with_logits(net(x[:, k]), targets[k]).backward()
            o.step()
            states[k] = torch.get_rng_state()
            torch.set_rng_state(state)
    before_bn = {f"conv.{i}.bias" for i in range(0, len(nets[0].conv), 5)}
    for k, net in enumerate(nets):
        mine = fused.member(k)
        for name, v in net.state_dict().items():
            if name not in before_bn and "running_mean" not in name:
                assert close(mine[name].float(), v.float()), (k, name)
    x = torch.randn(B, len(SEEDS), T, N_IN, generator=data)
    fused.train()
    fused.rng = MemberRNG(states)
    y = fused(x).detach()
    for k, net in enumerate(nets):
        torch.set_rng_state(states[k])
        assert close(y[k], net(x[:, k]).detach()), k
    w = fused.rnns[0].weight_hh_l0
    units = fused.rnns[0].units
    off = w.clone()
    for g in range(3):
        for m in range(len(SEEDS)):
            rows = slice(g * units * len(SEEDS) + m * units, g * units * len(SEEDS) + (m + 1) * units)
            off[rows, m * units:(m + 1) * units] = 0
    assert torch.count_nonzero(off) == 0


def test_what_cannot_fuse_says_why():
    assert fusable(CRNN(N_IN, CLASSES, maps=4, pool=[5], bidirectional=True)) == \
        "bidirectional recurrent layers have no fused form yet"
    assert "temporal pooling" in fusable(CRNN(N_IN, CLASSES, maps=4, pool=[5], temporal_pool=True))
    assert "no fused form" in fusable(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="cannot fuse"):
        FusedCRNN([CRNN(N_IN, CLASSES, maps=4, pool=[5], bidirectional=True)])
