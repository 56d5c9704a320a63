"""Training: the LightningModule, the ``train(cfg)`` pipeline, callbacks."""
