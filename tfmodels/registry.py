"""MODEL name -> Recipe. ``tfmodels list`` prints them.

A recipe module in ``tfmodels/recipes`` describes one model end to end and registers itself:

    RECIPE = register(Recipe(name="mnist_cnn", description="...", config=MnistCnnConfig,
                             datasets=datasets, model=model, compile_args=compile_args,
                             serving=serving))

Importing :mod:`tfmodels.recipes` imports every recipe module, so the registry is complete
as soon as anything asks it for a name.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import pkgutil
from typing import Any, Callable, Optional

from tfmodels.config import TrainConfig


class UnknownModelError(KeyError):
    """A MODEL name that no recipe registers."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything the shared trainer and exporter need to know about one model.

    Args:
        name: the MODEL name (``make train MODEL=<name>``).
        description: one line for ``tfmodels list``.
        config: the recipe's :class:`~tfmodels.config.TrainConfig` subclass, with presets.
        datasets: ``cfg -> pipelines.splits.Splits`` of *unbatched* ``(features, label)`` or
            ``(features, label, sample_weight)`` datasets (Keras ``fit``'s element forms).
        model: ``cfg -> keras.Model`` (a pure builder from ``tfmodels.models``).
            ``datasets`` and ``model`` are the only places a recipe derives its run assets
            (vocabularies, class names, statistics: :mod:`tfmodels.training.run_assets`); every
            later stage and ``tfmodels evaluate|export`` read them from the run folder.
        compile_args: ``cfg -> dict`` with ``loss`` and ``metrics`` (the trainer adds the optimizer).
        serving: ``(cfg, model) -> tfmodels.export.signatures.Serving``: the signatures of the export.
        serving_examples: ``(cfg, model, test) -> {signature: ServingExample}``: for each
            signature, a request in raw form (image bytes, strings) built from a few examples of
            the unbatched ``test`` split, and the answers the evaluation path (the model called
            on the test pipeline's tensors, no serving code) gives for them. They are the
            export's warm-up requests and what ``verify-export`` checks the served answers against.
        report: optional ``(cfg, model, splits, run_dir) -> dict`` adding recipe-specific results
            (baselines, closed-form solutions, prediction files) to ``metrics.json``.
        train_transform: optional ``cfg -> fn(x_batch, y_batch[, weights]) -> (x_batch, y_batch[, weights])``
            (the same arity as the elements), applied to every *training* batch after shuffling
            and batching, anew each epoch (random augmentation, MixUp, CutMix, BERT's dynamic
            masking); validation, test and serving never see it.
        train_element_transform: optional ``cfg -> fn(seed, x, y[, weights]) -> (x, y[, weights])``,
            applied to every *training* example after shuffling and before batching, with a
            stateless ``seed`` int64 ``[2]`` drawn from the run seed, the epoch and the example's
            position (segmentation's joint random crop of images of any size); the rest as
            ``train_transform``.
    """

    name: str
    description: str
    config: type[TrainConfig]
    datasets: Callable[[Any], Any]
    model: Callable[[Any], Any]
    compile_args: Callable[[Any], dict]
    serving: Callable[[Any, Any], Any]
    serving_examples: Callable[[Any, Any, Any], Any]
    report: Optional[Callable[..., dict]] = None
    train_transform: Optional[Callable[[Any], Callable]] = None
    train_element_transform: Optional[Callable[[Any], Callable]] = None


_RECIPES: dict[str, Recipe] = {}
_loaded = False


def register(recipe: Recipe) -> Recipe:
    if recipe.name in _RECIPES:
        raise ValueError(f"MODEL {recipe.name!r} is registered twice")
    _RECIPES[recipe.name] = recipe
    return recipe


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    import tfmodels.recipes as recipes_pkg

    for module in pkgutil.iter_modules(recipes_pkg.__path__):
        importlib.import_module(f"{recipes_pkg.__name__}.{module.name}")
    _loaded = True


def names() -> list[str]:
    _load_all()
    return sorted(_RECIPES)


def get(name: str) -> Recipe:
    """Returns the recipe for ``name``; an unknown name raises with the closest matches."""
    _load_all()
    if name in _RECIPES:
        return _RECIPES[name]
    close = difflib.get_close_matches(name, _RECIPES, n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownModelError(
        f"unknown MODEL {name!r}.{hint} Run `tfmodels list` to see all {len(_RECIPES)} models."
    )


def describe() -> list[tuple[str, str]]:
    return [(name, _RECIPES[name].description) for name in names()]
