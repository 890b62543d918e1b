"""Run a deferrable operator to its end the way Airflow does, without a scheduler or a triggerer.

``execute`` -> ``TaskDeferred`` -> the trigger's first event (in a fresh event loop, as the
triggerer would run it) -> the operator's ``method_name`` with the event and the defer kwargs ->
... until the operator returns. The operator, its trigger and its hook are the real ones; only the
scheduler's bookkeeping between the steps is left out. The context carries the task instance's
identity (a fresh run unless one is given: the submission ledger keys on it); optionally the task
state store Airflow 3.3 gives operators is kept in memory across the steps, and a delay between
the event and the resume stands in for the scheduler's latency (result URLs may expire meanwhile).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any


class MemoryTaskStateStore:
    """The ``get``/``set``/``delete`` of Airflow's task state store, for one task instance, in memory."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


@dataclass
class TaskInstanceRef:
    """What a task instance tells its operator about itself (``context["ti"]``): its identity and try."""

    dag_id: str = "driven"
    run_id: str = field(default_factory=lambda: f"manual__{uuid.uuid4().hex}")
    task_id: str = "task"
    map_index: int = -1
    try_number: int = 1


@dataclass
class DriveResult:
    result: Any
    deferrals: int
    triggers: list[str] = field(default_factory=list)


async def _first_event(trigger: Any, timeout_s: float) -> Any:
    async def first() -> Any:
        async for event in trigger.run():
            return event.payload
        raise AssertionError(f"{type(trigger).__name__} ended without an event")

    return await asyncio.wait_for(first(), timeout_s)


def drive(
    operator: Any,
    *,
    context: dict[str, Any] | None = None,
    with_state_store: bool = False,
    resume_delay_s: float = 0.0,
    trigger_timeout_s: float = 60.0,
    max_deferrals: int = 200,
) -> DriveResult:
    """Run ``operator`` to its end; returns its result and how often it deferred.

    An exception raised by the operator (a failed task) propagates, as it would fail the task.
    """
    from airflow.sdk.exceptions import TaskDeferred

    context = dict(context or {})
    context.setdefault("ti", TaskInstanceRef(task_id=operator.task_id))
    if with_state_store:
        context.setdefault("task_state_store", MemoryTaskStateStore())
    triggers: list[str] = []
    try:
        return DriveResult(operator.execute(context=context), 0, triggers)
    except TaskDeferred as deferred:
        pending = deferred
    while len(triggers) < max_deferrals:
        triggers.append(type(pending.trigger).__name__)
        event = asyncio.run(_first_event(pending.trigger, trigger_timeout_s))
        if resume_delay_s:
            time.sleep(resume_delay_s)
        resume = getattr(operator, pending.method_name)
        try:
            return DriveResult(resume(context, event, **(pending.kwargs or {})), len(triggers), triggers)
        except TaskDeferred as deferred:
            pending = deferred
    raise AssertionError(f"{operator.task_id} deferred more than {max_deferrals} times")
