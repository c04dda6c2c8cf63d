"""Weight compatibility with ``keras.applications``: copy a reference model's weights into ours.

Our image classifiers take raw pixels (0..255) and do the reference's ``preprocess_input`` inside
the model; their weight-bearing layers are built in the same order as the keras.applications
model of the same architecture, so weights transfer layer by layer. With ``weights="imagenet"``
a builder downloads the reference (online, once, cached in ``~/.keras/models``) and copies it.
"""

from __future__ import annotations

import keras

from tfmodels.models.backbone import weighted_layers


def copy_weights(source: keras.Model, target: keras.Model) -> None:
    """Copies every weight of ``source`` into ``target``, layer by layer, in build order.

    Raises:
        ValueError: naming the first layer pair whose type or weight shapes differ.
    """
    src_layers, dst_layers = weighted_layers(source), weighted_layers(target)
    if len(src_layers) != len(dst_layers):
        raise ValueError(
            f"{source.name} has {len(src_layers)} layers with weights, {target.name} has {len(dst_layers)}"
        )
    for src, dst in zip(src_layers, dst_layers):
        src_shapes = [tuple(w.shape) for w in src.weights]
        dst_shapes = [tuple(w.shape) for w in dst.weights]
        if type(src) is not type(dst) or src_shapes != dst_shapes:
            raise ValueError(
                f"cannot copy {src.name} ({type(src).__name__} {src_shapes}) into "
                f"{dst.name} ({type(dst).__name__} {dst_shapes})"
            )
        dst.set_weights(src.get_weights())


def check_weights(weights: str | None) -> None:
    """Refuses any ``weights`` but ``None`` (random initialisation) and ``"imagenet"``.

    Raises:
        ValueError: for any other value (e.g. a file path).
    """
    if weights not in (None, "imagenet"):
        raise ValueError(f"weights must be None or 'imagenet', got {weights!r}")


def load_imagenet_weights(model: keras.Model, application, **application_kwargs) -> None:
    """Builds ``application`` with its ImageNet weights and copies them into ``model``.

    The reference is built with ``weights="imagenet"`` (downloaded once, cached in
    ``~/.keras/models``) and ``classifier_activation=None``, so its top, like ours, gives logits;
    each builder checks beforehand that the weights fit its configuration.

    Args:
        model: our model, built in the application's layer order.
        application: a keras.applications constructor, e.g. ``keras.applications.ResNet50``.
        **application_kwargs: the rest of the application's arguments (``include_top``,
            ``input_shape``, ...).
    """
    copy_weights(application(weights="imagenet", classifier_activation=None, **application_kwargs), model)
