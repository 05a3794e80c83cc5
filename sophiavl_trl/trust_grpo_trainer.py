# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch
from accelerate.utils import gather
from transformers import TrainerCallback
from trl import GRPOTrainer

from sophiavl_trl.trust import anneal_scale, judge_query_mask, trust_weights
from sophiavl_trl.trust_grpo_config import TrustGRPOConfig


logger = logging.getLogger(__name__)

THINKING_COLUMN = "thinking"


def _thinking_column(prompts: list, **kwargs) -> list[None]:
    """Reserves a reward column (as TRL appends an environment's) that `_finish_judging` fills with the weighted
    thinking scores once every process's outcomes are known: TRL's reward sums, logging and checks stay unchanged."""
    return [None] * len(prompts)


@dataclass
class _Judging:
    """A batch whose outcome rewards are known (gathered) and whose judge requests are in flight."""

    rewards_per_func: torch.Tensor  # gathered, on the device; the CPU tensors below are for the whole batch
    outcome: torch.Tensor
    query: torch.Tensor  # who is judged
    thinking: torch.Tensor  # the scores of those not judged (0 or NaN)
    local: slice  # this process's completions
    local_query: list[int]  # this process's completions that are judged, local indices
    future: Future  # -> (scores, seconds, exception) of `_score_thinking`


class _OptimizerTimer(TrainerCallback):
    """Logs `timing/optimizer`: the optimizer step (under DeepSpeed it runs inside backward and is not seen here)."""

    def __init__(self, metrics: dict) -> None:
        self.metrics, self.start = metrics, None

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_optimizer_step(self, args, state, control, **kwargs):
        if self.start is not None:
            self.metrics["train"]["timing/optimizer"].append(time.perf_counter() - self.start)
            self.start = None


