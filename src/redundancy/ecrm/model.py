"""DLRM: bottom MLP on dense features, pairwise dot-product interactions with the embeddings of the
sparse features, top MLP to one logit. Embeddings come from outside (the parameter servers)."""

from __future__ import annotations

import torch
from torch import nn

from redundancy.ecrm.config import ModelConfig


def _mlp(sizes: list[int], last_relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2 or last_relu:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class DLRM(nn.Module):
    """The dense part of DLRM; ``forward(dense, emb)`` with emb of shape (batch, tables, dim).

    The embeddings come from the parameter servers; this module holds the bottom MLP, the
    pairwise dot-product interactions and the top MLP, and returns one logit per sample.

    Parameters
    ----------
    cfg : ModelConfig
        The model's shape.

    Examples
    --------
    >>> from redundancy.ecrm.config import ModelConfig
    >>> model = DLRM(ModelConfig(table_rows=[100, 100, 100], dim=4))
    >>> logits = model(torch.zeros(5, 13), torch.zeros(5, 3, 4))
    >>> tuple(logits.shape)
    (5,)
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.num_tables, self.dim = len(cfg.table_rows), cfg.dim
        self.bottom = _mlp([cfg.dense_features, *cfg.bottom, cfg.dim], last_relu=True)
        n = self.num_tables + 1
        iu = torch.triu_indices(n, n, offset=1)
        self.register_buffer("_iu", iu, persistent=False)
        self.top = _mlp([cfg.dim + iu.shape[1], *cfg.top, 1], last_relu=False)

    def forward(self, dense: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        x = self.bottom(dense)
        z = torch.cat([x[:, None, :], emb.to(x.dtype)], dim=1)
        inter = torch.bmm(z, z.transpose(1, 2))[:, self._iu[0], self._iu[1]]
        return self.top(torch.cat([x, inter], dim=1)).squeeze(1)
