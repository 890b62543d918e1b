"""The vendored u2netp file and the onnxruntime session settings."""

from __future__ import annotations

import hashlib

import pytest

from airflow_bgreplace.engine import model
from airflow_bgreplace.engine.settings import DEFAULT_MODEL_PATH, ENV_THREADS, available_cores


def test_vendored_weights_match_the_published_checksum() -> None:
    assert hashlib.sha256(DEFAULT_MODEL_PATH.read_bytes()).hexdigest() == model.U2NETP_SHA256
    notice = (DEFAULT_MODEL_PATH.parent / "NOTICE").read_text()
    assert "Apache License, Version 2.0" in notice and "Xuebin Qin" in notice and "rembg" in notice
    assert (
        (DEFAULT_MODEL_PATH.parent / "LICENSE-U2NET-APACHE-2.0.txt").read_text().startswith(" " * 30 + "Apache License")
    )


def test_session_is_created_once_and_reused() -> None:
    first, reason = model.get_session()
    assert reason is None
    second, _ = model.get_session()
    assert first is second


def test_session_options_follow_the_recommendation(monkeypatch: pytest.MonkeyPatch) -> None:
    session, _ = model.get_session()
    options = session.get_session_options()
    # Buffers reused between runs (no page-faulting ~0.3 GB per image), no up-front pattern block.
    assert options.enable_cpu_mem_arena is True and options.enable_mem_pattern is False
    assert options.intra_op_num_threads == available_cores()
    assert options.inter_op_num_threads == 1
    monkeypatch.setenv(ENV_THREADS, "1")
    single, _ = model.get_session()
    assert single is not session and single.get_session_options().intra_op_num_threads == 1
