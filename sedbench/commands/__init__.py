"""The commands layer: what a user runs, above the libraries it composes.

``sedbench`` (:mod:`.cli`, argument parsing and dispatch), Hydra's start-up for ``train``, ``sweep`` and
``params`` (:mod:`.launch`), ``evaluate``, ``data``, ``score``, ``compare``, ``status`` and ``dashboard``.
Nothing below this package imports it: data, features, models, training, metrics, tracking, studies and
reports are libraries usable without a command line (tests/test_architecture.py checks the layering).
"""
