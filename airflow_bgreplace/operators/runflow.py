"""Runflow operators: ``runflow/background-replace`` and ``runflow/background-color``."""

from __future__ import annotations

from typing import Any

from airflow_bgreplace.hooks.runflow import RunflowHook
from airflow_bgreplace.operators.base import BgReplaceOperator
from airflow_bgreplace.vendors.inputs import ImageSource


class RunflowBackgroundReplaceOperator(BgReplaceOperator):
    """Replace the background of a product photo with a reference scene (Runflow, $0.35 a run).

    Pass ``image`` and ``reference`` (URL, path, ``ObjectStoragePath`` or bytes) and the zip the
    model expects is built and staged for you; or pass the documented ``zip_url``, ``file_image``
    and ``file_reference``. ``prompt`` optionally overrides the scene description.

    Runflow has no public cancel: on timeout or kill the task stops waiting, the run goes on.
    """

    hook_class = RunflowHook
    endpoint = "background-replace"
    input_fields = ("image", "reference", "prompt", "zip_url", "file_image", "file_reference")
    image_fields = ("image", "zip_url")

    def __init__(
        self,
        *,
        image: ImageSource | None = None,
        reference: ImageSource | None = None,
        prompt: str | None = None,
        zip_url: str | None = None,
        file_image: str | None = None,
        file_reference: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.image = image
        self.reference = reference
        self.prompt = prompt
        self.zip_url = zip_url
        self.file_image = file_image
        self.file_reference = file_reference


class RunflowBackgroundColorOperator(BgReplaceOperator):
    """Put the product on a flat colour with Runflow's soft shading (Runflow, $0.12 a run).

    ``image_url`` must be a public https URL (Runflow fetches it); ``color_red``/``green``/``blue``
    are 0-255. Runflow has no public cancel.
    """

    hook_class = RunflowHook
    endpoint = "background-color"
    input_fields = ("image_url", "color_red", "color_green", "color_blue")
    image_fields = ("image_url",)

    def __init__(
        self,
        *,
        image_url: ImageSource,
        color_red: int | str,
        color_green: int | str,
        color_blue: int | str,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.image_url = image_url
        self.color_red = color_red
        self.color_green = color_green
        self.color_blue = color_blue
