"""The Keras dtype policy a run trains under: ``mixed_precision=none|float16|bfloat16|auto``.

Mixed policies compute in 16 bits and keep variables in float32 (Keras mixed-precision guide,
https://keras.io/api/mixed_precision/policy/). ``auto`` picks ``mixed_bfloat16`` where the
hardware the run trains on has fast bfloat16 arithmetic, and plain ``float32`` elsewhere:

- GPUs (they run the model whenever TensorFlow sees one): every GPU has compute capability
  >= 8.0 (Ampere and later have bfloat16 tensor cores; NVIDIA CUDA C++ Programming Guide,
  "Compute Capabilities").
- CPUs: the Linux ``/proc/cpuinfo`` flags ``amx_bf16`` (Intel AMX tiles, Sapphire Rapids and later)
  or ``avx512_bf16`` (AVX512-BF16 dot products, Cooper Lake, AMD Zen 4 and later), which oneDNN
  uses for bfloat16 matmuls and convolutions.

``float16`` is never chosen by ``auto``: CPUs run it slowly and it needs loss scaling.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

POLICIES = {"none": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
BF16_MIN_COMPUTE_CAPABILITY = (8, 0)


def cpu_bf16_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> list[str]:
    """The fast-bfloat16 flags (:data:`BF16_CPU_FLAGS`) this CPU reports; ``[]`` where unknown."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:  # not Linux: no flags to read, so no claim of fast bfloat16
        return []
    flags = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags.update(value.split())
    return [flag for flag in BF16_CPU_FLAGS if flag in flags]


def gpu_compute_capabilities() -> list[tuple[int, int]]:
    """The compute capability of every GPU TensorFlow sees (``(0, 0)`` where it reports none)."""
    return [
        tuple(tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0)))
        for gpu in tf.config.list_physical_devices("GPU")
    ]


def auto_policy() -> tuple[str, str]:
    """``(policy, reason)`` for ``mixed_precision=auto`` on this machine (see the module docstring)."""
    capabilities = gpu_compute_capabilities()
    if capabilities:
        fast = all(cc >= BF16_MIN_COMPUTE_CAPABILITY for cc in capabilities)
        listed = ", ".join(f"{major}.{minor}" for major, minor in capabilities)
        return ("mixed_bfloat16" if fast else "float32"), f"GPU compute capability {listed}"
    flags = cpu_bf16_flags()
    if flags:
        return "mixed_bfloat16", f"CPU flags {', '.join(flags)}"
    return "float32", f"CPU without {' or '.join(BF16_CPU_FLAGS)}"


def resolve_policy(mixed_precision: str) -> tuple[str, str]:
    """``(Keras policy name, reason)`` for a config's ``mixed_precision`` setting.

    Example:
        >>> resolve_policy("bfloat16")
        ('mixed_bfloat16', 'mixed_precision=bfloat16')
    """
    if mixed_precision == "auto":
        return auto_policy()
    if mixed_precision not in POLICIES:
        raise ValueError(f"bad mixed_precision {mixed_precision!r}; choose one of: {', '.join([*POLICIES, 'auto'])}")
    return POLICIES[mixed_precision], f"mixed_precision={mixed_precision}"
