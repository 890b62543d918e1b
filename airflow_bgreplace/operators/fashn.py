"""FASHN operator: ``background-change``."""

from __future__ import annotations

from typing import Any

from airflow_bgreplace.hooks.fashn import FashnHook
from airflow_bgreplace.operators.base import BgReplaceOperator
from airflow_bgreplace.vendors.inputs import ImageSource


class FashnBackgroundChangeOperator(BgReplaceOperator):
    """Generate a new background from a prompt around the detected subject (FASHN, 1 credit).

    ``image`` may be a URL, path, ``ObjectStoragePath`` or bytes (local images are sent inline).
    FASHN has no cancel: on timeout or kill the task stops waiting, the prediction goes on.
    """

    hook_class = FashnHook
    endpoint = "background-change"
    input_fields = ("image", "prompt", "seed", "output_format", "return_base64")
    image_fields = ("image",)

    def __init__(
        self,
        *,
        image: ImageSource,
        prompt: str,
        seed: int | str | None = None,
        output_format: str | None = None,
        return_base64: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.image = image
        self.prompt = prompt
        self.seed = seed
        self.output_format = output_format
        self.return_base64 = return_base64
