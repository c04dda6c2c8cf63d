"""keras.applications' ``preprocess_input`` modes as Keras layers, for models that take raw pixels.

Our image classifiers take raw RGB pixels (float 0..255) and preprocess inside the model, in a
first layer named ``"preprocess"``, so that a saved ``.keras`` file carries its own preprocessing:

- 'caffe' (VGG, ResNet): RGB→BGR, minus the ImageNet mean pixel — :class:`CaffePreprocessing`;
- 'torch' (DenseNet): x / 255, minus the ImageNet mean, over the ImageNet std —
  :func:`imagenet_standardization` (in one layer on raw pixels, or after a 1/255 rescaling);
- 'tf' (MobileNet, Inception v3): x / 127.5 − 1 — :func:`tf_preprocessing`.
"""

from __future__ import annotations

import keras

# keras.applications.imagenet_utils, mode="caffe": the ImageNet mean pixel of Caffe's reference
# models, in BGR order, on the 0..255 scale.
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)
# keras.applications.imagenet_utils, mode="torch": the ImageNet RGB mean and std on the 0..1 scale.
IMAGENET_RGB_MEAN = (0.485, 0.456, 0.406)
IMAGENET_RGB_STD = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable(package="tfmodels")
class CaffePreprocessing(keras.layers.Layer):
    """keras.applications' 'caffe' ``preprocess_input`` as a layer: RGB→BGR, minus the mean pixel.

    Args:
        mean: the per-channel mean to subtract, in BGR order.

    Example:
        >>> import numpy as np
        >>> mean_rgb = np.array([[[[123.68, 116.779, 103.939]]]], "float32")
        >>> float(np.abs(CaffePreprocessing()(mean_rgb)).max())
        0.0
    """

    def __init__(self, mean=IMAGENET_BGR_MEAN, **kwargs):
        super().__init__(**kwargs)
        self.mean = tuple(float(m) for m in mean)

    def call(self, images):
        bgr = keras.ops.flip(images, axis=-1)
        return bgr - keras.ops.convert_to_tensor(self.mean, dtype=bgr.dtype)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean}


def imagenet_standardization(name: str = "preprocess", pixel_scale: float = 255.0) -> keras.layers.Normalization:
    """(x − ImageNet mean) / ImageNet std per RGB channel ('torch' mode): a Normalization with no weights.

    Args:
        name: the layer's name.
        pixel_scale: the scale of the pixels it receives: 255 for raw 0..255 pixels, 1 after a
            1/255 rescaling (keras.applications' order).

    Example:
        >>> import numpy as np
        >>> layer = imagenet_standardization()
        >>> layer(np.array([[255 * 0.485, 255 * 0.456, 255 * 0.406]], "float32")).numpy().round(6)
        array([[0., 0., 0.]], dtype=float32)
    """
    return keras.layers.Normalization(
        mean=[pixel_scale * m for m in IMAGENET_RGB_MEAN],
        variance=[(pixel_scale * s) ** 2 for s in IMAGENET_RGB_STD],
        name=name,
    )


def tf_preprocessing(name: str = "preprocess") -> keras.layers.Rescaling:
    """keras.applications' 'tf' ``preprocess_input``, x / 127.5 − 1: raw 0..255 pixels to −1..1.

    Example:
        >>> import numpy as np
        >>> tf_preprocessing()(np.array([0.0, 127.5, 255.0], "float32")).numpy()
        array([-1.,  0.,  1.], dtype=float32)
    """
    return keras.layers.Rescaling(1 / 127.5, offset=-1.0, name=name)
