"""Cakir et al. (2017) Table I: parameter counts of the final models, as a check of the builder.

40 mel bands; classes: TUT-SED Synthetic 2016 16, TUT-SED 2009 61, TUT-SED 2016 18
(home 11 + residential area 7), CHiME-Home 7. Hidden units of conv, recurrent and
feedforward layers all equal ``maps`` (the table's "feature maps/hidden units").
"""

import pytest

from sedbench.models.crnn import CRNN
from sedbench.models.families import count_parameters

TABLE_I = [  # dataset, family, classes, builder arguments, published count
    ("TUT-SED Synthetic 2016", "CNN", 16, dict(maps=256, pool=[2, 2, 2], rnn_layers=0, fnn_layers=3), 3.7e6),
    ("TUT-SED Synthetic 2016", "RNN", 16, dict(maps=512, pool=[], rnn_layers=3, fnn_layers=2), 4.5e6),
    ("TUT-SED Synthetic 2016", "CRNN", 16, dict(maps=256, pool=[5, 4, 2], rnn_layers=1, fnn_layers=0), 3.6e6),
    ("TUT-SED 2009", "CNN", 61, dict(maps=256, pool=[5, 4, 2], rnn_layers=0, fnn_layers=1), 3.4e6),
    ("TUT-SED 2009", "RNN", 61, dict(maps=256, pool=[], rnn_layers=3, fnn_layers=4), 1.3e6),
    ("TUT-SED 2009", "CRNN", 61, dict(maps=256, pool=[5, 4, 2], rnn_layers=1, fnn_layers=0), 3.7e6),
    ("TUT-SED 2016", "CNN", 18, dict(maps=256, pool=[5, 4, 2], rnn_layers=0, fnn_layers=1), 3.4e6),
    ("TUT-SED 2016", "RNN", 18, dict(maps=256, pool=[], rnn_layers=3, fnn_layers=4), 1.3e6),
    ("TUT-SED 2016", "CRNN", 18, dict(maps=96, pool=[2, 2, 2], rnn_layers=3, fnn_layers=0), 743e3),
    ("CHiME-Home", "RNN", 7, dict(maps=256, pool=[], rnn_layers=2, fnn_layers=1), 690e3),
    ("CHiME-Home", "CRNN", 7, dict(maps=256, pool=[2, 2, 2, 1], rnn_layers=1, fnn_layers=0), 6.1e6),
]


@pytest.mark.parametrize(("dataset", "family", "classes", "kw", "published"), TABLE_I,
                         ids=[f"{d}-{f}" for d, f, *_ in TABLE_I])
def test_table_i_within_3_percent(dataset, family, classes, kw, published):
    n = count_parameters(CRNN(40, classes, **kw))
    assert abs(n - published) / published < 0.03, f"{dataset} {family}: {n:,} vs {published:,.0f}"


def test_chime_home_cnn_published_pool_contradicts_published_count():
    """CHiME-Home CNN: Table I says 3 conv layers, pool (5,4,2), 1 FNN layer, 256 maps, 3.6M.

    Conv: 1*256*25+256 + 2*(256*256*25+256) = 3,283,968 weights (+ 3*512 batch norm).
    (5,4,2) pools 40 bands to 1, so the FNN layer reads 256 values: 256*256+256 = 65,792,
    (+512 BN) and the output 256*7+7 = 1,799: 3,353,607 in all, 6.8 % below 3.6M.
    With (2,2,2) the FNN reads 256*5 = 1,280 values: 1,280*256+256 = 327,936, which gives
    3,615,751, within 0.5 % of 3.6M: the count belongs to a (2,2,2) CNN, the row's pool is
    that of the other datasets' CNNs.
    """
    conv = 1 * 256 * 25 + 256 + 2 * (256 * 256 * 25 + 256) + 3 * 2 * 256
    published_pool = conv + (256 * 256 + 256 + 2 * 256) + (256 * 7 + 7)
    pool_222 = conv + (1280 * 256 + 256 + 2 * 256) + (256 * 7 + 7)
    cnn = dict(maps=256, rnn_layers=0, fnn_layers=1)
    assert count_parameters(CRNN(40, 7, pool=[5, 4, 2], **cnn)) == published_pool == 3_353_607
    assert count_parameters(CRNN(40, 7, pool=[2, 2, 2], **cnn)) == pool_222 == 3_615_751
    assert abs(published_pool - 3.6e6) / 3.6e6 > 0.05 and abs(pool_222 - 3.6e6) / 3.6e6 < 0.01
