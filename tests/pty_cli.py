"""Driving the CLI from a real pseudo-terminal, so it asks its questions as it does a person."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import termios
import time


def run_on_pty(command: list[str], env: dict[str, str], answers: list[tuple[str, str]],
               timeout: float = 90, eof_at: str | None = None) -> tuple[int, str]:
    """Run ``command`` with a pseudo-terminal as stdin (so codeloop asks) and a pipe as
    stdout; for each (marker, answer) in order, wait until the output shows ``marker`` (after
    the previous one), then type ``answer``. Once the answers are used up, type ^D (end of
    input) at the next ``eof_at``; None: the command ends by itself. Returns (exit code, output)."""
    master, slave = pty.openpty()
    attrs = termios.tcgetattr(slave)
    attrs[3] &= ~termios.ECHO  # no echo of the answers
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    proc = subprocess.Popen(command, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            close_fds=True)
    os.close(slave)
    out = b""
    pending = list(answers)
    pos = 0
    sent_eof = False
    deadline = time.monotonic() + timeout
    try:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        while True:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; output so far:\n{out.decode(errors='replace')}")
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                out += chunk
            text = out.decode(errors="replace")
            while pending and pending[0][0] in text[pos:]:
                marker, answer = pending.pop(0)
                pos = text.index(marker, pos) + len(marker)
                os.write(master, (answer + "\n").encode())
            if not pending and eof_at is not None and not sent_eof and eof_at in text[pos:]:
                sent_eof = True
                os.write(master, b"\x04")
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return proc.returncode, out.decode(errors="replace")
