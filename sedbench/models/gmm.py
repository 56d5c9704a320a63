"""The paper's GMM baseline: the DCASE2016 sound event detection baseline, used scene-independently.

Per class, a *positive* GMM is trained (EM, k-means initialization, diagonal covariances) on
the frames where the class is active and a *negative* one on the other frames. A frame's
evidence is the log-likelihood ratio ``log p(x | pos) - log p(x | neg)``; the class is
active where that ratio summed over a sliding window of 1 second (centred on the frame) is
above 0. For the shared scoring pipeline the windowed mean ratio is mapped through a sigmoid,
so "probability > 0.5" is exactly "ratio sum > 0".

Parameters: per class 2 models x ``n_components`` x (means + variances + weight), i.e.
2 x 16 x (59 + 59 + 1) = 3808 with the 59 MFCC dimensions, as the paper counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class GMMDetector:
    def __init__(self, classes: Sequence[str], n_components: int = 16, window_seconds: float = 1.0,
                 hop_seconds: float = 0.02, max_frames: int | None = 20000, max_iter: int = 100, seed: int = 0):
        self.classes = list(classes)
        self.n_components, self.window_seconds, self.hop = n_components, window_seconds, hop_seconds
        self.max_frames, self.max_iter, self.seed = max_frames, max_iter, seed
        self.models: list[tuple[object, object]] = []

    def n_parameters(self, n_features: int) -> int:
        return len(self.classes) * 2 * self.n_components * (2 * n_features + 1)

    def n_macs(self, n_features: int) -> int:
        """Multiply-accumulates per frame (sedbench.models.macs): each class's two diagonal GMMs score the frame
        under every component, one square and one precision-weighted accumulation per feature."""
        return len(self.classes) * 2 * self.n_components * 2 * n_features

    def fit(self, features: Sequence[np.ndarray], targets: Sequence[np.ndarray], progress: bool = True) -> GMMDetector:
        from sklearn.mixture import GaussianMixture
        from tqdm.auto import tqdm

        from sedbench.errors import ConfigError

        x = np.concatenate(features).astype(np.float64)
        y = np.concatenate(targets) > 0
        rng = np.random.default_rng(self.seed)
        self.models = []
        for k in tqdm(range(len(self.classes)), desc="GMM per class (positive, negative)", unit="class",
                      disable=not progress, leave=False):
            pair = []
            for frames in (x[y[:, k]], x[~y[:, k]]):
                if len(frames) < self.n_components:
                    raise ConfigError(f"class {self.classes[k]!r} has {len(frames)} training frames on one side, "
                                      f"fewer than model.n_components={self.n_components}. Fix: fewer components "
                                      "or more training data")
                if self.max_frames and len(frames) > self.max_frames:
                    frames = frames[rng.choice(len(frames), self.max_frames, replace=False)]
                gmm = GaussianMixture(self.n_components, covariance_type="diag", init_params="kmeans",
                                      max_iter=self.max_iter, reg_covar=1e-4, random_state=self.seed)
                pair.append(gmm.fit(frames))
            self.models.append((pair[0], pair[1]))
        return self

    # the fitted mixtures as arrays, so that a model bundle (sedbench.training.artifacts.Bundle) holds a GMM as it
    # holds a network's weights: tensors only, loaded with torch.load(weights_only=True)
    STATE = ("weights_", "means_", "covariances_", "precisions_cholesky_")

    def state_dict(self) -> dict:
        import torch

        return {f"{k}.{side}.{name}": torch.from_numpy(np.asarray(getattr(gmm, name), np.float64))
                for k, pair in enumerate(self.models) for side, gmm in zip(("pos", "neg"), pair, strict=True)
                for name in self.STATE}

    def load_state_dict(self, state: dict) -> GMMDetector:
        from sklearn.mixture import GaussianMixture

        self.models = []
        for k in range(len(self.classes)):
            pair = []
            for side in ("pos", "neg"):
                gmm = GaussianMixture(self.n_components, covariance_type="diag")
                for name in self.STATE:
                    setattr(gmm, name, state[f"{k}.{side}.{name}"].numpy())
                pair.append(gmm)
            self.models.append((pair[0], pair[1]))
        return self

    def eval(self) -> GMMDetector:
        """No training mode to leave (the networks' ``eval``): the same bundle code loads both."""
        return self

    def log_ratio(self, features: np.ndarray) -> np.ndarray:
        """``(frames, K)`` log-likelihood ratio of each frame."""
        x = features.astype(np.float64)
        return np.stack([pos.score_samples(x) - neg.score_samples(x) for pos, neg in self.models], axis=1)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """``(frames, K)`` pseudo-probabilities: sigmoid of the ratio averaged over the sliding window."""
        from scipy.ndimage import uniform_filter1d

        win = max(1, int(round(self.window_seconds / self.hop)))
        mean = uniform_filter1d(self.log_ratio(features), size=win, axis=0, mode="constant")
        return (1.0 / (1.0 + np.exp(-np.clip(mean, -50, 50)))).astype(np.float32)
