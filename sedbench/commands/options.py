"""The store options several commands share: where the Optuna studies and the MLflow runs are."""

from __future__ import annotations

from sedbench.tracking import DEFAULT_STORAGE, DEFAULT_TRACKING_URI


def add_storage(parser, note: str = "") -> None:
    """``--storage``: the Optuna storage URL (``note``: when the command reads it)."""
    parser.add_argument("--storage", default=DEFAULT_STORAGE,
                        help=f"Optuna storage URL (default {DEFAULT_STORAGE}){note}")


def add_tracking(parser) -> None:
    """``--tracking``: the MLflow store (None: $MLFLOW_TRACKING_URI, else the project's)."""
    parser.add_argument("--tracking", default=None,
                        help=f"MLflow tracking URI (default $MLFLOW_TRACKING_URI or {DEFAULT_TRACKING_URI})")
