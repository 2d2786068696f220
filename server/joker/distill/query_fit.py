"""Fitting a field by querying it, without rendering: the density pre-fit to the rig
(rig_space.prefit_density) and the warm start carried along the rig
(warm_start.carry_along_rig) both hold points of a fixed pool to targets labelled once."""

from __future__ import annotations

from typing import Callable

import torch

from joker_core.errors import JobCancelled

from .field import RadianceField

# loss(picked pool indices, the field's density and colour at those points) -> scalar
QueryLoss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def fit_by_queries(field: RadianceField, pool: torch.Tensor, loss: QueryLoss, steps: int, points: int,
                   rates: tuple[float, float], generator: torch.Generator,
                   cancel: Callable[[], bool] | None = None) -> float:
    """`steps` Adam steps on `field`, each on `points` random points of `pool` (box units,
    on the field's device). `rates`: the grid's and the network's learning rates;
    `cancel()` True stops it (JobCancelled) between steps. Returns the last step's loss."""
    optimizer = torch.optim.Adam([{"params": field.grid_parameters(), "lr": rates[0]},
                                  {"params": field.decoder.parameters(), "lr": rates[1]}], betas=(0.9, 0.99))
    value = torch.tensor(float("nan"))
    for _ in range(steps):
        if cancel is not None and cancel():
            raise JobCancelled("distillation cancelled")
        pick = torch.randint(len(pool), (points,), generator=generator).to(pool.device)
        value = loss(pick, *field.query_unit(pool[pick]))
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
    return value.item()
