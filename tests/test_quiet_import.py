"""TensorFlow's C++ start-up INFO lines are hidden unless the user sets TF_CPP_MIN_LOG_LEVEL."""

import os
import subprocess
import sys

STARTUP_INFO = ("I0000 ", "WARNING: All log messages before absl::InitializeLog()")


def _stderr_of(code, **env):
    clean = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env={**clean, **env})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stderr


def test_import_tfmodels_hides_the_start_up_info_lines_the_user_can_still_have_them():
    assert not any(line.startswith(STARTUP_INFO) for line in _stderr_of("import tfmodels").splitlines())
    # The same import with the user's level shows them: TensorFlow 2.21 prints them at any level.
    assert any(line.startswith(STARTUP_INFO) for line in _stderr_of("import tfmodels", TF_CPP_MIN_LOG_LEVEL="0").splitlines())


def test_only_info_and_warning_start_up_lines_are_hidden():
    from tfmodels.quiet_import import is_start_up_noise

    hidden = [
        "I0000 00:00:1796201046.584790    8203 port.cc:153] oneDNN custom operations are on.",
        "W0000 00:00:1796201046.585166    8203 cudart_stub.cc:31] Could not find cuda drivers",
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow",
        "E0000 00:00:1796201049.564422    8203 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error",
    ]
    kept = [
        "E0000 00:00:1796201049.564422    8203 saved_model_loader.cc:12] Op type not registered",
        "Traceback (most recent call last):",
        "I think this is a plain message",
    ]
    assert [is_start_up_noise(line) for line in hidden + kept] == [True] * len(hidden) + [False] * len(kept)
