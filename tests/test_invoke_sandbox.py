"""`skylift invoke` makes the sandbox's cgroups before it starts any zygote: on a
cgroup-v2 host the server may move itself into a leaf group to enable the memory and
pids controllers for its instances, which a zygote already left in its old group forbids
(the limits would fall back to RLIMIT_AS)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from skylift.cli import main
from skylift.engine import cgroup_host, zygote_process


class Exited(Exception):
    """`os._exit`, caught: `skylift invoke` ends its process that way."""


def test_invoke_makes_the_sandbox_cgroups_before_its_zygote_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    parent = cgroup_host.own_folder("cgroup2", "")
    if parent is None or not os.access(parent, os.W_OK):
        pytest.skip("no cgroup2 folder this user may make groups in")
    server_groups = os.path.join(parent, cgroup_host.server_tag())
    (tmp_path / "app.py").write_text(
        textwrap.dedent("""
        from skylift import App
        app = App()

        @app.function()
        def hello(event, context):
            return "hello"
        """)
    )
    seen: list[bool] = []
    spawn = zygote_process.spawn

    def watched(code_dir: str) -> zygote_process.Started:
        seen.append(os.path.isdir(server_groups))  # the server's groups, made already?
        return spawn(code_dir)

    def exit_(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(zygote_process, "spawn", watched)
    monkeypatch.setattr(os, "_exit", exit_)
    with pytest.raises(Exited) as ended:
        main.main(["invoke", str(tmp_path / "app.py")], standalone_mode=False)
    assert ended.value.args == (0,)
    assert capfd.readouterr().out.strip() == '"hello"'
    assert seen == [True]  # one zygote (the spare, taken over), started inside the sandbox
    assert not os.path.exists(server_groups)  # and gone with it
