"""A small PyTorch classifier with MC dropout, for BALD (Gal et al., 2017).

An MLP on a dense view of the features (a seeded random projection of hashed text features);
dropout stays on at prediction time, and ``predict_mc`` returns T stochastic passes. Runs on the
GPU when one is present, else on the CPU. Seeding never touches the global RNGs
(``torch.random.fork_rng``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from labeling.errors import InvalidInput, NotFittedError

if TYPE_CHECKING:
    import torch

__all__ = ["MCDropoutClassifier", "project"]


def project(features, dim: int, seed: int) -> np.ndarray:
    """(n, d) dense or sparse -> (n, min(d, dim)) float32 by a seeded Gaussian projection."""
    d = features.shape[1]
    if d <= dim and not sp.issparse(features):
        return np.asarray(features, dtype=np.float32)
    rng = np.random.default_rng(seed)
    proj = rng.normal(size=(d, dim)).astype(np.float32) / np.sqrt(dim)
    out = features @ proj
    return np.asarray(out, dtype=np.float32)


class MCDropoutClassifier:
    def __init__(self, n_classes: int, *, hidden: int = 128, dropout: float = 0.3, epochs: int = 60,
                 lr: float = 1e-2, seed: int = 0, device: str | None = None) -> None:
        self.n_classes, self.hidden, self.dropout = n_classes, hidden, dropout
        self.epochs, self.lr, self.seed, self.device = epochs, lr, seed, device

    def _device(self) -> torch.device:
        import torch

        return torch.device(self.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None):
        if len(X) != len(y) or len(y) == 0:
            raise InvalidInput(f"X has {len(X)} rows and y {len(y)}; need the same, > 0")
        import torch  # here, not at import: the CLI and the API start without loading torch
        from torch import nn

        dev = self._device()
        x = torch.as_tensor(X, dtype=torch.float32, device=dev)
        self.mean_, self.std_ = x.mean(0), x.std(0).clamp_min(1e-6)
        x = (x - self.mean_) / self.std_
        t = torch.as_tensor(y, dtype=torch.long, device=dev)
        w = torch.as_tensor(np.ones(len(y)) if sample_weight is None else sample_weight,
                            dtype=torch.float32, device=dev)
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(self.seed)
            self.net_ = nn.Sequential(
                nn.Linear(x.shape[1], self.hidden), nn.ReLU(), nn.Dropout(self.dropout),
                nn.Linear(self.hidden, self.n_classes),
            ).to(dev)
            opt = torch.optim.Adam(self.net_.parameters(), lr=self.lr, weight_decay=1e-4)
            self.net_.train()
            for _ in range(self.epochs):  # full-batch: pools of labeled items are small
                opt.zero_grad()
                loss = (nn.functional.cross_entropy(self.net_(x), t, reduction="none") * w).sum() / w.sum()
                loss.backward()
                opt.step()
        return self

    def predict_mc(self, X: np.ndarray, passes: int = 10, *, batch: int = 65_536) -> np.ndarray:
        """(passes, n, K) float32 class probabilities with dropout on."""
        if not hasattr(self, "net_"):
            raise NotFittedError("MCDropoutClassifier.fit must be called first")
        import torch

        dev = self._device()
        self.net_.train()  # keeps dropout active
        out = np.empty((passes, len(X), self.n_classes), dtype=np.float32)
        with torch.no_grad(), torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(self.seed + 1)
            for start in range(0, len(X), batch):
                x = (torch.as_tensor(X[start:start + batch], dtype=torch.float32, device=dev)
                     - self.mean_) / self.std_
                for t in range(passes):
                    out[t, start:start + batch] = torch.softmax(self.net_(x), dim=1).cpu().numpy()
        return out
