"""ImagePipeline operators: background change and background remove."""

from __future__ import annotations

from typing import Any

from airflow_bgreplace.hooks.imagepipeline import ImagePipelineHook
from airflow_bgreplace.operators.base import BgReplaceOperator
from airflow_bgreplace.vendors.inputs import ImageSource


class ImagePipelineBackgroundChangeOperator(BgReplaceOperator):
    """Restage the product on a prompted background (ImagePipeline ``/background/change/image/v1``).

    ImagePipeline has no public cancel: on timeout or kill the task stops waiting.
    """

    hook_class = ImagePipelineHook
    endpoint = "background/change"
    input_fields = (
        "input_image",
        "prompt",
        "use_segmentation",
        "subject_description",
        "tone_correction",
        "has_text",
        "seed",
        "output_format",
    )
    image_fields = ("input_image",)

    def __init__(
        self,
        *,
        input_image: ImageSource,
        prompt: str,
        use_segmentation: bool | None = None,
        subject_description: str | None = None,
        tone_correction: float | str | None = None,
        has_text: bool | None = None,
        seed: int | str | None = None,
        output_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.input_image = input_image
        self.prompt = prompt
        self.use_segmentation = use_segmentation
        self.subject_description = subject_description
        self.tone_correction = tone_correction
        self.has_text = has_text
        self.seed = seed
        self.output_format = output_format


class ImagePipelineBackgroundRemoveOperator(BgReplaceOperator):
    """Cut the product out, optionally onto a flat colour with a drop shadow (``/background/remove/image/v1``).

    Without ``recolor`` the result is a transparent cut-out. ``drop_shadow`` needs ``recolor``.
    """

    hook_class = ImagePipelineHook
    endpoint = "background/remove"
    input_fields = (
        "input_image",
        "recolor",
        "drop_shadow",
        "shadow_opacity",
        "shadow_blur",
        "shadow_dy",
        "shadow_dx",
        "output_format",
    )
    image_fields = ("input_image",)

    def __init__(
        self,
        *,
        input_image: ImageSource,
        recolor: str | None = None,
        drop_shadow: bool | None = None,
        shadow_opacity: float | str | None = None,
        shadow_blur: float | str | None = None,
        shadow_dy: float | str | None = None,
        shadow_dx: float | str | None = None,
        output_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.input_image = input_image
        self.recolor = recolor
        self.drop_shadow = drop_shadow
        self.shadow_opacity = shadow_opacity
        self.shadow_blur = shadow_blur
        self.shadow_dy = shadow_dy
        self.shadow_dx = shadow_dx
        self.output_format = output_format
