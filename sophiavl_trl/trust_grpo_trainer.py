# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from accelerate.utils import gather
from datasets import IterableDataset
from transformers import TrainerCallback
from trl import GRPOTrainer

from sophiavl_trl.data.sampler import ModalityGroupedRepeatSampler, group_stream_by_modality, modality_labels
from sophiavl_trl.trust import anneal_scale, judge_query_mask, trust_weights
from sophiavl_trl.trust_grpo_config import TrustGRPOConfig


logger = logging.getLogger(__name__)


def _thinking_column(prompts: list, **kwargs) -> list[None]:
    """The `thinking` reward column (appended as TRL appends an environment's): `_finish_judging` fills it once every
    process's outcomes are known, so TRL's reward sums, logging and checks stay unchanged."""
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
        self.metrics = metrics

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.metrics["train"]["timing/optimizer"].append(time.perf_counter() - self.start)


class TrustGRPOTrainer(GRPOTrainer):
    r"""
    GRPO with SophiaVL-R1's Trust-GRPO thinking reward ([arXiv 2505.17018](https://huggingface.co/papers/2505.17018)).

    After the outcome rewards are computed and gathered, the completions that the `trust_mode` calls for are scored by
    `thinking_reward` (each process scores its own share, while the old and reference log-probs are computed:
    `judge_overlap`), and each group's trust-weighted, annealed thinking score is added as one more reward column,
    `thinking` (weight 1), before TRL computes the advantages (docs/trust-grpo.md). Every phase's time is logged as
    `timing/*`. The private `GRPOTrainer` methods this touches are listed in the README ("TRL and vLLM internals used").

    Args:
        args ([`TrustGRPOConfig`], *optional*): training configuration, including the trust and judge settings.
        thinking_reward (`Callable`, *optional*):
            Scores the thinking of completions in [0, 1]: called like a TRL reward function (`prompts`, `completions`,
            `completion_ids`, the dataset columns, `trainer_state`), only on the completions that need a score, from a
            worker thread; returns one float or None (no score) each; may be async. A `check_server()` method, if any,
            is called before the model loads (`judge_check_on_start`) and should raise when the judge is unreachable.
            E.g. [`~sophiavl_trl.rewards.ThinkingReward`] (the vLLM judge). `None` trains plain GRPO, exactly.

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
        args = TrustGRPOConfig("TrustGRPO") if args is None else args
        if not isinstance(args, TrustGRPOConfig) or not (thinking_reward is None or callable(thinking_reward)):
            raise TypeError(
                "TrustGRPOTrainer needs a TrustGRPOConfig and a callable or None thinking_reward, got "
                f"{type(args).__name__} and {type(thinking_reward).__name__}."
            )
        if args.judge_check_on_start and callable(getattr(thinking_reward, "check_server", None)):
            thinking_reward.check_server()  # fail before the model is loaded, not an hour into training

        super().__init__(model=model, reward_funcs=reward_funcs, args=args, **kwargs)
        # Carried between TRL's hooks within one `_generate_and_score_completions` or `training_step`.
        self._batch_inputs: list[dict] | None = None  # the dataset rows, for the judge requests sent from `_generate`
        self._judging: _Judging | None = None  # from `_generate` to `_calculate_rewards`
        self._generated_at: float | None = None  # when `_generate` returned: the log-prob pass starts
        self._seconds: defaultdict[str, float] = defaultdict(float)  # phases timed by `_timed`
        self._failed_judge_steps = 0  # consecutive steps in which every judge request failed
        self._judge_pool = None if thinking_reward is None else ThreadPoolExecutor(1, "thinking-judge")
        self.thinking_reward = thinking_reward
        trust = {"alpha": args.trust_alpha, "correct_threshold": args.trust_correct_threshold}
        self._trust_weights = functools.partial(trust_weights, **trust, skip_uniform=args.skip_uniform)
        # The reward that splits correct from incorrect: `correctness_reward`, else accuracy_reward, else the first.
        names, correctness = self.reward_func_names, args.correctness_reward
        if correctness is not None and correctness not in names:
            raise ValueError(f"correctness_reward={correctness!r} is not among the reward functions {names}.")
        correctness = correctness or "accuracy_reward"
        self._correctness_index = names.index(correctness) if correctness in names else 0

        if self.use_vllm:
            from sophiavl_trl.vllm_colocate import patch_cpu_weight_sync

            patch_cpu_weight_sync(self)
            sync = self.vllm_generation.sync_weights

            @functools.wraps(sync)  # keeps `cpu_weight_sync`
            def timed_sync() -> None:
                with self._timed("weight_sync"):
                    sync()

            self.vllm_generation.sync_weights = timed_sync
        self.add_callback(_OptimizerTimer(self._metrics))
        dataset = self.train_dataset  # streamed with a `data_type` column: the sampler's one-modality batches
        if isinstance(dataset, IterableDataset) and "data_type" in (dataset.column_names or []):
            if self.shuffle_dataset:  # before the grouping: TRL's shuffle after it would mix modalities again
                dataset = dataset.shuffle(seed=self.args.seed)
            self.train_dataset = group_stream_by_modality(dataset, args.generation_batch_size // self.num_generations)
            self.shuffle_dataset = False
        if thinking_reward is not None:
            self.reward_funcs.append(_thinking_column)
            self.reward_func_names.append("thinking")
            self.reward_processing_classes.append(None)
            self.reward_weights = torch.cat([self.reward_weights, torch.ones(1)])

    @contextmanager
    def _timed(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self._seconds[phase] += time.perf_counter() - start

    def _get_train_sampler(self, dataset=None):
        return self._one_modality_batches(super()._get_train_sampler(dataset))

    def _get_eval_sampler(self, eval_dataset):
        batch = self.args.per_device_eval_batch_size * self.accelerator.num_processes // self.num_generations_eval
        sampler = super()._get_eval_sampler(eval_dataset)
        return self._one_modality_batches(sampler, batch_size=max(1, batch), shuffle=False)  # one batch, all processes

    def _one_modality_batches(self, sampler, **overrides):
        """TRL 1.16 cannot generate for a batch mixing image and text-only prompts: TRL's `sampler` (with `overrides`),
        keeping every batch to one modality. `sampler` itself when its data has one modality or no `data_type`."""
        labels = modality_labels(sampler.data_source)
        if labels is None or len(set(labels)) < 2:
            return sampler
        names = ("mini_repeat_count", "batch_size", "repeat_count", "shuffle", "seed")
        kwargs = {name: getattr(sampler, name) for name in names} | overrides
        return ModalityGroupedRepeatSampler(sampler.data_source, **kwargs, modalities=labels)

    def _prepare_inputs(self, generation_batch):
        with self._timed("prepare"):
            return super()._prepare_inputs(generation_batch)

    def training_step(self, model, inputs, num_items_in_batch):
        # `timing/forward_backward`: the step less `_prepare_inputs` (generation, rewards, advantages), i.e. the loss
        # forward and backward (and under DeepSpeed the optimizer step, inside backward); logged where TRL logs
        # `step_time`, summed over the gradient accumulation steps.
        self._seconds["prepare"] = 0.0
        with self._timed("forward_backward"):
            loss = super().training_step(model, inputs, num_items_in_batch)
        self._seconds["forward_backward"] -= self._seconds["prepare"]
        if self._step % self.current_gradient_accumulation_steps == 0:
            self._metrics["train"]["timing/forward_backward"].append(self._seconds.pop("forward_backward"))
        return loss

    # ----------------------------------------------------------------------------------------------------------------
    # The judge works while the log-probs are computed: `_generate` (after the completions are decoded) computes the
    # outcome rewards and sends the judge requests; `_calculate_rewards` (after the log-prob pass) collects the scores.
    # ----------------------------------------------------------------------------------------------------------------
    def _generate_and_score_completions(self, inputs):
        self._batch_inputs = inputs
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
        self._seconds["weight_sync"] = 0.0
        start = time.perf_counter()
        output = super()._generate(prompts)
        self._metrics[mode]["timing/generation"].append(time.perf_counter() - start - self._seconds["weight_sync"])
        if self.use_vllm:
            self._metrics[mode]["timing/weight_sync"].append(self._seconds["weight_sync"])
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
        threshold = -math.inf if args.judge_query_threshold is None else args.judge_query_threshold
        groups = outcome.view(-1, self.num_generations)
        query = judge_query_mask(groups, query_threshold=threshold, skip_uniform=args.skip_uniform).view(-1)
        # Not judged: a real 0 below the query threshold (the released code's choice), NaN in skipped groups.
        thinking = torch.where(~query & (outcome < threshold), 0.0, float("nan"))
        rank, n_local = self.accelerator.process_index, len(prompts)
        local = slice(rank * n_local, (rank + 1) * n_local)  # TRL gathers the processes' completions in rank order
        local_query = query[local].nonzero().view(-1).tolist()
        future = self._judge_pool.submit(
            self._score_thinking, inputs, prompts, completions, completion_ids_list, local_query
        )
        return _Judging(rewards_per_func, outcome, query, thinking, local, local_query, future)

    def _finish_judging(self, judging: _Judging) -> torch.Tensor:
        """Wait for this process's scores, share them, fill the trust-weighted thinking column, and log the step."""
        args: TrustGRPOConfig = self.args
        rewards_per_func, G, query = judging.rewards_per_func, self.num_generations, judging.query
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

        # Trust weights per group, and the weighted thinking column (NaN: TRL's nansum adds 0).
        step, T = self.state.global_step, args.trust_anneal_steps or max(self.state.max_steps, 1)
        tw = self._trust_weights(judging.outcome.view(-1, G), thinking.view(-1, G), step=step, anneal_steps=T)
        weight = tw.weight.repeat_interleave(G)
        rewards_per_func[:, -1] = (weight * thinking).to(rewards_per_func.device)

        # Per-step metrics, from gathered CPU tensors: identical on every process and free of syncs.
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
            "trust/anneal_scale": anneal_scale(step, alpha=args.trust_alpha, anneal_steps=T),
            "trust/mu_correct": torch.nanmean(tw.mu_correct).item(),
            "trust/mu_incorrect": torch.nanmean(tw.mu_incorrect).item(),
            "timing/judge": latency.max().item(),
            "timing/judge_wait": waited.max().item(),
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
        # Columns of TRL's completions table, this process's rows.
        for name, values in {"outcome": judging.outcome, "thinking_score": thinking, "trust_weight": weight}.items():
            self._log_completion_extra(name, values[judging.local].tolist())
        return rewards_per_func

    def _score_thinking(self, inputs, prompts, completions, completion_ids_list, indices):
        """Call `thinking_reward` on the local completions at `indices`. Returns (scores, seconds, exception)."""
        if not indices:
            return [], 0.0, None
        # TRL's reward keywords: the dataset columns, prompts, completions, completion_ids (and trainer_state).
        columns = {key: [row[key] for row in inputs] for key in inputs[0] if key not in ("prompt", "completion")}
        columns |= {"prompts": prompts, "completions": completions, "completion_ids": completion_ids_list}
        kwargs = {key: [values[i] for i in indices] for key, values in columns.items()}
        start = time.perf_counter()
        try:
            result = self.thinking_reward(**kwargs, trainer_state=self.state)
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
