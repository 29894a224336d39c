"""Interrupting a running abmll command at a known point, for the tests of graceful stops and resumption."""
import signal
import subprocess
import time


def sigterm_after_lines(command, path, lines, timeout=300):
    """Starts `command`, sends it SIGTERM once `path` holds `lines` complete lines (a run's progress written so
    far), and waits for it; returns (exit code, stderr)."""
    proc = subprocess.Popen([str(c) for c in command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + timeout
    while time.time() < deadline and not (path.exists() and path.read_text().count("\n") >= lines):
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=timeout)
    return proc.returncode, stderr
