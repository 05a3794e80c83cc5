# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""TRL's colocated vLLM weight sync, made correct on every CPU: `patch_cpu_weight_sync(trainer)`.

vLLM's CPU backend repacks linear weights into kernel formats and drops `layer.weight`, so TRL's per-parameter
`load_weights` fails (`AttributeError: ... 'weight_loader'`) or leaves stale packed copies. We route TRL's sync through
vLLM's own in-place reload. Why, and the upstream fixes that would retire this module: docs/upstream-cpu-weight-sync.md.
"""

from __future__ import annotations

import functools
import logging
from typing import Any


logger = logging.getLogger(__name__)

__all__ = ["packed_linear_layers", "patch_cpu_weight_sync"]


def _model_runner(llm: Any) -> Any:
    return llm.llm_engine.model_executor.driver_worker.model_runner


def packed_linear_layers(llm: Any) -> list[str]:
    """Names of the colocated engine's linear layers whose weight vLLM replaced by a packed CPU kernel."""
    model = _model_runner(llm).get_model()
    return [
        name
        for name, module in model.named_modules()
        if hasattr(module, "cpu_linear") and getattr(module, "weight", None) is not None and module.weight.numel() == 0
    ]


def patch_cpu_weight_sync(trainer: Any) -> bool:
    r"""Make a TRL trainer's colocated vLLM weight sync correct on a CPU, and check it once; returns whether the sync
    now goes through vLLM's layerwise reload.

    For any trainer generating through `trl.generation.VLLMGeneration` with `use_vllm=True, vllm_mode="colocate"` on a
    CPU, `trainer.vllm_generation.sync_weights` is rerouted, then run once, so a platform that cannot sync raises a
    `RuntimeError` now (saying what to use instead), not at step 0. Call it on every process (ZeRO-3 gathers
    collectively) before `train()`; `TrustGRPOTrainer` calls it itself. Elsewhere it does nothing; a second call is
    harmless.
    """
    generation = getattr(trainer, "vllm_generation", None)  # TRL sets it only with use_vllm
    if getattr(generation, "mode", None) != "colocate":
        return False
    from vllm.platforms import current_platform

    sync = generation.sync_weights
    if not current_platform.is_cpu() or getattr(sync, "cpu_weight_sync", False):
        return bool(getattr(sync, "cpu_weight_sync", False))
    try:
        from vllm.model_executor.model_loader.reload import finalize_layerwise_reload, initialize_layerwise_reload
    except ImportError:  # an older vLLM: the preflight below decides
        wrapped = False
    else:
        runner = _model_runner(generation.llm)

        @functools.wraps(sync)
        def sync_weights() -> None:
            # TRL's sync (`model.load_weights` per parameter) inside vLLM's layerwise reload, then the kernels of the
            # layers that keep their weight beside a packed copy: the tied `lm_head` shares `embed_tokens`' weight, so
            # the reload fills it but never reprocesses it (a limitation vLLM documents).
            model = runner.get_model()
            initialize_layerwise_reload(model)
            try:
                sync()
            finally:
                finalize_layerwise_reload(model, runner.model_config)
            for module in model.modules():
                weight = getattr(module, "weight", None) if hasattr(module, "cpu_linear") else None
                if weight is not None and weight.numel() and hasattr(module, "quant_method"):
                    module.quant_method.process_weights_after_loading(module)

        sync_weights.cpu_weight_sync = True  # kept by functools.wraps around it, e.g. a timer
        generation.sync_weights, wrapped = sync_weights, True

    try:  # the preflight: push the initial weights once now
        generation.sync_weights()
    except Exception as exc:
        import vllm

        packed = packed_linear_layers(generation.llm)
        raise RuntimeError(
            f"The policy's weights cannot be pushed to the colocated vLLM engine on this CPU (vllm {vllm.__version__}"
            f"{f', {len(packed)} linear layers repacked by its CPU kernels' if packed else ''}): "
            f"{type(exc).__name__}: {exc}. Generate with a vLLM server instead (`vllm_mode: server`, `trl vllm-serve` "
            "on other devices) or without vLLM (`use_vllm: false`)."
        ) from exc
    logger.info("Colocated vLLM on CPU: weights synced through vLLM's layerwise reload (%s).", wrapped)
    return wrapped
