# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""The images of the data rows: `path` cells as `datasets.Image` references, checked before training (present,
decodable, within Qwen2.5-VL's aspect ratio), opened and resized only when a row is read (`ImageTransform`)."""

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from io import BytesIO
from typing import Any


# The released recipe's image pixel bounds (`data.min_pixels` / `data.max_pixels`).
DEFAULT_MIN_PIXELS = 262144
DEFAULT_MAX_PIXELS = 4194304
# Qwen2.5-VL's resizing (qwen_vl_utils.smart_resize) refuses images whose long side exceeds 200 times the short one.
MAX_ASPECT_RATIO = 200


def resolve_image(path: str, base: str | os.PathLike | None, where: str = "") -> str:
    r"""The normalised local path of an image (relative: joined to `base`, and refused, with a `ValueError` prefixed
    with `where`, when it leaves `base` even through a link), as docs/dataset.md describes; remote URLs are refused."""
    prefix = f"{where}: " if where else ""
    if path.startswith(("http://", "https://")):
        raise ValueError(f"{prefix}remote image URLs are not supported: {path!r}; download the images first")
    joined = path.removeprefix("file://")
    if base and not os.path.isabs(joined):
        joined, root = os.path.abspath(os.path.join(base, joined)), os.path.abspath(base)
        if os.path.commonpath([joined, root]) != root:
            raise ValueError(f"{prefix}image path {path!r} resolves to {joined}, outside image_base_path {base}")
        real, root = os.path.realpath(joined), os.path.realpath(base)  # a link may lead outside: resolve them all
        if os.path.commonpath([real, root]) != root:
            raise ValueError(f"{prefix}image path {path!r} leads through a symbolic link to {real}, outside "
                             f"image_base_path {base}")  # fmt: skip
    return os.path.normpath(joined)


def image_refs(value: Any, base: str | os.PathLike | None) -> tuple[list[dict[str, Any]], str | None]:
    """A `path` cell as `{"bytes", "path"}` refs (the `datasets.Image` storage), or why it cannot be."""
    refs = []
    for item in (value if isinstance(value, list) else [value]) if value not in (None, "") else []:
        if isinstance(item, dict) and item.get("bytes"):
            refs.append({"bytes": bytes(item["bytes"]), "path": item.get("path")})
            continue
        path = item.get("path") if isinstance(item, dict) else item
        if not isinstance(path, str) or not path:
            return [], f"expected an image path (or a list of paths), got {item!r:.80}"
        try:
            refs.append({"bytes": None, "path": resolve_image(path, base)})
        except ValueError as exc:
            return [], str(exc)
    return refs, None


def _image_problem(ref: tuple[str | None, bytes | None], verify: bool, bounds: tuple[int, int]) -> str | None:
    from PIL import Image
    from qwen_vl_utils import smart_resize

    path, data = ref
    if data is None and not (path and os.path.isfile(path)):
        return f"image file not found: {path}"
    if not verify:
        return None
    name = path or "<embedded bytes>"
    try:
        with Image.open(BytesIO(data) if data else path) as image:
            image.load()  # decode it all: a truncated file has a valid header, and would crash the DataLoader
            width, height = image.size
    except Exception as exc:  # PIL raises many types (UnidentifiedImageError, OSError, SyntaxError, ...)
        return f"unreadable image {name}: {type(exc).__name__}: {exc}"
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        return f"image {name} is {width}x{height}: aspect ratio above {MAX_ASPECT_RATIO}, Qwen2.5-VL's limit"
    if min(smart_resize(height, width, 28, *bounds)) == 0:  # PIL would fail on it in the DataLoader
        return f"image {name} is {width}x{height}: too thin for max_pixels {bounds[1]} (a side would shrink to 0)"
    return None


def check_images(
    images: list[list[dict]], issues: list[list[str]], *, verify: bool, seen: dict, bounds: tuple
) -> dict:
    """`Dataset.map` batch function: adds each missing (`verify`: or bad) image to its row's issues; `seen` caches."""
    refs = list(dict.fromkeys((ref["path"], ref["bytes"]) for row in images for ref in row).keys() - seen.keys())
    problem = partial(_image_problem, verify=verify, bounds=bounds)
    with ThreadPoolExecutor(min(16, 2 * (os.cpu_count() or 1))) as pool:  # decoding mostly releases the GIL
        seen.update(zip(refs, pool.map(problem, refs)))  # rows often share images
    verdicts = [[seen[(ref["path"], ref["bytes"])] for ref in row] for row in images]
    return {"issues": [old + [f"field 'path': {v}" for v in new if v] for old, new in zip(issues, verdicts)]}


def image_tokens(refs: list[dict[str, Any]], min_pixels: int, max_pixels: int) -> int:
    """The vision tokens (one per 28 x 28 pixels) of a row's images once resized, read from the image headers."""
    from PIL import Image
    from qwen_vl_utils import smart_resize

    total = 0
    for ref in refs:
        with Image.open(BytesIO(ref["bytes"]) if ref.get("bytes") else ref["path"]) as image:
            height, width = smart_resize(image.height, image.width, 28, min_pixels, max_pixels)
        total += height * width // 28**2
    return total


class ImageTransform:
    r"""`Dataset.with_transform` transform: opens a row's images when it is read, as RGB, resized within the pixel
    bounds by qwen-vl-utils' `fetch_image` (sides multiples of 28: 14-pixel patches, merged 2 x 2)."""

    def __init__(self, min_pixels: int = DEFAULT_MIN_PIXELS, max_pixels: int = DEFAULT_MAX_PIXELS):
        if not 0 < min_pixels <= max_pixels:
            raise ValueError(f"Need 0 < min_pixels <= max_pixels, got {min_pixels} and {max_pixels}.")
        self.min_pixels, self.max_pixels = min_pixels, max_pixels

    def resize(self, image: Any) -> Any:
        r"""A PIL image as RGB, resized within the pixel bounds."""
        from qwen_vl_utils import fetch_image

        spec = {"image": image, "min_pixels": self.min_pixels, "max_pixels": self.max_pixels}
        return fetch_image(spec, image_patch_size=14)

    def load_image(self, ref: Mapping[str, Any]) -> Any:
        from PIL import Image

        try:
            with Image.open(BytesIO(ref["bytes"]) if ref.get("bytes") else ref["path"]) as image:
                return self.resize(image)
        except Exception as exc:
            raise RuntimeError(f"Cannot load image {ref.get('path') or '<embedded bytes>'}: {exc}") from exc

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        if "images" in batch:  # absent after Trainer's remove_unused_columns, for instance
            batch["images"] = [[self.load_image(ref) for ref in refs or []] for refs in batch["images"]]
        return batch
