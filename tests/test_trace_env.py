"""The trace header variable: what a handler, its subprocesses and C code see, and that
a new value per invocation costs no memory."""

from __future__ import annotations

import ctypes
import os
import resource
import subprocess
from collections.abc import Iterator

import pytest

from skylift.runtime.trace_env import NAME, TraceVariable

libc = ctypes.CDLL(None)
libc.getenv.restype = ctypes.c_char_p
libc.getenv.argtypes = [ctypes.c_char_p]
raw_getenv = ctypes.CDLL(None).getenv
raw_getenv.restype = ctypes.c_void_p
raw_getenv.argtypes = [ctypes.c_char_p]


@pytest.fixture
def variable() -> Iterator[TraceVariable]:
    saved = os.environ.get(NAME)
    yield TraceVariable()
    if saved is None:
        os.environ.pop(NAME, None)
    else:
        os.environ[NAME] = saved


def seen() -> tuple[str | None, str | None, str]:
    """The variable as os.environ, C's getenv and a subprocess see it."""
    c_value = libc.getenv(NAME.encode())
    shell = subprocess.run(
        ["sh", "-c", f'echo "${{{NAME}-unset}}"'], capture_output=True, text=True, check=True
    )
    return (
        os.environ.get(NAME),
        None if c_value is None else c_value.decode(),
        shell.stdout.rstrip("\n"),
    )


def test_each_value_is_what_everyone_sees(variable):
    for value in ("Root=1-a;Sampled=0", "Root=1-bb;Parent=cc;Sampled=1", "short"):
        variable.set(value)
        assert seen() == (value, value, value)
    variable.set(None)
    assert seen() == (None, None, "unset")
    variable.set("again")
    assert seen() == ("again", "again", "again")


def test_a_handler_that_sets_or_deletes_it_does_not_stick(variable):
    variable.set("first")
    os.environ[NAME] = "the handler's"
    variable.set("second")
    assert seen() == ("second", "second", "second")
    del os.environ[NAME]
    variable.set("third")
    assert seen() == ("third", "third", "third")


def test_a_handler_that_calls_putenv_or_unsetenv_does_not_stick(variable):
    # Below os.environ: only the C environment changes, so nothing in Python notices.
    variable.set("first")
    os.putenv(NAME, "the handler's")
    variable.set("second")
    assert seen() == ("second", "second", "second")
    os.unsetenv(NAME)
    variable.set("third")
    assert seen() == ("third", "third", "third")


def test_a_pointer_read_before_a_new_value_keeps_the_old_one_whole(variable):
    # A thread the handler left running may hold what getenv gave it while the next
    # invocation's value is set: it reads the old value or the new, never a mix.
    variable.set("Root=1-aaaaaaaa")
    held = ctypes.c_char_p(raw_getenv(NAME.encode()))  # the pointer itself, no copy
    variable.set("Root=1-bbbb")
    assert held.value == b"Root=1-aaaaaaaa"
    assert seen()[1] == "Root=1-bbbb"


def test_a_long_value_fits(variable):
    variable.set("x" * 10)
    long = "Root=1-" + "f" * 5000
    variable.set(long)
    assert seen() == (long, long, long)
    variable.set("short")
    assert seen() == ("short", "short", "short")


def test_a_nul_is_refused_as_os_environ_refuses_it(variable):
    with pytest.raises(ValueError, match="null"):
        variable.set("a\0b")


def test_a_new_value_per_invocation_costs_no_memory(variable):
    # setenv(3) would keep every value: about 15 MB for these.
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for n in range(100_000):
        variable.set(f"Root=1-5759e988-bd862e3fe1be46a994272793;Parent={n:016x};Sampled=0")
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 2048
    assert os.environ[NAME].endswith(f"{99_999:016x};Sampled=0")
