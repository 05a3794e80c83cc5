# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""The Trust-GRPO math against groups worked out by hand (docs: shared trust-grpo.md)."""

import math

import pytest
import torch

from sophiavl_trl.trust import anneal_scale, judge_query_mask, trust_weights, uniform_groups


nan = float("nan")
T = torch.tensor


def weights(outcome, thinking, step=0, anneal_steps=100, **kwargs):
    return trust_weights(T([outcome]), T([thinking]), step=step, anneal_steps=anneal_steps, **kwargs)


class TestTrustWeightsPaperMode:
    # paper mode: no uniform-group rule
    kw = {"skip_uniform": None}

    def test_all_correct_group_has_full_weight(self):
        tw = weights([1, 1, 1, 1], [0.5, 0.7, 0.9, 0.1], **self.kw)
        # no incorrect side -> gamma 1; weight = alpha at step 0
        assert tw.gamma.item() == 1.0
        assert tw.weight.item() == pytest.approx(0.3)
        assert tw.mu_correct.item() == pytest.approx(0.55)
        assert math.isnan(tw.mu_incorrect.item())

    def test_all_wrong_group_has_full_weight(self):
        tw = weights([0, 0, 0, 0], [0.5, 0.7, 0.9, 0.1], **self.kw)
        assert tw.gamma.item() == 1.0
        assert tw.weight.item() == pytest.approx(0.3)
        assert math.isnan(tw.mu_correct.item())

    def test_judge_preferring_right_answers_is_trusted(self):
        # mu_c = (0.9 + 0.7) / 2 = 0.8 >= mu_w = (0.2 + 0.4) / 2 = 0.3
        tw = weights([1, 1, 0, 0], [0.9, 0.7, 0.2, 0.4], **self.kw)
        assert tw.gamma.item() == 1.0
        assert tw.weight.item() == pytest.approx(0.3)

    def test_judge_preferring_wrong_answers_is_distrusted_by_exp_of_the_gap(self):
        # mu_c = (0.2 + 0.4) / 2 = 0.3, mu_w = (0.9 + 0.7) / 2 = 0.8 -> gamma = exp(-0.5)
        tw = weights([1, 0, 1, 0], [0.2, 0.9, 0.4, 0.7], **self.kw)
        assert tw.gamma.item() == pytest.approx(0.6065306597)
        assert tw.weight.item() == pytest.approx(0.3 * 0.6065306597)

    def test_equal_means_keep_full_trust(self):
        tw = weights([1, 0], [0.5, 0.5], **self.kw)
        assert tw.gamma.item() == 1.0

    def test_nan_scores_are_left_out_of_the_means(self):
        # mu_c = 0.2 (only the second), mu_w = 0.6 (only the third) -> gamma = exp(-0.4)
        tw = weights([1, 1, 0, 0], [nan, 0.2, 0.6, nan], **self.kw)
        assert tw.mu_correct.item() == pytest.approx(0.2)
        assert tw.mu_incorrect.item() == pytest.approx(0.6)
        assert tw.gamma.item() == pytest.approx(math.exp(-0.4))

    def test_a_side_with_only_nan_scores_counts_as_empty(self):
        tw = weights([1, 1, 0, 0], [0.1, 0.2, nan, nan], **self.kw)
        assert math.isnan(tw.mu_incorrect.item())
        assert tw.gamma.item() == 1.0
        assert tw.weight.item() == pytest.approx(0.3)

    def test_all_nan_group(self):
        tw = weights([1, 0], [nan, nan], **self.kw)
        assert tw.gamma.item() == 1.0

    def test_correct_threshold_is_inclusive(self):
        # 0.5 counts as correct with the default threshold, so mu_c = 0.1, mu_w = 0.9 -> exp(-0.8)
        tw = weights([0.5, 0.4], [0.1, 0.9], **self.kw)
        assert tw.gamma.item() == pytest.approx(math.exp(-0.8))
        # with a threshold of 0.6 both are incorrect: no correct side -> gamma 1
        tw = weights([0.5, 0.4], [0.1, 0.9], correct_threshold=0.6, **self.kw)
        assert tw.gamma.item() == 1.0

    def test_nan_outcome_counts_as_incorrect(self):
        tw = weights([1, nan], [0.1, 0.9], **self.kw)
        assert tw.mu_incorrect.item() == pytest.approx(0.9)
        assert tw.gamma.item() == pytest.approx(math.exp(-0.8))

    @pytest.mark.parametrize(
        ("step", "expected"),
        [(0, 0.3), (50, 0.3 * math.exp(-0.5)), (100, 0.3 / math.e), (300, 0.3 * math.exp(-3))],
    )
    def test_annealing(self, step, expected):
        tw = weights([1, 1, 0, 0], [0.9, 0.7, 0.2, 0.4], step=step, anneal_steps=100, **self.kw)
        assert tw.weight.item() == pytest.approx(expected)
        assert anneal_scale(step, alpha=0.3, anneal_steps=100) == pytest.approx(expected)

    def test_annealing_and_distrust_multiply(self):
        tw = weights([1, 0, 1, 0], [0.2, 0.9, 0.4, 0.7], step=100, anneal_steps=100, alpha=0.5, **self.kw)
        assert tw.weight.item() == pytest.approx(0.5 * math.exp(-1) * math.exp(-0.5))

    def test_groups_are_independent(self):
        outcome = T([[1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0]])
        thinking = T([[0.2, 0.9, 0.4, 0.7], [0.9, 0.7, 0.2, 0.4], [0.1, 0.1, 0.1, 0.1]])
        tw = trust_weights(outcome, thinking, step=0, anneal_steps=10, skip_uniform=None)
        assert tw.gamma.tolist() == pytest.approx([math.exp(-0.5), 1.0, 1.0])
        assert tw.skipped.tolist() == [False, False, False]


