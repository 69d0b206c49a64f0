"""The foreground session without an engine (supervise.py): a fake service whose log ends,
and the state folder a replacement writes."""

from __future__ import annotations

import pytest

from amldebug import supervise
from amldebug.engine.statefile import StateFile, state_folder
from amldebug.errors import ContainerError
from amldebug.session import Attached


class FakeService:
    def __init__(self, name: str, *, state: str, session: str = "ours", lines=("line at /var/azureml-app/x",)):
        self.name, self.state, self.session, self._lines = name, state, session, lines
        self.spec = type("Spec", (), {"source_dir": "/src"})()
        self.deleted = False

    def follow_logs(self):
        return iter(self._lines)

    def get_logs(self, num_lines=30):
        return "last lines"

    def delete(self):
        self.deleted = True


def _console(out: list, notes: list) -> supervise.Console:
    return supervise.Console(out=out.append, note=notes.append,
                             local=lambda spec: lambda line: line.replace("/var/azureml-app", "/src"))


def test_a_service_taken_over_by_another_start_ends_the_session_with_a_line():
    StateFile(state_folder("svc-a")).reset(session="theirs")
    service = FakeService("svc-a", state="Deleted")
    out, notes = [], []
    supervise.run_foreground(lambda: Attached(service, None), lambda result: None, _console(out, notes), watch=False)
    assert out == ["line at /src/x"]  # the log's paths as local files
    assert "taken over by another 'amldebug attach'" in notes[-1] and not service.deleted


def test_a_service_removed_by_down_ends_the_session_with_a_line(monkeypatch):
    monkeypatch.setattr(supervise, "session_of", lambda name: None)
    service = FakeService("svc-b", state="Deleted")
    assert "was removed ('amldebug down'?)" in supervise.removed_elsewhere(service, settle=0.1)


def test_a_service_that_stopped_by_itself_is_an_error_and_is_removed():
    StateFile(state_folder("svc-c")).reset(session="ours")
    service = FakeService("svc-c", state="Failed")
    with pytest.raises(ContainerError, match="stopped"):
        supervise.run_foreground(lambda: Attached(service, None), lambda result: None, _console([], []), watch=False)
    assert service.deleted


def test_ctrl_c_while_starting_leaves_the_exit_to_the_caller():
    def start():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        supervise.run_foreground(start, lambda result: None, _console([], []), watch=False)
