"""Helpers of the learning tests."""

from __future__ import annotations

import pytest


def _replay_in_torch(trainer, model, optimizer, epochs, recorder=None):
    """Train a PyTorch model on replica 0's minibatches of ``trainer`` for ``epochs`` epochs."""
    import torch

    x, y = torch.tensor(trainer.x), torch.tensor(trainer.y)
    for epoch in range(epochs):
        for rows in trainer.batch_indices(0, epoch):
            idx = torch.tensor(rows)
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if recorder is not None:
                recorder.record_loss(loss.item(), len(idx))
        if recorder is not None:
            recorder.end_epoch()


@pytest.fixture
def replay_in_torch():
    """``replay_in_torch(trainer, model, optimizer, epochs, recorder=None)``."""
    return _replay_in_torch
