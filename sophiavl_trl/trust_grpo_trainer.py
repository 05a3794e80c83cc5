# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any

import torch
from accelerate.utils import gather
from trl import GRPOTrainer

from sophiavl_trl.trust import anneal_scale, judge_query_mask, trust_weights
from sophiavl_trl.trust_grpo_config import TrustGRPOConfig


logger = logging.getLogger(__name__)

THINKING_COLUMN = "thinking"


class _ThinkingColumn:
    """Placeholder reward function that reserves TRL's reward column for the weighted thinking score.

    It returns None (NaN) for every completion; `TrustGRPOTrainer._calculate_rewards` fills the column once the
    outcome rewards of every process are known. Appending a column the way TRL appends an environment's reward keeps
    TRL's own reward summation, logging and shape checks unchanged.
    """

    __name__ = THINKING_COLUMN

    def __call__(self, prompts: list, **kwargs) -> list[None]:
        return [None] * len(prompts)


class TrustGRPOTrainer(GRPOTrainer):
    r"""
    GRPO with SophiaVL-R1's Trust-GRPO thinking reward ([arXiv 2505.17018](https://huggingface.co/papers/2505.17018)).

    What changes compared with [`trl.GRPOTrainer`]: after the outcome rewards are computed and gathered, the
    completions that the `trust_mode` calls for are scored by `thinking_reward` (each process scores its own share),
    the scores are gathered, and each group's trust-weighted, annealed thinking score is added to the rewards as one
    more reward column named `thinking` (weight 1) before TRL computes the advantages. Only `_calculate_rewards` and
    the train sampler (modality-homogeneous batches for mixed image + text data) are overridden.

    Args:
        model, reward_funcs, train_dataset, eval_dataset, processing_class, ...:
            As in [`trl.GRPOTrainer`]. `reward_funcs` are the outcome rewards (e.g. `accuracy_reward`,
            `format_reward`).
        args ([`TrustGRPOConfig`], *optional*):
            Training configuration, including the trust and judge settings.
        thinking_reward (`Callable`, *optional*):
            Scores the thinking of completions in [0, 1]. Called like a TRL reward function (keyword arguments
            `prompts`, `completions`, `completion_ids`, the dataset columns and `trainer_state`), but only on the
            completions that need a score; returns one float or None (no score) per completion; may be async. For
            example [`~sophiavl_trl.rewards.ThinkingReward`] (the vLLM judge), a local model, or any function.
            `None` trains plain GRPO: rewards and advantages are exactly `GRPOTrainer`'s.
        **kwargs:
            Passed to [`trl.GRPOTrainer`].
    """

    _tag_names = ["trl", "grpo", "trust-grpo", "sophiavl-r1"]
    _name = "TrustGRPO"

    def __init__(
        self,
        model: Any,
        reward_funcs: Any = None,
        args: TrustGRPOConfig | None = None,
        *,
        thinking_reward: Callable | None = None,
        **kwargs: Any,
    ):
        if args is None:
            args = TrustGRPOConfig("TrustGRPO")
        elif not isinstance(args, TrustGRPOConfig):
            raise TypeError(f"TrustGRPOTrainer needs a TrustGRPOConfig, got {type(args).__name__}.")
        if thinking_reward is not None and not callable(thinking_reward):
            raise TypeError(f"thinking_reward must be callable or None, got {type(thinking_reward).__name__}.")
        # Fail before the model is loaded, not an hour into training.
        check_server = getattr(thinking_reward, "check_server", None) or getattr(
            getattr(thinking_reward, "client", None), "check_server", None
        )
        if args.judge_check_on_start and callable(check_server):
            check_server()

        super().__init__(model=model, reward_funcs=reward_funcs, args=args, **kwargs)
        if getattr(self, "vllm_generation", None) is not None:
            from sophiavl_trl.vllm_colocate import prepare_colocated_sync

            prepare_colocated_sync(self.vllm_generation)  # CPUs repack vLLM's weights: sync through vLLM's reload

        self.thinking_reward = thinking_reward
        self._correctness_index = self._find_correctness_index(args.correctness_reward)
        self._failed_judge_steps = 0
        if thinking_reward is not None:
            self.reward_funcs.append(_ThinkingColumn())
            self.reward_func_names.append(THINKING_COLUMN)
            self.reward_processing_classes.append(None)
            self.reward_weights = torch.cat([self.reward_weights, torch.ones(1)])

    def _find_correctness_index(self, name: str | None) -> int:
        names = self.reward_func_names
        if name is not None:
            if name not in names:
                raise ValueError(f"correctness_reward={name!r} is not among the reward functions {names}.")
            return names.index(name)
        return names.index("accuracy_reward") if "accuracy_reward" in names else 0

    def _get_train_sampler(self, dataset=None):
        from sophiavl_trl.data.sampler import ModalityGroupedRepeatSampler, modality_labels

        dataset = self.train_dataset if dataset is None else dataset
        labels = modality_labels(dataset)
        if labels is None or len(set(labels)) < 2:
            return super()._get_train_sampler(dataset)
        # TRL 1.16 cannot generate for a batch mixing image and text-only prompts: make every generation batch
        # (all processes, all steps_per_generation) hold a single modality.
        return ModalityGroupedRepeatSampler(
            data_source=dataset,
            mini_repeat_count=self.num_generations,
            batch_size=self.args.generation_batch_size // self.num_generations,
            repeat_count=self.num_iterations * self.args.steps_per_generation,
            shuffle=self.shuffle_dataset,
            seed=self.args.seed,
            modalities=labels,
        )

    def _get_eval_sampler(self, eval_dataset):
        from sophiavl_trl.data.sampler import ModalityGroupedRepeatSampler, modality_labels

        labels = modality_labels(eval_dataset)
        if labels is None or len(set(labels)) < 2:
            return super()._get_eval_sampler(eval_dataset)
        # One evaluation batch (all processes) holds this many prompts; keep each of them single-modality.
        prompts_per_batch = self.args.per_device_eval_batch_size * self.accelerator.num_processes
        return ModalityGroupedRepeatSampler(
            data_source=eval_dataset,
            mini_repeat_count=self.num_generations_eval,
            batch_size=max(1, prompts_per_batch // self.num_generations_eval),
            shuffle=False,
            seed=self.args.seed,
            modalities=labels,
        )

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        mode = "train" if self.model.training else "eval"
        # Evaluation scores the outcome only (the released code validates with the rule reward, without the judge);
        # the thinking column stays NaN, which TRL's nansum adds as 0.
        if self.thinking_reward is None or mode == "eval":
            return rewards_per_func

        args: TrustGRPOConfig = self.args
        num_generations = self.num_generations if mode == "train" else self.num_generations_eval
        device = rewards_per_func.device
        n_local = len(prompts)
        local = slice(self.accelerator.process_index * n_local, (self.accelerator.process_index + 1) * n_local)

        # 1. Outcomes of the whole batch are known on every process (TRL gathered them): decide who is judged.
        outcome = torch.nan_to_num(rewards_per_func[:, self._correctness_index], nan=0.0)
        grouped_outcome = outcome.view(-1, num_generations)
        query = judge_query_mask(
            grouped_outcome, query_threshold=args.judge_query_threshold, skip_uniform=args.skip_uniform
        ).view(-1)
        # Not judged: a real 0 below the query threshold (the released code's choice), NaN in skipped groups.
        thinking = torch.full_like(outcome, float("nan"))
        if args.judge_query_threshold is not None:
            thinking[~query & (outcome < args.judge_query_threshold)] = 0.0

        # 2. Each process scores its own share, then every process gets every score.
        local_query = query[local].nonzero().view(-1).tolist()
        local_scores, latency, error = self._score_thinking(
            inputs, prompts, completions, completion_ids_list, local_query
        )
        local_thinking = thinking[local].clone()
        if local_query:
            local_thinking[local_query] = torch.tensor(local_scores, dtype=torch.float32, device=device)
        stats = torch.tensor([latency, float(error is not None)], device=device)
        thinking = gather(local_thinking)
        stats = gather(stats.unsqueeze(0)).view(-1, 2)
        if stats[:, 1].any():  # raise on every process at once: a lone raise would leave the others hanging
            failed = stats[:, 1].nonzero().view(-1).tolist()
            raise RuntimeError(f"thinking_reward raised on process(es) {failed}: {error!r}") from error

        # 3. Trust weights per group, and the weighted thinking column (NaN scores add nothing).
        step = self.state.global_step
        anneal_steps = args.trust_anneal_steps or max(self.state.max_steps, 1)
        grouped_thinking = thinking.view(-1, num_generations)
        tw = trust_weights(
            grouped_outcome,
            grouped_thinking,
            step=step,
            alpha=args.trust_alpha,
            anneal_steps=anneal_steps,
            correct_threshold=args.trust_correct_threshold,
            skip_uniform=args.skip_uniform,
        )
        weight = tw.weight.repeat_interleave(num_generations)
        rewards_per_func[:, -1] = weight * thinking  # NaN stays NaN: TRL's nansum adds 0 for it

        self._log_trust(mode, query, thinking, tw, stats[:, 0], step, anneal_steps)
        self._log_completion_extra("outcome", outcome[local].tolist())
        self._log_completion_extra("thinking_score", local_thinking.tolist())
        self._log_completion_extra("trust_weight", weight[local].tolist())
        return rewards_per_func

    def _score_thinking(self, inputs, prompts, completions, completion_ids_list, indices):
        """Call `thinking_reward` on the local completions at `indices`. Returns (scores, seconds, exception)."""
        if not indices:
            return [], 0.0, None
        keys = [key for key in inputs[0] if key not in ("prompt", "completion", "completion_ids")]
        kwargs = {key: [inputs[i][key] for i in indices] for key in keys}
        start = time.perf_counter()
        try:
            result = self.thinking_reward(
                prompts=[prompts[i] for i in indices],
                completions=[completions[i] for i in indices],
                completion_ids=[completion_ids_list[i] for i in indices],
                trainer_state=self.state,
                **kwargs,
            )
            if inspect.isawaitable(result):
                result = self._run_coroutine(result)
            scores = [float("nan") if s is None else float(s) for s in result]
            if len(scores) != len(indices):
                raise ValueError(f"thinking_reward returned {len(scores)} scores for {len(indices)} completions")
        except Exception as exc:  # surfaced on every process by the caller
            logger.exception("thinking_reward failed")
            return [float("nan")] * len(indices), time.perf_counter() - start, exc
        return scores, time.perf_counter() - start, None

    def _run_coroutine(self, coro):
        loop = getattr(self, "async_loop", None)
        if loop is not None:
            return asyncio.run_coroutine_threadsafe(coro, loop).result()
        return asyncio.run(coro)

    def _log_trust(self, mode, query, thinking, tw, latencies, step, anneal_steps) -> None:
        """Per-step metrics; computed from gathered tensors, so identical on every process."""
        args: TrustGRPOConfig = self.args
        n_queried = int(query.sum())
        failures = int((query & torch.isnan(thinking)).sum())
        judged = thinking[query & ~torch.isnan(thinking)]
        active = ~tw.skipped
        metrics = {
            "trust/frac_groups_skipped": tw.skipped.float().mean().item(),
            "trust/frac_judged": query.float().mean().item(),
            "trust/judge_calls_saved": float(query.numel() - n_queried),
            "trust/judge_failures": float(failures),
            "trust/thinking_score_mean": judged.mean().item() if judged.numel() else float("nan"),
            "trust/gamma_mean": tw.gamma[active].mean().item() if active.any() else float("nan"),
            "trust/frac_gamma_below_1": (tw.gamma[active] < 1).float().mean().item() if active.any() else 0.0,
            "trust/weight_mean": tw.weight.mean().item(),
            "trust/anneal_scale": anneal_scale(step, alpha=args.trust_alpha, anneal_steps=anneal_steps),
            "trust/mu_correct": torch.nanmean(tw.mu_correct).item(),
            "trust/mu_incorrect": torch.nanmean(tw.mu_incorrect).item(),
            "trust/judge_latency_s": latencies.max().item(),
        }
        for name, value in metrics.items():
            self._metrics[mode][name].append(value)

        if failures:
            logger.warning(
                "Thinking judge: %d of %d requests failed at step %d (scored as missing).", failures, n_queried, step
            )
        if n_queried and failures == n_queried:
            self._failed_judge_steps += 1
            if args.judge_max_failed_steps and self._failed_judge_steps >= args.judge_max_failed_steps:
                raise RuntimeError(
                    f"Every thinking-judge request failed in {self._failed_judge_steps} consecutive steps (last: step "
                    f"{step}). Check that the judge ({self.thinking_reward!r}) is up, or raise "
                    "judge_max_failed_steps (0 never stops)."
                )
        else:
            self._failed_judge_steps = 0
