"""Stopping a run cleanly: SIGINT (Ctrl-C) and SIGTERM (kill, job schedulers) ask it to save a
checkpoint at the end of the current step and stop; a second signal aborts at once."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped the run after it saved a checkpoint (`trm train` then exits
    with 128 + the signal's number, as a process killed by it would). A KeyboardInterrupt, so
    that callers which handle Ctrl-C (the `trm` command line, `trm demo`) handle it too."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum


@contextlib.contextmanager
def stop_on_signals(asked: Callable[[int], None], is_main: bool) -> Iterator[None]:
    """While inside, the first SIGINT or SIGTERM calls `asked(signum)` (the run then saves and
    stops at the end of its step) and a second one raises KeyboardInterrupt (stop without
    saving). `is_main`: this process tells the user."""
    if threading.current_thread() is not threading.main_thread():  # handlers live in the main thread
        yield
        return
    received: list[int] = []

    def ask_to_stop(signum, frame):
        if received:
            raise KeyboardInterrupt
        received.append(signum)
        asked(signum)
        if is_main:  # os.write: print could re-enter a write the handler interrupted
            os.write(
                2,
                f"\n{signal.Signals(signum).name}: saving a checkpoint at the end of this step, then "
                "stopping (Ctrl-C again stops at once, without saving)\n".encode(),
            )

    # A signal ignored at start stays ignored (as Python leaves SIGINT for a shell script's `cmd &`).
    caught = [s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) is not signal.SIG_IGN]
    previous = {s: signal.signal(s, ask_to_stop) for s in caught}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
