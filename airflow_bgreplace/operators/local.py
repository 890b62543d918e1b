"""Operators of the embedded ``local`` engine: same parameters, same XCom as the paid vendors.

They run the engine in the worker (no triggerer, no key, no network) and never defer: the job
is finished when the submit returns. Each result says in the job's ``raw["engine"]`` which
segmentation path it used and whether its confidence was low.
"""

from __future__ import annotations

from typing import Any

from airflow_bgreplace.hooks.local import LocalHook
from airflow_bgreplace.operators.base import BgReplaceOperator
from airflow_bgreplace.vendors.inputs import ImageSource
from airflow_bgreplace.vendors.local import COLOR, REMOVE, REPLACE


class LocalBackgroundRemoveOperator(BgReplaceOperator):
    """Cut the product out: a transparent PNG/WebP (or white behind a JPEG)."""

    hook_class = LocalHook
    endpoint = REMOVE
    input_fields = ("image", "output_format")
    image_fields = ("image",)

    def __init__(self, *, image: ImageSource, output_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.image = image
        self.output_format = output_format


class LocalBackgroundColorOperator(BgReplaceOperator):
    """The product on a flat colour (``#RRGGBB`` or ``r,g,b``) with soft shading and an optional shadow."""

    hook_class = LocalHook
    endpoint = COLOR
    input_fields = (
        "image",
        "color",
        "shading",
        "drop_shadow",
        "shadow_opacity",
        "shadow_blur",
        "shadow_dy",
        "shadow_dx",
        "output_format",
    )
    image_fields = ("image",)

    def __init__(
        self,
        *,
        image: ImageSource,
        color: str | tuple[int, int, int],
        shading: float | None = None,
        drop_shadow: bool | None = None,
        shadow_opacity: float | None = None,
        shadow_blur: float | None = None,
        shadow_dy: float | None = None,
        shadow_dx: float | None = None,
        output_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.image = image
        self.color = color
        self.shading = shading
        self.drop_shadow = drop_shadow
        self.shadow_opacity = shadow_opacity
        self.shadow_blur = shadow_blur
        self.shadow_dy = shadow_dy
        self.shadow_dx = shadow_dx
        self.output_format = output_format


class LocalBackgroundReplaceOperator(BgReplaceOperator):
    """The product onto a reference scene, or onto a studio backdrop derived from ``prompt``.

    The prompt path is the offline stand-in for generative scenes: colours and materials named
    in the prompt shape a procedural backdrop; nothing is generated.
    """

    hook_class = LocalHook
    endpoint = REPLACE
    input_fields = ("image", "reference", "prompt", "seed", "output_format")
    image_fields = ("image",)

    def __init__(
        self,
        *,
        image: ImageSource,
        reference: ImageSource | None = None,
        prompt: str | None = None,
        seed: int | None = None,
        output_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.image = image
        self.reference = reference
        self.prompt = prompt
        self.seed = seed
        self.output_format = output_format
