"""SED networks. One family covers the paper's study: CRNN, CNN (no recurrent layers) and
RNN (no conv layers) are all :class:`sedbench.models.crnn.CRNN` with different knobs."""
