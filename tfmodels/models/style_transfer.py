"""Neural style transfer (Gatys, Ecker & Bethge 2016): optimise an image, not a network.

Spec: notes-002-part2.md §19 (seed 002 L2389–2441). The synthesised image is initialised as the
content image (L2403) and is the **only variable updated**; the CNN is frozen and shared by the
content, style and synthesised images (L2406–2410). Content features come from one layer near the
output, style features from several layers at different depths (L2415–2417); only the layers up to
the deepest one chosen are needed (L2418), and the content image's features and the style image's
Gram matrices are extracted **once before training** (L2419). The loss is a weighted sum of
content, style (Gram, L2441) and total-variation losses (L2423–2424); the trained "parameter" is the
final image (L2428–2431).

Formulas, [REF d2l] (the notes give none; §19 "verified in d2l-derived code"), for a feature map
``X`` reshaped to ``c × hw``:

    gram(X)       = X Xᵀ / (c·h·w)
    content loss  = mean((Ŷ − Y)²)                      per content layer
    style loss    = mean((gram(Ŷ) − gram(Y))²)         per style layer
    TV loss       = ½ (mean|x[i+1, j] − x[i, j]| + mean|x[i, j+1] − x[i, j]|)
    total         = w_c Σ content + w_s Σ style + w_tv TV,  (w_c, w_s, w_tv) = (1, 1e3, 10)

(d2l's code sums ``10 * styles_l + contents_l + [tv_l]``: Python list repetition, which counts the
style terms ten times; the notes' sum above counts each once, and so do we.)

The image lives in d2l's normalised space, ``z = (pixels / 255 − mean) / std`` with ImageNet's RGB
mean and std (d2l's ``preprocess``), so d2l's Adam learning rate 0.3 means what it meant there.
The extractor reads raw pixels ``255 (z·std + mean)`` (our VGG takes 0..255 pixels and applies
keras.applications' 'caffe' preprocessing inside, so ImageNet weights load unchanged); the TV loss is
taken on ``z`` as in d2l. The result is d2l's ``postprocess``: un-normalised and clamped to [0, 1].

**Feature units.** d2l's loss weights were tuned on torchvision's VGG-19, which reads ``z``;
keras.applications' VGG-19 (Caffe's weights) reads 'caffe' pixels, about :data:`FEATURE_SCALE`
(= 255 × mean ImageNet std) times larger, and its features are as many times larger too
(convolutions with biases scaled alike, ReLU and max-pooling are positively homogeneous). The
features are therefore divided by :data:`FEATURE_SCALE` — read in the units of ``z`` — so that
(1, 1e3, 10) weigh content, style (∝ features⁴) and TV as they do in d2l; without it the style term
is some 10⁷ times heavier.

**Layers.** d2l indexes torchvision's ``vgg19.features`` (conv, ReLU, …, max-pool per block):
style ``[0, 5, 10, 19, 28]`` and content ``[25]`` (§19). :func:`vgg19_feature_name` walks the same
layout and maps them to keras.applications' VGG19 names: 0 → ``block1_conv1``, 5 → ``block2_conv1``,
10 → ``block3_conv1``, 19 → ``block4_conv1``, 28 → ``block5_conv1`` and 25 → ``block4_conv4``.
d2l reads those convolutions *before* their ReLU; Keras' VGG convolutions have the ReLU built in, so
ours are the post-ReLU responses — the features Gatys et al. used (Caffe's in-place ReLU overwrites
the conv output) and the ones keras.io's style-transfer example uses.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfmodels.layers.preprocessing import IMAGENET_RGB_MEAN, IMAGENET_RGB_STD
from tfmodels.models.vgg import VGG19_ARCH, build_vgg19

# d2l's choice (§19): indices into torchvision's vgg19.features, mapped by vgg19_feature_name.
D2L_STYLE_INDICES = (0, 5, 10, 19, 28)
D2L_CONTENT_INDICES = (25,)
# The 'caffe' input's scale relative to d2l's normalised input (module docstring, "Feature units").
FEATURE_SCALE = 255.0 * sum(IMAGENET_RGB_STD) / len(IMAGENET_RGB_STD)


def vgg19_feature_name(index: int) -> str:
    """keras.applications' VGG19 layer name of torchvision's ``vgg19.features[index]``.

    torchvision's ``features`` lists, block by block, ``(conv, ReLU)`` per convolution of
    :data:`~tfmodels.models.vgg.VGG19_ARCH` and then a max-pool; Keras names the same layers
    ``block{b}_conv{i}`` (ReLU inside) and ``block{b}_pool``. A ReLU index names its convolution.

    Args:
        index: a position in ``vgg19.features`` (0 … 36).

    Returns:
        The Keras layer name.

    Example:
        >>> [vgg19_feature_name(i) for i in (0, 5, 25, 28)]
        ['block1_conv1', 'block2_conv1', 'block4_conv4', 'block5_conv1']
    """
    position = 0
    for block, (num_convs, _) in enumerate(VGG19_ARCH, start=1):
        for conv in range(1, num_convs + 1):
            if index in (position, position + 1):
                return f"block{block}_conv{conv}"
            position += 2
        if index == position:
            return f"block{block}_pool"
        position += 1
    raise ValueError(f"vgg19.features has {position} layers; index {index} is outside it")


STYLE_LAYERS = tuple(vgg19_feature_name(i) for i in D2L_STYLE_INDICES)
CONTENT_LAYERS = tuple(vgg19_feature_name(i) for i in D2L_CONTENT_INDICES)


def gram_matrix(features: tf.Tensor) -> tf.Tensor:
    """d2l's Gram matrix ``X Xᵀ / (c·h·w)`` of each feature map of a batch (§19 L2441, [REF d2l]).

    Args:
        features: ``[B, H, W, C]``.

    Returns:
        ``[B, C, C]``, symmetric positive semi-definite.

    Example:
        >>> gram_matrix(tf.ones([1, 2, 2, 4]))[0, 0].numpy().tolist()   # ones / c
        [0.25, 0.25, 0.25, 0.25]
    """
    shape = tf.shape(features)
    size = tf.cast(shape[1] * shape[2] * shape[3], features.dtype)
    return tf.einsum("bhwc,bhwd->bcd", features, features) / size


def total_variation_loss(images: tf.Tensor) -> tf.Tensor:
    """d2l's TV loss ``½ (mean|Δ_vertical| + mean|Δ_horizontal|)`` of each image (§19, [REF d2l]).

    Args:
        images: ``[B, H, W, C]`` (H, W ≥ 2).

    Returns:
        ``[B]``; 0 for a constant image.

    Example:
        >>> float(total_variation_loss(tf.constant([[[[0.0], [1.0]], [[0.0], [1.0]]]]))[0])  # 2x2 stripes
        0.5
    """
    vertical = tf.reduce_mean(tf.abs(images[:, 1:] - images[:, :-1]), axis=[1, 2, 3])
    horizontal = tf.reduce_mean(tf.abs(images[:, :, 1:] - images[:, :, :-1]), axis=[1, 2, 3])
    return 0.5 * (vertical + horizontal)


def _mean_squared_error(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """``mean((a − b)²)`` over all but the batch axis: ``[B]``."""
    return tf.reduce_mean(tf.reshape(tf.square(a - b), [tf.shape(a)[0], -1]), axis=1)


def build_vgg19_extractor(
    image_size: tuple[int, int],
    layer_names,
    width_divisor: int = 1,
    weights: str | None = None,
) -> keras.Model:
    """VGG-19 from raw pixels up to the deepest of ``layer_names``, returning their outputs (§19 L2418, L2425).

    The layers and names are :func:`tfmodels.models.vgg.build_vgg19`'s (keras.applications'), so
    ``weights="imagenet"`` loads keras.applications.VGG19's ImageNet weights. Only the layers on the
    way to the requested outputs are kept.

    Random features (``weights=None``, the offline default; textures from random CNN features are
    Ustyuzhaninov et al. 2016's result): the kernels are drawn He-normal (He et al. 2015, variance
    2 / fan-in), which keeps the activations' scale through ReLU layers. Keras' default Glorot
    initialisation shrinks them about √2 per layer, so that block 4 and 5 — the content layer
    among them — would carry almost nothing after 10+ layers.

    Args:
        image_size: ``(height, width)``, each ≥ 16 (block 5 sits after four 2×2 pools).
        layer_names: Keras layer names, e.g. :data:`STYLE_LAYERS` + :data:`CONTENT_LAYERS`.
        width_divisor: divides every convolution's channels (a slim VGG-19 for tests; ImageNet
            weights need 1).
        weights: ``None`` (random He-normal kernels, zero biases) or ``"imagenet"`` (downloads once).

    Returns:
        A functional model ``pixels [B, H, W, 3] in 0..255 -> [features of each layer]``.

    Example:
        >>> extractor = build_vgg19_extractor((32, 48), ["block1_conv1", "block5_conv1"], width_divisor=8)
        >>> [tuple(t.shape) for t in extractor.outputs]
        [(None, 32, 48, 8), (None, 2, 3, 64)]
    """
    vgg = build_vgg19(input_shape=(*image_size, 3), include_top=False, weights=weights, width_divisor=width_divisor)
    if weights is None:
        for layer in vgg.layers:
            if isinstance(layer, keras.layers.Conv2D):
                layer.kernel.assign(keras.initializers.HeNormal()(layer.kernel.shape))
    outputs = [vgg.get_layer(name).output for name in layer_names]
    return keras.Model(vgg.input, outputs, name="vgg19_features")


@keras.saving.register_keras_serializable(package="tfmodels")
class StyleTransfer(keras.Model):
    """The synthesised image as the one trainable weight of a Keras model, with its own ``train_step`` (§19).

    Weights: ``synthesised_image`` ``[1, H, W, 3]`` (trainable, d2l's normalised space), the frozen
    ``extractor`` and, non-trainable, the content features and style Gram matrices of the targets
    (set once by :meth:`set_targets`, before training, L2419). Being weights, the image and the
    targets are saved in checkpoints, ``BackupAndRestore`` state and ``model.keras``, so a killed
    run resumes and a saved model needs nothing else.

    ``train_step`` ignores its batch (the trainer's data are step markers), takes the gradient of
    the total loss with respect to the image only and applies it: the extractor's weights cannot
    change, whatever their ``trainable`` flag. It and ``test_step`` log ``loss`` (the weighted
    total) and its weighted parts ``content_loss``, ``style_loss`` and ``tv_loss``, all of the
    image *before* the step (d2l logs them so too).

    ``call(pixels)`` scores any images ``[B, H, W, 3]`` (raw 0..255 pixels) against the targets:
    ``{"loss", "content_loss", "style_loss", "tv_loss"}``, each ``[B]`` (the served function).

    Args:
        extractor: ``pixels -> [style layer outputs..., content layer outputs...]``
            (:func:`build_vgg19_extractor` with ``style_layers + content_layers``).
        num_style_layers: how many of the extractor's outputs, first, are style layers; the rest
            are content layers.
        content_weight, style_weight, tv_weight: the loss weights (d2l: 1, 1e3, 10).
        name: the model name.

    Example:
        >>> extractor = build_vgg19_extractor((32, 32), [*STYLE_LAYERS, *CONTENT_LAYERS], width_divisor=16)
        >>> model = StyleTransfer(extractor, num_style_layers=len(STYLE_LAYERS))
        >>> content, style = tf.fill([32, 32, 3], 100.0), tf.random.uniform([32, 32, 3], 0, 255)
        >>> model.set_targets(content, style)
        >>> float(model(content[None])["content_loss"][0])   # initialised as the content image
        0.0
        >>> [w.name for w in model.trainable_weights]
        ['synthesised_image']
    """

    def __init__(self, extractor: keras.Model, num_style_layers: int, content_weight: float = 1.0,
                 style_weight: float = 1e3, tv_weight: float = 10.0, name: str = "style_transfer", **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0 < num_style_layers < len(extractor.outputs):
            raise ValueError(f"the extractor's {len(extractor.outputs)} outputs must hold style layers, then content layers; "
                             f"got num_style_layers={num_style_layers}")
        extractor.trainable = False  # frozen (L2406–2410); train_step differentiates the image only anyway
        self.extractor = extractor
        self.num_style_layers = num_style_layers
        self.content_weight, self.style_weight, self.tv_weight = float(content_weight), float(style_weight), float(tv_weight)
        height, width = extractor.input_shape[1:3]
        self.image = self.add_weight(shape=(1, height, width, 3), initializer="zeros", name="synthesised_image")
        feature_shapes = [tuple(t.shape[1:]) for t in extractor.outputs]
        self.style_grams = [
            self.add_weight(shape=(1, s[-1], s[-1]), initializer="zeros", trainable=False, name=f"style_gram_{i}")
            for i, s in enumerate(feature_shapes[:num_style_layers])
        ]
        self.content_features = [
            self.add_weight(shape=(1, *s), initializer="zeros", trainable=False, name=f"content_features_{i}")
            for i, s in enumerate(feature_shapes[num_style_layers:])
        ]
        self.trackers = {key: keras.metrics.Mean(name=key) for key in ("loss", "content_loss", "style_loss", "tv_loss")}
        self.built = True

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.image.shape[1:3])

    @staticmethod
    def normalise(pixels: tf.Tensor) -> tf.Tensor:
        """d2l's ``preprocess``: 0..255 pixels to ``(pixels / 255 − mean) / std`` (ImageNet RGB statistics)."""
        return (tf.cast(pixels, tf.float32) / 255.0 - IMAGENET_RGB_MEAN) / IMAGENET_RGB_STD

    @staticmethod
    def to_pixels(normalised: tf.Tensor) -> tf.Tensor:
        """The inverse of :meth:`normalise` (no clamping: the extractor's input during training)."""
        return (normalised * IMAGENET_RGB_STD + IMAGENET_RGB_MEAN) * 255.0

    def stylized_pixels(self) -> tf.Tensor:
        """d2l's ``postprocess`` of the synthesised image: un-normalised, clamped, as 0..255 pixels ``[H, W, 3]``."""
        return tf.clip_by_value(self.to_pixels(self.image[0]) / 255.0, 0.0, 1.0) * 255.0

    def _features(self, normalised: tf.Tensor) -> tuple[list[tf.Tensor], list[tf.Tensor]]:
        outputs = [y / FEATURE_SCALE for y in self.extractor(self.to_pixels(normalised), training=False)]
        return outputs[: self.num_style_layers], outputs[self.num_style_layers :]

    def set_targets(self, content_pixels: tf.Tensor, style_pixels: tf.Tensor) -> None:
        """Extracts the targets once (L2419) and initialises the image as the content image (L2403).

        Args:
            content_pixels, style_pixels: ``[H, W, 3]`` raw pixels (0..255) at the model's image size.
        """
        content = self.normalise(content_pixels)[None]
        _, content_features = self._features(content)
        style_features, _ = self._features(self.normalise(style_pixels)[None])
        for weight, features in zip(self.content_features, content_features):
            weight.assign(features)
        for weight, features in zip(self.style_grams, style_features):
            weight.assign(gram_matrix(features))
        self.image.assign(content)

    def objective(self, normalised: tf.Tensor) -> dict[str, tf.Tensor]:
        """The weighted losses of images in d2l's normalised space ``[B, H, W, 3]``; each ``[B]``."""
        style_features, content_features = self._features(normalised)
        content = tf.add_n([_mean_squared_error(y, target) for y, target in zip(content_features, self.content_features)])
        style = tf.add_n([_mean_squared_error(gram_matrix(y), target) for y, target in zip(style_features, self.style_grams)])
        losses = {
            "content_loss": self.content_weight * content,
            "style_loss": self.style_weight * style,
            "tv_loss": self.tv_weight * total_variation_loss(normalised),
        }
        return {"loss": tf.add_n(list(losses.values())), **losses}

    def call(self, pixels):
        return self.objective(self.normalise(pixels))

    @property
    def metrics(self):
        return list(self.trackers.values())

    def _log(self, losses: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        for key, tracker in self.trackers.items():
            tracker.update_state(tf.reduce_mean(losses[key]))
        return {key: tracker.result() for key, tracker in self.trackers.items()}

    def train_step(self, data):
        with tf.GradientTape() as tape:
            losses = self.objective(self.image)
        gradient = tape.gradient(losses["loss"], self.image)
        self.optimizer.apply_gradients([(gradient, self.image)])
        return self._log(losses)

    def test_step(self, data):
        return self._log(self.objective(self.image))

    def get_config(self):
        return {
            "extractor": keras.saving.serialize_keras_object(self.extractor),
            "num_style_layers": self.num_style_layers,
            "content_weight": self.content_weight,
            "style_weight": self.style_weight,
            "tv_weight": self.tv_weight,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["extractor"] = keras.saving.deserialize_keras_object(config["extractor"], custom_objects=custom_objects)
        return cls(**config)