class TrustGRPOTrainer(GRPOTrainer):
    r"""
    GRPO with SophiaVL-R1's Trust-GRPO thinking reward ([arXiv 2505.17018](https://huggingface.co/papers/2505.17018)).

    What changes compared with [`trl.GRPOTrainer`]: after the outcome rewards are computed and gathered, the
    completions that the `trust_mode` calls for are scored by `thinking_reward` (each process scores its own share),
    the scores are gathered, and each group's trust-weighted, annealed thinking score is added to the rewards as one
    more reward column named `thinking` (weight 1) before TRL computes the advantages. The judge requests go out as soon
    as the completions and their outcome rewards are known, so the judge works while the old and reference log-probs
    are computed (`judge_overlap`). Every phase's time is logged as `timing/*`. The private `GRPOTrainer` methods
    this touches are listed in the README ("TRL and vLLM internals used").

    Args:
        args ([`TrustGRPOConfig`], *optional*): training configuration, including the trust and judge settings.
        thinking_reward (`Callable`, *optional*):
            Scores the thinking of completions in [0, 1]. Called like a TRL reward function (keyword arguments
            `prompts`, `completions`, `completion_ids`, the dataset columns and `trainer_state`), but only on the
            completions that need a score, from a worker thread; returns one float or None (no score) per completion;
            may be async. If it has a `check_server()` method, that is called before the model loads (see
            `judge_check_on_start`) and should raise when the judge is unreachable. For example
            [`~sophiavl_trl.rewards.ThinkingReward`] (the vLLM judge), a local model, or any function. `None` trains
            plain GRPO: rewards and advantages are exactly `GRPOTrainer`'s.

    The other arguments are [`trl.GRPOTrainer`]'s; `reward_funcs` are the outcome rewards (e.g. `accuracy_reward`).
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
        if args.judge_check_on_start and callable(getattr(thinking_reward, "check_server", None)):
            thinking_reward.check_server()  # fail before the model is loaded, not an hour into training

        super().__init__(model=model, reward_funcs=reward_funcs, args=args, **kwargs)
        # State carried between TRL's hooks, within one call of `_generate_and_score_completions` or `training_step`.
        self._batch_inputs: list[dict] | None = None  # the dataset rows, for the judge requests sent from `_generate`
        self._judging: _Judging | None = None  # from `_generate` to `_calculate_rewards`
        self._generated_at: float | None = None  # when `_generate` returned: the log-prob pass starts
        self._sync_seconds = 0.0  # weight sync, inside `_generate`
        self._prepare_seconds = 0.0  # `_prepare_inputs`, inside `training_step`
        self._forward_backward_seconds = 0.0  # summed over the gradient accumulation steps
        self._failed_judge_steps = 0  # consecutive steps in which every judge request failed
        self._judge_pool = None if thinking_reward is None else ThreadPoolExecutor(1, "thinking-judge")
        self.thinking_reward = thinking_reward
        # The reward that splits correct from incorrect: `correctness_reward`, else accuracy_reward, else the first.
        names, correctness = self.reward_func_names, args.correctness_reward
        if correctness is not None and correctness not in names:
            raise ValueError(f"correctness_reward={correctness!r} is not among the reward functions {names}.")
        correctness = "accuracy_reward" if correctness is None else correctness
        self._correctness_index = names.index(correctness) if correctness in names else 0

        if self.use_vllm:
            from sophiavl_trl.vllm_colocate import patch_cpu_weight_sync

            patch_cpu_weight_sync(self)
            self.vllm_generation.sync_weights = self._timed_sync(self.vllm_generation.sync_weights)
        self.add_callback(_OptimizerTimer(self._metrics))
        self._group_stream_by_modality()
        if thinking_reward is not None:
            self.reward_funcs.append(_thinking_column)
            self.reward_func_names.append(THINKING_COLUMN)
            self.reward_processing_classes.append(None)
            self.reward_weights = torch.cat([self.reward_weights, torch.ones(1)])

    def _timed_sync(self, sync: Callable) -> Callable:
        @functools.wraps(sync)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return sync(*args, **kwargs)
            finally:
                self._sync_seconds += time.perf_counter() - start

        return timed

    def _modality_sampler(self, dataset, generations: int, prompts_per_batch: int, **kwargs):
        """TRL 1.16 cannot generate for a batch mixing image and text-only prompts: keep every batch to one modality.
        Returns None (TRL's sampler) when `dataset` has one modality or no `data_type` column."""
        from sophiavl_trl.data.sampler import ModalityGroupedRepeatSampler, modality_labels

        labels = modality_labels(dataset)
        if labels is None or len(set(labels)) < 2:
            return None
        return ModalityGroupedRepeatSampler(
            data_source=dataset, mini_repeat_count=generations, batch_size=max(1, prompts_per_batch // generations),
            seed=self.args.seed, modalities=labels, **kwargs,
        )  # fmt: skip

    def _get_train_sampler(self, dataset=None):
        dataset = self.train_dataset if dataset is None else dataset
        # One generation batch: all processes, all `steps_per_generation`.
        sampler = self._modality_sampler(
            dataset, self.num_generations, self.args.generation_batch_size, shuffle=self.shuffle_dataset,
            repeat_count=self.num_iterations * self.args.steps_per_generation,
        )  # fmt: skip
        return sampler or super()._get_train_sampler(dataset)

    def _get_eval_sampler(self, eval_dataset):
        prompts = self.args.per_device_eval_batch_size * self.accelerator.num_processes  # one batch, all processes
        sampler = self._modality_sampler(eval_dataset, self.num_generations_eval, prompts, shuffle=False)
        return sampler or super()._get_eval_sampler(eval_dataset)

    def _group_stream_by_modality(self) -> None:
        """Streaming data with a `data_type` column: the same one-modality generation batches as the sampler."""
        from datasets import IterableDataset

        from sophiavl_trl.data.sampler import group_stream_by_modality

        dataset = self.train_dataset
        if not isinstance(dataset, IterableDataset) or "data_type" not in (dataset.column_names or []):
            return
        if self.shuffle_dataset:
            dataset = dataset.shuffle(seed=self.args.seed)
        self.train_dataset = group_stream_by_modality(dataset, self.args.generation_batch_size // self.num_generations)
        self.shuffle_dataset = False  # shuffled before the grouping: TRL's shuffle after it would mix modalities again

    # `timing/forward_backward`: the training step less `_prepare_inputs` (generation, rewards, advantages), i.e. the
    # loss forward and backward, and under DeepSpeed the optimizer step (it runs inside backward).
    def _prepare_inputs(self, generation_batch):
        start = time.perf_counter()
        try:
            return super()._prepare_inputs(generation_batch)
        finally:
            self._prepare_seconds += time.perf_counter() - start

    def training_step(self, model, inputs, num_items_in_batch):
        self._prepare_seconds, start = 0.0, time.perf_counter()
        loss = super().training_step(model, inputs, num_items_in_batch)
        self._forward_backward_seconds += time.perf_counter() - start - self._prepare_seconds
        if self._step % self.current_gradient_accumulation_steps == 0:  # where TRL logs `step_time`
            self._metrics["train"]["timing/forward_backward"].append(self._forward_backward_seconds)
            self._forward_backward_seconds = 0.0
        return loss

    # ----------------------------------------------------------------------------------------------------------------
    # The judge works while the log-probs are computed: `_generate` (after the completions are decoded) computes the
    # outcome rewards and sends the judge requests; `_calculate_rewards` (after the log-prob pass) collects the scores.
    # ----------------------------------------------------------------------------------------------------------------
    def _generate_and_score_completions(self, inputs):
        self._batch_inputs = inputs  # the dataset rows, for the reward keywords of the requests sent from `_generate`
        # With each completion, what `sophiavl-trl judge-records` joins on: the question and the data set row.
        for column, key in (("question", "problem"), ("source", "source"), ("row_index", "row_index")):
            if all(key in row for row in inputs):
                self._log_completion_extra(column, [row[key] for row in inputs])
        try:
            return super()._generate_and_score_completions(inputs)
        finally:
            self._batch_inputs = self._judging = self._generated_at = None

    def _generate(self, prompts):
        mode = "train" if self.model.training else "eval"
        self._sync_seconds, start = 0.0, time.perf_counter()
        output = super()._generate(prompts)
        self._metrics[mode]["timing/generation"].append(time.perf_counter() - start - self._sync_seconds)
        if self.use_vllm:
            self._metrics[mode]["timing/weight_sync"].append(self._sync_seconds)
        inputs = self._batch_inputs
        overlap = self.args.judge_overlap and self.rollout_func is None and inputs is not None
        if overlap and self.thinking_reward is not None and mode == "train":
            _, completion_ids, _, completions, *_ = output
            self._judging = self._start_judging(inputs, prompts, completions, completion_ids)
        self._generated_at = time.perf_counter()
        return output

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        mode = "train" if self.model.training else "eval"
        if self._generated_at is not None:  # the old and reference log-prob pass (and the batch's tensors) since then
            self._metrics[mode]["timing/logprobs"].append(time.perf_counter() - self._generated_at)
        judging, self._judging, self._generated_at = self._judging, None, None
        if judging is None:
            # Evaluation scores the outcome only (the released code validates with the rule reward, without the
            # judge); the thinking column stays NaN, which TRL's nansum adds as 0.
            if self.thinking_reward is None or mode == "eval":
                return self._outcome_rewards(mode, inputs, prompts, completions, completion_ids_list)
            judging = self._start_judging(inputs, prompts, completions, completion_ids_list)
        return self._finish_judging(judging)

    def _outcome_rewards(self, mode: str, *args) -> torch.Tensor:
        start = time.perf_counter()
        rewards_per_func = super()._calculate_rewards(*args)
        self._metrics[mode]["timing/outcome_rewards"].append(time.perf_counter() - start)
        return rewards_per_func

    def _start_judging(self, inputs, prompts, completions, completion_ids_list) -> _Judging:
        """Compute the (gathered) outcome rewards, decide who is judged, and send this process's requests."""
        args: TrustGRPOConfig = self.args
        rewards_per_func = self._outcome_rewards("train", inputs, prompts, completions, completion_ids_list)
        # The requests need the judged indices on the host: one copy of the gathered outcomes, and the (tiny) trust
        # math stays on the CPU from here, with no further device syncs.
        outcome = torch.nan_to_num(rewards_per_func[:, self._correctness_index].float().cpu(), nan=0.0)
        query = judge_query_mask(
            outcome.view(-1, self.num_generations), query_threshold=args.judge_query_threshold,
            skip_uniform=args.skip_uniform,
        ).view(-1)  # fmt: skip
        # Not judged: a real 0 below the query threshold (the released code's choice), NaN in skipped groups.
        thinking = torch.full_like(outcome, float("nan"))
        if args.judge_query_threshold is not None:
            thinking[~query & (outcome < args.judge_query_threshold)] = 0.0
        rank, n_local = self.accelerator.process_index, len(prompts)
        local = slice(rank * n_local, (rank + 1) * n_local)  # TRL gathers the processes' completions in rank order
        local_query = query[local].nonzero().view(-1).tolist()
        future = self._judge_pool.submit(
            self._score_thinking, inputs, prompts, completions, completion_ids_list, local_query
        )
        return _Judging(rewards_per_func, outcome, query, thinking, local, local_query, future)

    def _finish_judging(self, judging: _Judging) -> torch.Tensor:
        """Wait for this process's scores, share them, and fill the trust-weighted thinking column."""
        args: TrustGRPOConfig = self.args
        rewards_per_func, G = judging.rewards_per_func, self.num_generations
        wait_start = time.perf_counter()
        local_scores, latency, error = judging.future.result()  # bounded: the judge client has a batch deadline
        waited = time.perf_counter() - wait_start

        local_thinking = judging.thinking[judging.local].clone()
        local_thinking[judging.local_query] = torch.tensor(local_scores, dtype=torch.float32)
        # One gather and one host copy: every process's scores, judge seconds, wait, and whether its judge raised.
        row = torch.cat([local_thinking, torch.tensor([latency, waited, float(error is not None)])])
        rows = gather(row.to(rewards_per_func.device).unsqueeze(0)).cpu()
        thinking, (latency, waited, failed) = rows[:, :-3].reshape(-1), rows[:, -3:].T
        if failed.any():  # raise on every process at once: a lone raise would leave the others hanging
            cause = f": {error!r}" if error is not None else " (its error is in that process's log)"
            ranks = failed.nonzero().view(-1).tolist()
            raise RuntimeError(f"thinking_reward raised on process(es) {ranks}{cause}") from error

        # Trust weights per group, and the weighted thinking column (NaN scores add nothing).
        step = self.state.global_step
        anneal_steps = args.trust_anneal_steps or max(self.state.max_steps, 1)
        tw = trust_weights(
            judging.outcome.view(-1, G), thinking.view(-1, G), step=step, alpha=args.trust_alpha,
            anneal_steps=anneal_steps, correct_threshold=args.trust_correct_threshold, skip_uniform=args.skip_uniform,
        )  # fmt: skip
        weight = tw.weight.repeat_interleave(G)
        rewards_per_func[:, -1] = (weight * thinking).to(rewards_per_func.device)  # NaN: TRL's nansum adds 0

        self._log_trust(judging.query, thinking, tw, step, anneal_steps)
        self._metrics["train"]["timing/judge"].append(latency.max().item())
        self._metrics["train"]["timing/judge_wait"].append(waited.max().item())
        # Columns of TRL's completions table, this process's rows.
        columns = {"outcome": judging.outcome, "thinking_score": thinking, "trust_weight": weight}
        for name, values in columns.items():
            self._log_completion_extra(name, values[judging.local].tolist())
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
            if inspect.isawaitable(result):  # on TRL's event loop when it runs one (async outcome rewards)
                loop = getattr(self, "async_loop", None)  # set by TRL only then
                result = asyncio.run_coroutine_threadsafe(result, loop).result() if loop else asyncio.run(result)
            scores = [float("nan") if s is None else float(s) for s in result]
            if len(scores) != len(indices):
                raise ValueError(f"thinking_reward returned {len(scores)} scores for {len(indices)} completions")
        except Exception as exc:  # surfaced on every process by the caller
            logger.exception("thinking_reward failed")
            return [float("nan")] * len(indices), time.perf_counter() - start, exc
        return scores, time.perf_counter() - start, None

    def _log_trust(self, query, thinking, tw, step, anneal_steps) -> None:
        """Per-step metrics; computed from gathered CPU tensors, so identical on every process and free of syncs."""
        args: TrustGRPOConfig = self.args
        n_queried, failures = int(query.sum()), int((query & torch.isnan(thinking)).sum())
        judged, active = thinking[query & ~torch.isnan(thinking)], ~tw.skipped
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
        }
        for name, value in metrics.items():
            self._metrics["train"][name].append(value)

        if failures:
            logger.warning(
                "Thinking judge: %d of %d requests failed at step %d (scored as missing).", failures, n_queried, step
            )
        self._failed_judge_steps = self._failed_judge_steps + 1 if n_queried and failures == n_queried else 0
        if args.judge_max_failed_steps and self._failed_judge_steps >= args.judge_max_failed_steps:
            raise RuntimeError(
                f"Every thinking-judge request failed in {self._failed_judge_steps} consecutive steps (last: step "
                f"{step}). Check that the judge ({self.thinking_reward!r}) is up, or raise judge_max_failed_steps (0 "
                "never stops)."
            )