class TestTrustWeightsUniformRule:
    kw = {"skip_uniform": (0.1, 0.9)}

    @pytest.mark.parametrize("outcome", [[1, 1, 1, 1], [0.9, 0.95, 1, 0.9], [0, 0, 0, 0], [0.1, 0, 0.05, 0.1]])
    def test_uniform_groups_get_zero_weight(self, outcome):
        tw = weights(outcome, [0.5, 0.7, 0.9, 0.1], **self.kw)
        assert tw.skipped.item()
        assert tw.weight.item() == 0.0

    def test_mixed_group_is_not_skipped(self):
        tw = weights([1, 0.5, 1, 1], [0.5, 0.7, 0.9, 0.1], **self.kw)
        assert not tw.skipped.item()
        # mu_c = mean(0.5, 0.7, 0.9, 0.1) = 0.55 over all four (0.5 >= threshold) -> no incorrect side
        assert tw.weight.item() == pytest.approx(0.3)

    def test_reference_mode_binary_task_never_distrusts(self):
        # In reference mode wrong answers of a binary task are not judged and score a real 0, so mu_w = 0.
        outcome = T([[1.0, 0.0, 1.0, 0.0]])
        query = judge_query_mask(outcome, query_threshold=0.2, skip_uniform=(0.1, 0.9))
        assert query.tolist() == [[True, False, True, False]]
        thinking = torch.where(query, T([[0.1, nan, 0.3, nan]]), torch.zeros_like(outcome))
        tw = trust_weights(outcome, thinking, step=0, anneal_steps=12000, skip_uniform=(0.1, 0.9))
        assert tw.mu_incorrect.item() == 0.0
        assert tw.gamma.item() == 1.0

    def test_reference_mode_graded_task_can_distrust(self):
        # OCR-like graded outcomes: the 0.3 answer is judged (>= 0.2) but incorrect (< 0.5)
        outcome = T([[0.8, 0.3, 0.0, 0.6]])
        query = judge_query_mask(outcome, query_threshold=0.2, skip_uniform=(0.1, 0.9))
        assert query.tolist() == [[True, True, False, True]]
        thinking = torch.where(query, T([[0.2, 1.0, nan, 0.4]]), torch.zeros_like(outcome))
        # mu_c = (0.2 + 0.4) / 2 = 0.3; mu_w = (1.0 + 0.0) / 2 = 0.5 -> gamma = exp(-0.2)
        tw = trust_weights(outcome, thinking, step=0, anneal_steps=12000, skip_uniform=(0.1, 0.9))
        assert tw.gamma.item() == pytest.approx(math.exp(-0.2))


