"""Running the ``zoning`` executable for an algorithm: found on PATH or in the provider's setting, progress and
messages relayed to the feedback, cancel honoured (the tool stops on SIGTERM and leaves nothing half-written)."""
import os
import queue
import re
import shutil
import signal
import subprocess
import threading

from qgis.core import QgsProcessingException

SETTING = "ZONING_EXECUTABLE"
PROGRESS = re.compile(r"\((\d{1,3})%\)\s*$")
# QGIS's own libraries' data folders and Python path would reach the tool's environment and mismatch its wheels
# (a PROJ database of another version, another GDAL's drivers)
FOREIGN_ENV = ("PYTHONPATH", "PYTHONHOME", "GDAL_DATA", "GDAL_DRIVER_PATH", "PROJ_LIB", "PROJ_DATA",
               "QGIS_PREFIX_PATH")


def configured_executable() -> str:
    """The executable set in Settings → Options → Processing → Providers → Zoning ("" when unset)."""
    try:
        from processing.core.ProcessingConfig import ProcessingConfig
    except ImportError:  # Processing's Python side not loaded (a bare PyQGIS script)
        return ""
    return ProcessingConfig.getSetting(SETTING) or ""


def executable(configured: str = "") -> str:
    """The ``zoning`` executable: the provider's setting, else ``$ZONING_EXECUTABLE``, else the one on PATH."""
    for candidate in (configured, os.environ.get(SETTING, "")):
        if candidate:
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
            raise QgsProcessingException(
                f"The zoning executable {candidate} does not exist or cannot be run. Set its path in Settings → "
                "Options → Processing → Providers → Zoning, or install zoning (pip install zoning).")
    found = shutil.which("zoning")
    if not found:
        raise QgsProcessingException(
            "The zoning executable was not found on PATH. Install zoning in its own environment (pip install "
            "zoning), then set the path of its `zoning` executable in Settings → Options → Processing → Providers "
            "→ Zoning (e.g. /home/me/zoning/.venv/bin/zoning).")
    return found


def run(exe: str, args: list, feedback) -> None:
    """Run ``exe args``; every line to the feedback, progress from the tool's "(N%)" lines; raise on failure."""
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
    env["PYTHONIOENCODING"] = "utf-8"
    cmd = [exe, *[str(a) for a in args]]
    feedback.pushCommandInfo(" ".join(_quote(c) for c in cmd))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
                            encoding="utf-8", errors="replace", bufsize=1)
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout] + [lines.put(None)], daemon=True)
    reader.start()
    said, errors = [], []
    while True:
        if feedback.isCanceled() and proc.poll() is None:
            _stop(proc)
            if proc.returncode != 0:  # else it had finished: its output is whole
                raise QgsProcessingException("Canceled: the zoning run was stopped and wrote nothing.")
        try:
            line = lines.get(timeout=0.1)
        except queue.Empty:
            continue
        if line is None:
            break
        line = line.rstrip("\n")
        said.append(line)
        m = PROGRESS.search(line)
        if m:
            feedback.setProgress(min(100, int(m.group(1))))
        if line.startswith(("Error:", "Internal error:", "Interrupted", "Stopped by")) or errors:
            errors.append(line)
            feedback.reportError(line)
        else:
            feedback.pushInfo(line)
    code = proc.wait()
    proc.stdout.close()
    if code != 0:
        raise QgsProcessingException("\n".join(errors) or "\n".join(said[-10:]) or f"zoning ended with exit {code}")


def _stop(proc) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # the tool removes what it was writing (a temporary file) and exits
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _quote(s: str) -> str:
    return f'"{s}"' if " " in s else s
