# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Train 3 steps with colocated vLLM on the CPU; print the per-step logp differences and vLLM's GEMM path as JSON.

    python colocated_sync_probe.py MODEL_DIR OUTPUT_DIR [--gemm native|torch|packed] [--no-sync] [--no-reload-api]
        [--trainer trust|grpo|grpo-unpatched]

vLLM's CPU backend picks the linear kernel per machine (`dispatch_cpu_unquantized_gemm`): a packed oneDNN / zentorch /
AMX copy that drops `layer.weight` where those are usable, plain `torch.nn.functional.linear` elsewhere. `--gemm`
puts this process on one path whatever the CPU: `torch` is vLLM's own fallback, `packed` does what the packing paths
do (the kernel keeps a private copy of the weight; linears lose `layer.weight`, embeddings keep it), with torch math.
So both kinds of CPU are tested on every machine. `--no-sync` disables TRL's weight sync (vLLM keeps the initial
weights); `--no-reload-api` hides vLLM's layerwise reload, as on an older vLLM. `--trainer grpo` trains TRL's own
`GRPOTrainer` with `patch_cpu_weight_sync(trainer)`, `grpo-unpatched` without it.
Run as a subprocess: colocated vLLM sets torch.distributed variables and keeps an engine alive in its process.
"""

import argparse
import json


def force_gemm_path(path: str) -> None:
    import torch
    import vllm.model_executor.layers.utils as vllm_utils

    def dispatch(layer, remove_weight):
        if path == "torch" or layer.weight.is_meta or layer.weight.ndim != 2:
            layer.cpu_linear = lambda x, weight, bias: torch.nn.functional.linear(x, weight, bias)
            return
        packed = layer.weight.detach().clone()  # a kernel's private copy, as oneDNN's reorder makes
        layer.cpu_linear = lambda x, weight, bias: torch.nn.functional.linear(x, packed, bias)
        if remove_weight:
            layer.weight = torch.nn.Parameter(torch.empty(0, dtype=packed.dtype), requires_grad=False)

    vllm_utils.dispatch_cpu_unquantized_gemm = dispatch  # linear.py imports it at call time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("output_dir")
    parser.add_argument("--gemm", choices=["native", "torch", "packed"], default="native")
    parser.add_argument("--no-sync", action="store_true")
    parser.add_argument("--no-reload-api", action="store_true")
    parser.add_argument("--trainer", choices=["trust", "grpo", "grpo-unpatched"], default="trust")
    args = parser.parse_args()
    if args.gemm != "native":
        force_gemm_path(args.gemm)
    if args.no_reload_api:
        import vllm.model_executor.model_loader.reload as reload_api
        import vllm.v1.worker.cpu_model_runner  # noqa: F401  (vLLM's own imports of it come first)

        del reload_api.initialize_layerwise_reload  # importing it fails, as before vLLM had it

    from datasets import Dataset
    from spread_rewards import spread_reward
    from transformers import AutoProcessor
    from trl import GRPOConfig, GRPOTrainer

    from sophiavl_trl import TrustGRPOConfig, TrustGRPOTrainer
    from sophiavl_trl.model_utils import forbidden_token_generation_kwargs
    from sophiavl_trl.vllm_colocate import packed_linear_layers, patch_cpu_weight_sync

    processor = AutoProcessor.from_pretrained(args.model_dir)
    dataset = Dataset.from_dict(
        {"prompt": [[{"role": "user", "content": f"What is {i} plus {i}?"}] for i in range(32)]}
    )
    trust = args.trainer == "trust"
    config = (TrustGRPOConfig if trust else GRPOConfig)(
        output_dir=args.output_dir, use_vllm=True, vllm_mode="colocate", vllm_max_model_length=512, use_cpu=True,
        bf16=False, max_steps=3, per_device_train_batch_size=4, num_generations=2, max_completion_length=16,
        learning_rate=0.05, logging_steps=1, report_to="none", save_strategy="no",
        generation_kwargs=forbidden_token_generation_kwargs(processor.tokenizer, use_vllm=True),
    )  # fmt: skip
    try:
        trainer = (TrustGRPOTrainer if trust else GRPOTrainer)(
            model=args.model_dir, reward_funcs=[spread_reward], args=config, train_dataset=dataset,
            processing_class=processor,
        )  # fmt: skip
        if args.trainer == "grpo":
            patch_cpu_weight_sync(trainer)
    except RuntimeError as exc:
        print("RESULT=" + json.dumps({"error": str(exc)}))
        return
    packed = len(packed_linear_layers(trainer.vllm_generation.llm))
    if args.no_sync:
        trainer.vllm_generation.sync_weights = lambda: None  # vLLM keeps the initial weights
    trainer.train()
    diffs = [h["sampling/sampling_logp_difference/mean"] for h in trainer.state.log_history if "loss" in h]
    print("RESULT=" + json.dumps({"diffs": diffs, "packed_layers": packed}))


if __name__ == "__main__":
    main()
