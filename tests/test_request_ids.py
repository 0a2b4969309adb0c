"""Request ids: shaped like AWS's (UUID 4), unique within a process, across a fork and
across restarts."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from skylift.ids import hex_id, request_id

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_ids_are_uuid4_shaped_and_unique():
    ids = [request_id() for _ in range(100_000)]
    assert all(UUID4.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_child_does_not_repeat_its_parents_ids():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.write(write, " ".join(request_id() for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    ours = {request_id() for _ in range(100)}
    with os.fdopen(read) as pipe:
        theirs = set(pipe.read().split())
    os.waitpid(pid, 0)
    assert len(theirs) == 100 and not ours & theirs


def test_a_restarted_server_does_not_repeat_ids():
    code = "from skylift.ids import request_id; print(' '.join(request_id() for _ in range(50)))"
    runs = [
        set(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout.split()
        )
        for _ in range(2)
    ]
    assert len(runs[0]) == len(runs[1]) == 50 and not runs[0] & runs[1]


def test_trace_ids_have_x_rays_shape():
    from skylift.runtime.environ import new_trace_id

    trace = new_trace_id()
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0", trace)
    assert new_trace_id() != trace and len(hex_id(24)) == 24
