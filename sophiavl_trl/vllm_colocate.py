# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""TRL's colocated vLLM weight sync, made correct on every CPU.

vLLM's CPU backend repacks each linear weight when the model loads (oneDNN, zentorch or AMX kernels, chosen per CPU
in `dispatch_cpu_unquantized_gemm`) and then drops `layer.weight` for an empty Parameter. TRL's colocated
`sync_weights` calls `model.load_weights` after every optimizer step, which then fails with `AttributeError: ...
'weight_loader'`; and a packed copy that is not rebuilt (the tied `lm_head` keeps its weight) would go on generating
with the initial weights. On CPUs where vLLM falls back to `torch.nn.functional.linear` nothing is packed, which is
why the bug depends on the machine.

The fix is vLLM's own path for in-place RL weight updates, the one `GPUModelRunner.reload_weights` uses:
`initialize_layerwise_reload` restores every layer's checkpoint-format parameters, the loads fill them, and each
layer's `process_weights_after_loading` runs again as soon as it is complete, which rebuilds the packed kernels.
We wrap TRL's sync with it, so TRL still walks (and, under ZeRO-3, gathers) the parameters. GPUs pack nothing and
keep TRL's plain path, unchanged.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any


logger = logging.getLogger(__name__)

HOW_TO_AVOID = (
    "Generate with a vLLM server instead (`vllm_mode: server`, `trl vllm-serve` on other devices) or without vLLM "
    "(`use_vllm: false`)."
)


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


def reload_weights(model_runner: Any, load: Callable[[], None]) -> None:
    """Run `load` (which calls `model.load_weights`) inside vLLM's layerwise reload, then rebuild the CPU kernels of the
    layers that keep their weight beside a packed copy.

    The second step is for tied embeddings: the `lm_head` shares `embed_tokens`' weight, so the reload fills it but
    never reprocesses it (a limitation vLLM documents), and its packed copy would keep the old weight.
    """
    from vllm.model_executor.model_loader.reload import finalize_layerwise_reload, initialize_layerwise_reload

    model = model_runner.get_model()
    initialize_layerwise_reload(model)
    try:
        load()
    finally:
        finalize_layerwise_reload(model, model_runner.model_config)
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if hasattr(module, "cpu_linear") and weight is not None and weight.numel() and hasattr(module, "quant_method"):
            module.quant_method.process_weights_after_loading(module)


def prepare_colocated_sync(vllm_generation: Any) -> bool:
    """On a CPU, route TRL's colocated `sync_weights` through vLLM's layerwise reload, then check it once.

    Returns whether the sync was wrapped. Raises `RuntimeError`, before any training step, when the weights cannot be
    pushed to the colocated engine on this platform, saying what to use instead.
    """
    from vllm.platforms import current_platform

    if getattr(vllm_generation, "mode", None) != "colocate" or not current_platform.is_cpu():
        return False
    try:
        from vllm.model_executor.model_loader.reload import (  # noqa: F401
            finalize_layerwise_reload,
            initialize_layerwise_reload,
        )
    except ImportError:  # vLLM before the layerwise reload API: the preflight below decides
        wrapped = False
    else:
        runner = _model_runner(vllm_generation.llm)
        sync = vllm_generation.sync_weights

        @functools.wraps(sync)
        def sync_weights() -> None:
            reload_weights(runner, sync)

        vllm_generation.sync_weights = sync_weights
        wrapped = True

    # Preflight: push the initial weights once now, so a platform that cannot sync fails here with a clear message,
    # not with an AttributeError at step 0. (Every process runs it: under ZeRO-3 the sync gathers collectively.)
    try:
        vllm_generation.sync_weights()
    except Exception as exc:
        import vllm

        packed = packed_linear_layers(vllm_generation.llm)
        raise RuntimeError(
            f"The policy's weights cannot be pushed to the colocated vLLM engine on this CPU (vllm {vllm.__version__}"
            f"{f', {len(packed)} linear layers repacked by its CPU kernels' if packed else ''}): "
            f"{type(exc).__name__}: {exc}. {HOW_TO_AVOID}"
        ) from exc
    logger.info("Colocated vLLM on CPU: weights synced through vLLM's layerwise reload (%s).", wrapped)
    return wrapped
