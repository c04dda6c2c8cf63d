"""TensorFlow's start-up without its C++ INFO and WARNING lines.

TensorFlow 2.21 logs through Abseil before Abseil's logging is initialised, so those lines
("oneDNN custom operations are on", "Could not find cuda drivers", "This TensorFlow binary is
optimized to use …") reach stderr whatever ``TF_CPP_MIN_LOG_LEVEL`` says (tensorflow/tensorflow
#102212, abseil/abseil-cpp #1718). Unless the user has set ``TF_CPP_MIN_LOG_LEVEL`` themselves,
:func:`quiet_tensorflow_start` sends stderr to a file while TensorFlow and Keras load, then
writes back every line but the INFO and WARNING ones (level 2), and but the CUDA probe's
"failed call to cuInit" of a machine without a GPU driver. Set ``TF_CPP_MIN_LOG_LEVEL=0`` to see
everything.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

# "I0000 00:00:1796.. 8203 port.cc:153] ...", "W0000 ...", Abseil's preamble, the continuation
# line of cpu_feature_guard's INFO message, and the CUDA probe on a machine without a driver.
_NOISE = re.compile(
    r"^(?:[IW]\d{4} \d\d:\d\d:[\d.]+ +\d+ \S+:\d+\]|E\d{4} \d\d:\d\d:[\d.]+ +\d+ cuda_platform\.cc:\d+\] failed call to cuInit"
    r"|WARNING: All log messages before absl::InitializeLog\(\)|To enable the following instructions:)"
)


def is_start_up_noise(line: str) -> bool:
    """True for the C++ start-up lines :func:`quiet_tensorflow_start` hides."""
    return _NOISE.match(line) is not None


@contextlib.contextmanager
def quiet_tensorflow_start():
    """Hides TensorFlow's C++ start-up INFO/WARNING lines printed inside the ``with`` block."""
    if "tensorflow" in sys.modules or "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        yield  # the user chose the log level, or TensorFlow has started already
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"  # what TensorFlow does honour, from now on
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:  # also when an import fails: its C++ errors are written back
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode("utf-8", "replace").splitlines(True)
            sys.stderr.write("".join(line for line in lines if not is_start_up_noise(line)))
