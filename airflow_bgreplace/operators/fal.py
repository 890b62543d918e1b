"""fal.ai operator: ``bria/replace-background`` through fal's queue."""

from __future__ import annotations

from typing import Any

from airflow_bgreplace.hooks.fal import FalHook
from airflow_bgreplace.operators.base import BgReplaceOperator
from airflow_bgreplace.vendors.inputs import ImageSource


class FalReplaceBackgroundOperator(BgReplaceOperator):
    """Replace the background from a prompt with Bria on fal.ai.

    ``image_url`` may be a URL, path, ``ObjectStoragePath`` or bytes (sent inline, or uploaded to
    fal storage with the connection extra ``use_vendor_upload``). fal can cancel: a timed-out or
    killed task cancels its request.
    """

    hook_class = FalHook
    endpoint = "bria/replace-background"
    input_fields = ("image_url", "prompt", "negative_prompt", "seed", "steps_num")
    image_fields = ("image_url",)

    def __init__(
        self,
        *,
        image_url: ImageSource,
        prompt: str,
        negative_prompt: str | None = None,
        seed: int | str | None = None,
        steps_num: int | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.image_url = image_url
        self.prompt = prompt
        self.negative_prompt = negative_prompt
        self.seed = seed
        self.steps_num = steps_num
