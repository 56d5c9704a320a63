"""A Hydra sweeper on current Optuna (>= 4): grid, TPE and random search that resume,
share one study between workers and survive failing trials. See sedbench.sweep."""
