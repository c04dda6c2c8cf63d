"""ResNet-50 train-step throughput: tfmodels' ``resnet50`` vs ``keras.applications.ResNet50``.

Same architecture (ours copies keras.applications' weights exactly), same batch, resolution,
optimizer and loss, same process, timed one after the other after a warm-up. Ours also runs its
in-model preprocessing (RGB→BGR, mean subtraction), which keras.applications leaves to the caller.
Reports images/s of both and the ratio (target >= 1.0).

Run: ``make bench`` or ``python benchmarks/bench_resnet50.py [--size 128] [--batch 16] [--steps 10]``.
The defaults are sized for a 2-core CPU; use ``--size 224 --batch 64`` on a GPU.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfmodels.models.resnet import build_resnet50  # noqa: E402


def images_per_second(model: keras.Model, x: tf.Tensor, y: tf.Tensor, steps: int) -> float:
    model.compile(keras.optimizers.SGD(0.01, momentum=0.9), keras.losses.CategoricalCrossentropy(from_logits=True))
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    model.fit(data, steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)  # warm-up: tracing
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return steps * int(x.shape[0]) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    shape = (args.size, args.size, 3)
    x = tf.random.uniform((args.batch, *shape), 0, 255)
    y = tf.one_hot(tf.range(args.batch) % 1000, 1000)

    keras.utils.set_random_seed(0)
    reference = keras.applications.ResNet50(weights=None, input_shape=shape, classifier_activation=None)
    ref_rate = images_per_second(reference, x, y, args.steps)
    keras.utils.set_random_seed(0)
    ours = build_resnet50(num_classes=1000, input_shape=shape)
    our_rate = images_per_second(ours, x, y, args.steps)
    print(f"ResNet-50 train step, batch {args.batch}, {args.size}x{args.size}, {args.steps} steps")
    print(f"  keras.applications.ResNet50: {ref_rate:8.1f} images/s")
    print(f"  tfmodels resnet50:           {our_rate:8.1f} images/s")
    print(f"  ratio (ours / reference):    {our_rate / ref_rate:8.2f}  (target >= 1.0)")


if __name__ == "__main__":
    main()
