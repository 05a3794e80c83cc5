# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
import json

import pytest
import torch
from PIL import Image

from sophiavl_trl.testing import build_tiny_qwen2_5_vl, vision_token_ids
from sophiavl_trl.testing.tiny_model import SPECIAL_TOKENS


def _image_prompt(processor):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many red circles?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    return processor(text=[text], images=[Image.new("RGB", (64, 64), "red")], return_tensors="pt")


class TestTinyQwen25VL:
    def test_reloads_with_stock_classes_and_generates_from_an_image_prompt(self, tiny_model_dir):
        from transformers import AutoModelForImageTextToText, AutoProcessor, Qwen2_5_VLForConditionalGeneration

        processor = AutoProcessor.from_pretrained(tiny_model_dir)
        model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
        assert isinstance(model, Qwen2_5_VLForConditionalGeneration)

        inputs = _image_prompt(processor)
        # The image really becomes image tokens: as many <|image_pad|> as merged patches (64x64 -> 2x2 after merge).
        image_pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
        n_image_tokens = int((inputs["input_ids"] == image_pad).sum())
        grid = inputs["image_grid_thw"][0]
        assert n_image_tokens == int(grid.prod()) // 4 > 0

        out = model.generate(**inputs, max_new_tokens=6, do_sample=False)
        new_tokens = out[0, inputs["input_ids"].shape[1] :]
        assert 1 <= new_tokens.numel() <= 6
        # Greedy decoding is deterministic: generating twice gives the same tokens.
        again = model.generate(**inputs, max_new_tokens=6, do_sample=False)
        assert torch.equal(out, again)

    def test_special_token_ids_match_the_config(self, tiny_model_dir):
        from transformers import AutoConfig, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
        config = AutoConfig.from_pretrained(tiny_model_dir)
        ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in SPECIAL_TOKENS}
        assert len(set(ids.values())) == len(SPECIAL_TOKENS)  # all present and distinct
        assert config.image_token_id == ids["<|image_pad|>"]
        assert config.video_token_id == ids["<|video_pad|>"]
        assert config.vision_start_token_id == ids["<|vision_start|>"]
        assert config.vision_end_token_id == ids["<|vision_end|>"]
        assert config.text_config.vocab_size >= len(tokenizer)
        head_dim = config.text_config.hidden_size // config.text_config.num_attention_heads
        assert head_dim >= 32  # vLLM's CPU attention
        assert sum(config.text_config.rope_parameters["mrope_section"]) == head_dim // 2
        assert sorted(vision_token_ids(tokenizer)) == sorted(ids[t] for t in SPECIAL_TOKENS[3:])

    def test_chat_template_is_qwen25_vl(self, tiny_model_dir):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
        text = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
        assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi")
        # Text round-trips through the trained byte-level BPE.
        sample = "<think> Let me think: 3 + 4 = 7 </think><answer>7</answer>"
        assert tokenizer.decode(tokenizer(sample)["input_ids"]) == sample

    def test_build_is_deterministic_and_idempotent(self, tmp_path):
        a = build_tiny_qwen2_5_vl(tmp_path / "a", seed=3)
        b = build_tiny_qwen2_5_vl(tmp_path / "b", seed=3)
        assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
        mtime = (a / "model.safetensors").stat().st_mtime_ns
        build_tiny_qwen2_5_vl(a, seed=3)  # an existing folder is reused, not rebuilt
        assert (a / "model.safetensors").stat().st_mtime_ns == mtime
        assert json.loads((a / "config.json").read_text())["model_type"] == "qwen2_5_vl"

    def test_rejects_a_hidden_size_vllm_cannot_serve(self, tmp_path):
        with pytest.raises(ValueError, match="multiple of 32"):
            build_tiny_qwen2_5_vl(tmp_path / "bad", hidden_size=100)
