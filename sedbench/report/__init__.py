"""Reports from a sweep: the paper's tables and figures, fed only by what runs recorded
(the Optuna study and the MLflow runs). Works on a sweep still in progress."""
