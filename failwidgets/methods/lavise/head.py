"""The LaViSE explainer head and its hinge rank loss (Yang et al. 2022, Sec. 3.1, Eq. 1)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm


class ExplainerHead(nn.Module):
    """Maps a pooled masked feature (B, d) to the word space (B, D).

    Reference head: BN, Dropout 0.1, Linear(d, hidden), ReLU, BN, Dropout 0.1, Linear(hidden, D).
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int | None = None, dropout: float = 0.1) -> None:
        super().__init__()
        hidden = hidden_dim or in_dim
        self.net = nn.Sequential(
            nn.BatchNorm1d(in_dim),
            nn.Dropout(dropout),
            nn.Linear(in_dim, hidden),
            nn.ReLU(),
            nn.BatchNorm1d(hidden),
            nn.Dropout(dropout),
            nn.Linear(hidden, out_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def hinge_rank_loss(
    pred: torch.Tensor, target: torch.Tensor, concept_vectors: torch.Tensor, margin: float = 1.0
) -> torch.Tensor:
    """Eq. 1: mean over the batch of ``sum_{c != t} max(0, margin - cos(v_t, v_hat) + cos(v_c, v_hat))``.

    Parameters
    ----------
    pred : Tensor (B, D), explainer outputs v_hat (normalised here)
    target : LongTensor (B,), index of the true concept t of each row in ``concept_vectors``
    concept_vectors : Tensor (C, D), unit vectors of the training concepts
    margin : float

    Returns
    -------
    scalar Tensor
    """
    cos = F.normalize(pred, dim=1) @ concept_vectors.T  # (B, C)
    pos = cos.gather(1, target[:, None])  # (B, 1)
    hinge = (margin - pos + cos).clamp_min(0.0)
    hinge = hinge.scatter(1, target[:, None], 0.0)  # drop c == t
    return hinge.sum(1).mean()


def train_head(
    head: ExplainerHead,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    concept_vectors: torch.Tensor,
    *,
    margin: float,
    lr: float,
    epochs: int,
    batch_size: int,
    seed: int,
    progress: bool,
) -> list[float]:
    """Adam on the hinge rank loss over precomputed pooled inputs; returns the mean loss per epoch."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    head.train()
    history: list[float] = []
    n = len(inputs)
    bar = tqdm(range(epochs), desc="LaViSE explainer", disable=not progress, leave=False)
    for _ in bar:
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            if len(idx) < 2:  # BatchNorm needs two rows
                continue
            loss = hinge_rank_loss(head(inputs[idx]), targets[idx], concept_vectors, margin)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        history.append(total / max(n, 1))
        bar.set_postfix(loss=history[-1])
    head.eval()
    return history


def rank_words(word_indices: np.ndarray, word_scores: np.ndarray, vocabulary: list[str]) -> list[tuple[str, int]]:
    """Count words over the p images of one filter, most frequent first (ties: larger summed cosine).

    Parameters
    ----------
    word_indices : ndarray (p, s), vocabulary indices of each image's s nearest words
    word_scores : ndarray (p, s), their cosines
    """
    counts: dict[int, int] = {}
    score: dict[int, float] = {}
    for i, sc in zip(word_indices.ravel(), word_scores.ravel()):
        counts[int(i)] = counts.get(int(i), 0) + 1
        score[int(i)] = score.get(int(i), 0.0) + float(sc)
    order = sorted(counts, key=lambda i: (-counts[i], -score[i]))
    return [(vocabulary[i], counts[i]) for i in order]
