"""Help texts of the options several commands share."""

from __future__ import annotations

from sedbench.tracking import DEFAULT_STORAGE, DEFAULT_TRACKING_URI

TRACKING_HELP = f"MLflow tracking URI (default $MLFLOW_TRACKING_URI or {DEFAULT_TRACKING_URI})"
STORAGE_HELP = f"Optuna storage URL (default {DEFAULT_STORAGE})"
