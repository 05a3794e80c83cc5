#!/usr/bin/env bash
# The wheels that a GPU machine with no network needs on top of its own Python 3.12 stack (torch, transformers,
# accelerate, peft, numpy, pillow, pyarrow, aiohttp, ...) to run this project and the GPU check kit.
#
#   bash scripts/gpu_wheels.sh download [DIR]         # here, with network: fetch the pinned set into DIR (.whl)
#   bash scripts/gpu_wheels.sh install [DIR] [TARGET]  # there, offline: pip install --no-index --no-deps into TARGET
#                                                     # (/tmp/site); then: export PYTHONPATH=TARGET:$PWD
#
# Pinned to the versions the CPU suite runs with (peft too, though the machine has one: TRL imports it when present,
# and an older peft may not import under transformers 5). trl 1.16.0 itself asks only for transformers>=4.56.2 and
# accelerate>=1.10.1, so the machine's transformers 5.17 / accelerate 1.15 / torch 2.11 satisfy it. Not carried:
# `av` (qwen-vl-utils imports it only to read videos), vllm and deepspeed (the kit generates with transformers on one
# GPU), and what the machine already has (pandas, xxhash, huggingface-hub, click, absl-py, six, requests, aiohttp).
# Nor pyarrow (53 MiB, over the budget alone): datasets 5.2 declares pyarrow>=24 but checks no version at import, and
# the kit only builds in-memory datasets; `install` prints the machine's version.
set -euo pipefail
cmd=${1:-}
DIR=${2:-.whl}
TARGET=${3:-/tmp/site}
MAX_MIB=60

# name==version, one per line. Pure-python packages that publish only an sdist are built into wheels here.
WHEELS="
trl==1.16.0
peft==0.21.2
datasets==5.2.0
dill==0.4.1
multiprocess==0.70.19
fsspec==2026.9.0
openai==3.54.0
httpx2==2.16.2
httpcore2==2.16.2
h11==0.16.0
truststore==0.10.5
anyio==4.16.0
idna==3.20
sniffio==1.3.1
jiter==0.19.0
pydantic==2.14.4
pydantic_core==2.50.5
annotated-types==0.8.0
typing-inspection==0.4.5
typing_extensions==4.16.0
mathruler==0.1.0
pylatexenc==2.10
jiwer==4.0.0
rapidfuzz==3.14.6
rouge-score==0.1.2
nltk==3.10.4
qwen-vl-utils==0.0.14
pytest==9.2.0
pluggy==1.7.0
iniconfig==2.3.1
"

download() {
    mkdir -p "$DIR"
    local plat=(--only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)
    for spec in $WHEELS; do
        if ! python3 -m pip download -q --no-deps "${plat[@]}" -d "$DIR" "$spec" 2>/dev/null; then
            # sdist only (pylatexenc, rouge-score): build a py3-none-any wheel from it
            python3 -m pip wheel -q --no-deps --no-binary=:all: -w "$DIR" "$spec"
            local built
            built=$(ls "$DIR"/"$(echo "${spec%%==*}" | tr - _)"-*.whl 2>/dev/null | head -1)
            case "$built" in *-py3-none-any.whl | *-py2.py3-none-any.whl) ;; *)
                echo "error: $spec has no wheel for cp312 manylinux x86-64 and did not build a pure-python one" >&2
                exit 1
                ;;
            esac
        fi
    done
    local n
    n=$(ls "$DIR"/*.whl | wc -l)
    local expected
    expected=$(echo $WHEELS | wc -w)
    if [ "$n" -ne "$expected" ]; then
        echo "error: $DIR holds $n wheels, expected $expected (one per pin; remove stale ones)" >&2
        ls "$DIR" >&2
        exit 1
    fi
    local kib
    kib=$(du -sk "$DIR" | cut -f1)
    ls -s --block-size=K "$DIR"
    echo "$n wheels, $((kib / 1024)) MiB in $DIR (limit $MAX_MIB MiB)"
    if [ "$kib" -gt $((MAX_MIB * 1024)) ]; then
        echo "error: $DIR is over $MAX_MIB MiB" >&2
        exit 1
    fi
}

install() {
    local wheels=("$DIR"/*.whl)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$TARGET" \
        "${wheels[@]}"
    echo "installed ${#wheels[@]} wheels into $TARGET; now: export PYTHONPATH=$TARGET:\$PWD"
    PYTHONPATH="$TARGET" python3 -c 'import importlib.metadata as m
def version(p):
    try:
        return m.version(p)
    except m.PackageNotFoundError:
        return "MISSING"
print("base: " + ", ".join(f"{p} {version(p)}" for p in ("torch", "transformers", "accelerate", "peft", "pyarrow",
      "pandas", "huggingface-hub", "sympy", "aiohttp")))' || true  # a report only
}

case "$cmd" in
download) download ;;
install) install ;;
*)
    sed -n '2,7p' "$0"
    exit 2
    ;;
esac
