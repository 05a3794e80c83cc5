# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
r"""The Trust-GRPO math, as pure tensor functions (no trainer, no I/O); docs/trust-grpo.md has the long form.

For one prompt GRPO samples a group of G completions with outcome scores $o_i \in [0, 1]$ and thinking scores
$t_i \in [0, 1]$ (NaN: no score). With $\mu_c$ / $\mu_w$ the mean thinking score of the correct / incorrect
completions, the group's weight on the thinking reward is

$$ w = \alpha \, e^{-\text{step} / T} \, \gamma, \qquad
   \gamma = \begin{cases} e^{\mu_c - \mu_w} & \mu_c < \mu_w \\
                          1 & \text{otherwise, or a side has no score} \end{cases} $$

($w = 0$ for a uniform group skipped by `skip_uniform`), and the final reward of completion i is the usual sum of
outcome rewards plus $w \, t_i$ (a NaN $t_i$ adds 0). See SophiaVL-R1 (arXiv 2505.17018), section 3.4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


__all__ = ["TrustWeights", "anneal_scale", "judge_query_mask", "trust_weights", "uniform_groups"]


@dataclass(frozen=True)
class TrustWeights:
    """Per-group result of `trust_weights`, each field of shape (num_groups,): w, gamma, mu_c, mu_w (NaN: no score)
    and `skipped` (a uniform group under `skip_uniform`, weight 0)."""

    weight: torch.Tensor
    gamma: torch.Tensor
    mu_correct: torch.Tensor
    mu_incorrect: torch.Tensor
    skipped: torch.Tensor


def anneal_scale(step: int, *, alpha: float, anneal_steps: float) -> float:
    r"""The annealed scale $\alpha e^{-\text{step}/T}$ of the thinking reward, T = `anneal_steps` > 0."""
    if anneal_steps <= 0:
        raise ValueError(f"anneal_steps must be positive, got {anneal_steps}")
    return alpha * math.exp(-step / anneal_steps)


def uniform_groups(outcome: torch.Tensor, skip_uniform: tuple[float, float] | None) -> torch.Tensor:
    """Boolean (num_groups,): groups whose outcomes (NaN: 0) are all >= `high` or all <= `low`, with
    `(low, high) = skip_uniform` (`None`: no group is uniform)."""
    if skip_uniform is None:
        return torch.zeros(outcome.shape[0], dtype=torch.bool, device=outcome.device)
    low, high = skip_uniform
    outcome = torch.nan_to_num(outcome, nan=0.0)
    return (outcome >= high).all(dim=1) | (outcome <= low).all(dim=1)


def judge_query_mask(
    outcome: torch.Tensor, *, query_threshold: float | None = None, skip_uniform: tuple[float, float] | None = None
) -> torch.Tensor:
    r"""Which completions of `outcome` (num_groups, G; NaN: 0) are sent to the judge: those with an outcome >=
    `query_threshold` (`None`: all) in groups that are not uniform (`uniform_groups`). `paper` mode sends everything;
    `reference` mode (the released code) uses `query_threshold=0.2, skip_uniform=(0.1, 0.9)`.

    Example:
    ```python
    >>> import torch
    >>> outcome = torch.tensor([[1.0, 0.0, 0.5], [1.0, 1.0, 1.0]])
    >>> judge_query_mask(outcome, query_threshold=0.2, skip_uniform=(0.1, 0.9)).tolist()
    [[True, False, True], [False, False, False]]

    ```
    """
    mask = torch.nan_to_num(outcome, nan=0.0) >= (-math.inf if query_threshold is None else query_threshold)
    return mask & ~uniform_groups(outcome, skip_uniform).unsqueeze(1)


def trust_weights(
    outcome: torch.Tensor,
    thinking: torch.Tensor,
    *,
    step: int,
    alpha: float = 0.3,
    anneal_steps: float,
    correct_threshold: float = 0.5,
    skip_uniform: tuple[float, float] | None = (0.1, 0.9),
) -> TrustWeights:
    r"""Per-group Trust-GRPO weights of the thinking reward (the module docstring's w).

    `outcome` (correctness, NaN: 0) and `thinking` (NaN: left out of the means) have shape (num_groups, G); an outcome
    >= `correct_threshold` is correct; `step` is the optimisation step at generation time, `anneal_steps` is T.

    Example:
    ```python
    >>> import torch
    >>> outcome = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    >>> thinking = torch.tensor([[0.2, 0.4, 0.8, 0.6]])  # the judge prefers the wrong answers
    >>> tw = trust_weights(outcome, thinking, step=0, anneal_steps=100, skip_uniform=None)
    >>> round(tw.gamma.item(), 4), round(tw.weight.item(), 4)  # exp(0.3 - 0.7), 0.3 * exp(-0.4)
    (0.6703, 0.2011)

    ```
    """
    if outcome.shape != thinking.shape or outcome.dim() != 2:
        raise ValueError(
            f"outcome and thinking must both have shape (num_groups, G); got {tuple(outcome.shape)} and "
            f"{tuple(thinking.shape)}"
        )
    outcome, thinking = torch.nan_to_num(outcome.float(), nan=0.0), thinking.float()
    correct = outcome >= correct_threshold
    nan = torch.full_like(thinking, float("nan"))  # NaN thinking scores and the other side drop out of each mean
    mu_correct = torch.where(correct, thinking, nan).nanmean(dim=1)
    mu_incorrect = torch.where(~correct, thinking, nan).nanmean(dim=1)
    distrust = mu_correct < mu_incorrect  # False where a side has no score (NaN)
    gamma = torch.where(distrust, torch.exp(mu_correct - mu_incorrect), torch.ones_like(mu_correct))
    skipped = uniform_groups(outcome, skip_uniform)
    weight = torch.where(skipped, 0.0, anneal_scale(step, alpha=alpha, anneal_steps=anneal_steps) * gamma)
    return TrustWeights(weight=weight, gamma=gamma, mu_correct=mu_correct, mu_incorrect=mu_incorrect, skipped=skipped)
