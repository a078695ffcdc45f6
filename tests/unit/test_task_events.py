"""Celery task events (Flower): on by default, NODEFARM_TASK_EVENTS=0 leaves them to a monitor's request."""

from __future__ import annotations

import pytest

from nodes.settings import Settings
from worker.celery_app import make_celery


@pytest.mark.parametrize(("value", "sent"), [(None, True), ("1", True), ("0", False), ("false", False)])
def test_task_events_setting(monkeypatch: pytest.MonkeyPatch, value: str | None, sent: bool) -> None:
    if value is None:
        monkeypatch.delenv("NODEFARM_TASK_EVENTS", raising=False)
    else:
        monkeypatch.setenv("NODEFARM_TASK_EVENTS", value)
    settings = Settings.from_env()
    assert settings.task_events is sent
    conf = make_celery(settings).conf
    assert conf.worker_send_task_events is sent
    assert conf.event_serializer == "json" and conf.accept_content == ["json"]  # events stay JSON, never pickle