class TestJudgeQueryMask:
    def test_paper_mode_judges_everything(self):
        outcome = T([[1, 1, 1], [0, 0, 0], [1, 0, 0.3]])
        assert judge_query_mask(outcome).all()

    def test_reference_mode(self):
        outcome = T([[1, 0.5, 0.1, 0], [0.95, 1, 0.9, 1], [0, 0.05, 0.1, 0], [0.2, 0.19, 0.9, 0.05]])
        mask = judge_query_mask(outcome, query_threshold=0.2, skip_uniform=(0.1, 0.9))
        assert mask.tolist() == [
            [True, True, False, False],  # below 0.2 not judged
            [False, False, False, False],  # all >= 0.9: uniform
            [False, False, False, False],  # all <= 0.1: uniform
            [True, False, True, False],  # 0.2 is inclusive
        ]

    def test_uniform_groups_rule(self):
        outcome = T([[1, 1], [0, 0], [1, 0], [nan, 0]])
        assert uniform_groups(outcome, (0.1, 0.9)).tolist() == [True, True, False, True]
        assert uniform_groups(outcome, None).tolist() == [False] * 4


class TestValidation:
    def test_shape_mismatch_is_an_error(self):
        with pytest.raises(ValueError, match="shape"):
            trust_weights(T([[1.0, 0.0]]), T([[0.1, 0.2, 0.3]]), step=0, anneal_steps=10)

    def test_non_positive_horizon_is_an_error(self):
        with pytest.raises(ValueError, match="anneal_steps"):
            anneal_scale(0, alpha=0.3, anneal_steps=0)


def _trl_group_advantages(outcome, thinking, weight):
    """TRL 1.16's `sum_then_normalize` with `scale_rewards="group"` (GRPOTrainer._generate_and_score_completions):
    (r - mean r) / (std r + 1e-4) per group, r the outcome plus the thinking column w * t."""
    from trl.trainer.utils import nanstd

    rewards = outcome + weight.unsqueeze(1) * thinking
    return (rewards - rewards.mean(dim=1, keepdim=True)) / (nanstd(rewards, dim=1).unsqueeze(1) + 1e-4)


def test_all_wrong_group_advantages_follow_the_judge_and_ignore_alpha_and_gamma():
    # Issue 19: in an all-wrong group under `paper` mode the rewards are w * t_i, so the advantages are
    # (t_i - mean t) / std t: ordered by the judge's score, whatever alpha, the annealing or gamma (w > 0).
    outcome, thinking = T([[0.0, 0.0, 0.0, 0.0]]), T([[0.0, 1 / 3, 1.0, 2 / 3]])
    t = thinking[0]
    limit = (t - t.mean()) / t.std()  # what every positive weight tends to
    for alpha, step in ((0.3, 0), (0.05, 0), (1.0, 70), (0.3, 99)):
        tw = trust_weights(outcome, thinking, step=step, alpha=alpha, anneal_steps=100, skip_uniform=None)
        assert tw.gamma.item() == 1.0  # no correct side: nothing to distrust
        for gamma in (1.0, 0.5, 0.1):  # any gamma would scale w the same way
            w = (tw.weight * gamma).item()
            adv = _trl_group_advantages(outcome, thinking, tw.weight * gamma)[0]
            assert adv.argsort().tolist() == [0, 1, 3, 2]  # the judge's order
            # alpha, the annealing and gamma enter only through TRL's eps: (t - mean t) / (std t + 1e-4 / w).
            torch.testing.assert_close(adv, (t - t.mean()) / (t.std() + 1e-4 / w), atol=1e-4, rtol=1e-4)
            assert (adv - limit).abs().max() <= limit.abs().max() * 1e-4 / (w * t.std()) + 1e-5
    # Without the thinking column the group has no signal; `reference` mode skips it (weight 0): no signal either.
    assert _trl_group_advantages(outcome, thinking, T([0.0]))[0].abs().max() == 0
    skipped = trust_weights(outcome, thinking, step=0, anneal_steps=100, skip_uniform=(0.1, 0.9))
    assert skipped.weight.item() == 0.0


def test_mixed_group_advantages_do_depend_on_alpha():
    # The contrast that makes the test above meaningful: with a correct side, alpha changes the advantages.
    outcome, thinking = T([[1.0, 0.0, 0.0, 0.0]]), T([[0.3, 1.0, 0.0, 0.7]])
    small, large = (
        _trl_group_advantages(outcome, thinking, trust_weights(
            outcome, thinking, step=0, alpha=alpha, anneal_steps=100, skip_uniform=None).weight)[0]
        for alpha in (0.05, 1.0)
    )  # fmt: skip
    assert (small - large).abs().max() > 0.1
