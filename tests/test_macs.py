"""MACs per 10 s of audio (issue 40): counted by hand from each layer's shapes, checked against a count by hand
of the paper's CRNN (Table I), a recurrent layer's count, and torch.utils.flop_counter on the CPU."""

import pytest
import torch

from sedbench.models.macs import count_macs, flop_counter_macs, frames_per


def built(*overrides: str, n_in: int = 40, n_classes: int = 6):
    from helpers import compose_cfg

    from sedbench.models.families import build_model

    return build_model(compose_cfg(*overrides).model, n_in, n_classes)


def test_the_paper_crnn_by_hand():
    """Table I's CRNN as conf/model/crnn.yaml builds it (256 maps, 5x5 filters, pooling (5,4,2), one GRU of 256
    units) on 40 bands, 6 classes, per frame: each conv layer's outputs x its inputs x 25, the GRU's 3 gates x
    256 x (256 + 256), the output layer 256 x 6; 500 frames of 20 ms in 10 s."""
    per_frame = (256 * 40 * 1 * 25            # conv 1: 40 bands, one input map
                 + 256 * 8 * 256 * 25         # conv 2: 8 bands after pooling by 5
                 + 256 * 2 * 256 * 25         # conv 3: 2 bands after pooling by 4
                 + 3 * 256 * (256 + 256)      # GRU on the 256 maps x 1 band left
                 + 256 * 6)                   # output layer
    assert per_frame == 17_034_752
    assert count_macs(built("model=crnn"), 40, 1024, 0.02) == 500 * per_frame


def test_a_recurrent_layer_counts_its_input_and_recurrent_products():
    """A 16-unit GRU over 8 sequences of 128 frames of 16 inputs: 3 gates x 16 x (16 + 16) per step, 1,572,864
    MACs, the 3,145,728 FLOPs flop_counter finds on the CPU; an LSTM has 4 gates; a bidirectional layer twice."""
    from sedbench.models import macs

    gru, lstm = torch.nn.GRU(16, 16, batch_first=True), torch.nn.LSTM(16, 16, batch_first=True)
    x = torch.zeros(8, 128, 16)
    assert macs._recurrent(gru, (x,), None) == 8 * 128 * 3 * 16 * 32 == 1_572_864
    assert macs._recurrent(lstm, (x,), None) == 8 * 128 * 4 * 16 * 32
    two = torch.nn.GRU(16, 16, num_layers=2, batch_first=True, bidirectional=True)
    assert macs._recurrent(two, (x,), None) == 2 * 8 * 128 * 3 * 16 * (16 + 16) + 2 * 8 * 128 * 3 * 16 * (32 + 16)
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        gru(x)
    assert counter.get_total_flops() == 3_145_728
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        lstm(x)
    assert counter.get_total_flops() == 0  # the CPU's fused LSTM kernel is invisible to it: why sedbench counts by hand


@pytest.mark.parametrize("overrides, n_in", [
    (["model=crnn", "model.maps=16"], 40), (["model=cnn", "model.maps=16"], 40), (["model=rnn", "model.maps=16"], 40),
    (["model=crnn", "model.maps=8", "model.bidirectional=true", "model.rnn_layers=2", "model.fnn_layers=1"], 40),
    (["model=fnn"], 40), (["model=vggish_rnn", "features=stft"], 513), (["model=acrnn"], 64),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_the_count_is_flop_counters_on_the_cpu_and_does_not_depend_on_the_sequence_length(overrides, n_in):
    """GRU models (flop_counter sees no LSTM on the CPU). A frame-level model costs the same per 10 s whatever its
    sequences; a clip-level one (the ACRNN: attention pooling, one output per sequence) does not, so the count
    is taken at the run's data.seq_len."""
    net = built(*overrides, n_in=n_in)
    for seq_len in (64, 128):
        ours = count_macs(net, n_in, seq_len, 0.02)
        assert ours == round(flop_counter_macs(net, n_in, seq_len) * frames_per(10, 0.02) / seq_len)
    if "model=acrnn" not in overrides:
        assert count_macs(net, n_in, 64, 0.02) == count_macs(net, n_in, 128, 0.02)
    assert net.training  # the count leaves the network in the mode it found it


def test_attention_counts_its_projections_scores_and_weighted_sum():
    """Self-attention over L frames of E features: q, k, v and output projections 4 L E^2, scores and the weighted
    sum 2 L^2 E (flop_counter does not see the CPU's fused attention kernel, so this is by hand)."""
    from sedbench.models import macs

    mha = torch.nn.MultiheadAttention(32, 4, batch_first=True)
    x = torch.zeros(2, 50, 32)
    assert macs._attention(mha, (x, x, x), None) == 2 * (4 * 50 * 32 * 32 + 2 * 50 * 50 * 32)


def test_a_frames_model_counts_per_frame():
    from sedbench.models.gmm import GMMDetector

    gmm = GMMDetector(["a", "b"], n_components=4)
    assert count_macs(gmm, 10, 256, 0.02) == 500 * 2 * 2 * 4 * 2 * 10


def test_params_prints_the_macs_per_10_seconds(tmp_path, monkeypatch, capsys):
    from sedbench.commands.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["params", "model=crnn", "n_classes=6"]) == 0
    out = capsys.readouterr().out
    assert "3,681,798 trainable parameters" in out and "8,517,376,000 MACs per 10 s of audio  (8.52 G;" in out
