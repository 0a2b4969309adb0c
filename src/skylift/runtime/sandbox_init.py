"""PID 1 of an instance's PID namespace: a process that only reaps.

The kernel treats PID 1 of a namespace apart: orphans are given to it to reap, and a
signal sent to it from inside its namespace is dropped unless it has a handler. A
handler serving as PID 1 would leave its children's orphans as zombies, and its own
`os.kill(os.getpid(), signal.SIGTERM)` would do nothing. So, as Lambda's execution
environment has its own init, an instance's first process in its namespace is this one
and the serving process comes second (PID 2).

It costs next to nothing: a `clone` that shares the memory and file table of its parent
W (no copy of a Python process, no page of its own) and runs only `pause()` on a small
stack, with every signal blocked (no handler of the app's or Python's ever runs in it)
and SIGCHLD ignored, so the kernel reaps every orphan given to it at once. Because it
shares W's memory, W is made non-dumpable first: nothing in the namespace may trace it or
read it through `/proc/1` (its root and mounts are the host's; the serving process also
lacks the capabilities it would need). It dies when W kills it after the serving process
ended, which ends everything left in the namespace, or with W's process group (skylift's
only signal to an instance is SIGKILL to that group), or with W's memory under the OOM
killer, which kills every process sharing it.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import platform
import signal

from skylift.runtime.sandbox_mounts import PR_SET_DUMPABLE, libc, prctl

CLONE_VM, CLONE_FILES = 0x100, 0x400
SIG_BLOCK, SIG_SETMASK = 0, 2
SIG_IGN = 1
STACK_SIZE = 16 * 1024
# A mapping of its own (never freed: the init runs on it), the one writable mapping a
# copy made by `start(CLONE_NEWPID)` after `copy_nothing` keeps.
# Private: each copy writes its own (shared, one starting PID 1 would overwrite what the
# next one's clone left there for it to pop).
_STACK = mmap.mmap(-1, STACK_SIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
_BASE = ctypes.addressof(ctypes.c_char.from_buffer(_STACK))
# Room above the top: glibc's syscall() reads its caller's frame (a 6th argument).
_TOP = (_BASE + STACK_SIZE - 256) & ~15
MADV_DONTFORK = 10
_ALL = ctypes.create_string_buffer(b"\xff" * 128, 128)  # a sigset_t of every signal
_SAVED = ctypes.create_string_buffer(128)
_clone = libc.clone
_clone.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
_clone.restype = ctypes.c_int
_pthread_self = libc.pthread_self
_pthread_self.restype = ctypes.c_void_p
_signal = libc.signal
_signal.argtypes = [ctypes.c_int, ctypes.c_void_p]
_signal.restype = ctypes.c_void_p
_ARG: int | None
if platform.machine() == "x86_64":  # the raw system call: glibc's pause() reads W's TLS
    _RUN, _ARG = ctypes.cast(libc.syscall, ctypes.c_void_p).value, 34  # SYS_pause
else:
    _RUN, _ARG = ctypes.cast(libc.pause, ctypes.c_void_p).value, None


def start(flags: int = CLONE_VM | CLONE_FILES) -> int:
    """Start the namespace's PID 1 (the first child after `unshare(CLONE_NEWPID)`, or
    with `flags` CLONE_NEWPID a namespace of its own: `sandbox_fork`'s maker, whose
    copy it is then, not sharing its memory); its pid. Sharing our memory, the caller
    stays non-dumpable from here on.

    The signal mask and SIGCHLD's disposition it starts with are set around the clone by
    libc directly (Python's own `signal` calls cost ten times more, and Python's record
    of SIGCHLD's handler stays true: it is put back as it was).
    """
    libc.sigprocmask(SIG_BLOCK, _ALL, _SAVED)
    previous = _signal(signal.SIGCHLD, SIG_IGN)
    try:
        pid: int = _clone(_RUN, _TOP, flags | signal.SIGCHLD, _ARG)
        error = ctypes.get_errno()
    finally:
        _signal(signal.SIGCHLD, previous)
        libc.sigprocmask(SIG_SETMASK, _SAVED, None)
    if pid == -1:
        raise OSError(error, f"clone (the sandbox's PID 1): {os.strerror(error)}")
    if flags & CLONE_VM:  # its memory is ours: nothing in the namespace may read it
        prctl(PR_SET_DUMPABLE, 0, "prctl dumpable")
    return pid


def copy_nothing() -> None:
    """Mark this process's mappings, but its program text, the init's stack and this
    thread's own area, as not to be copied into a child: a PID 1 that `start` clones
    from it without CLONE_VM then has only its stack and the (shared) program text, so
    it holds no page of this process's, however much this process writes after.

    The thread's area holds its TLS and its rseq area, which the kernel writes to when
    the copy returns to user space (a missing one would kill it with SIGSEGV).
    """
    self_: int = _pthread_self() or 0  # the thread pointer
    keep = [_BASE, self_]
    try:  # glibc 2.35+: the thread's rseq area, at this offset from the thread pointer
        keep.append(self_ + ctypes.c_long.in_dll(libc, "__rseq_offset").value)
    except ValueError:
        pass
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            if fields[1][2] == "x":  # the program's text, which it runs (shared)
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if any(start <= k < end for k in keep) or fields[-1] in ("[vvar]", "[vdso]"):
                continue
            libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), MADV_DONTFORK)
