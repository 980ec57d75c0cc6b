"""The terminal's progress bar: rates measured over the work seen, never a first report divided by no time."""
import io
import logging

from cli.app import _Handler


class _Tty(io.StringIO):
    def isatty(self):
        return True


def _record(done, total):
    r = logging.LogRecord("zoning", logging.INFO, __file__, 1, "x", None, None)
    r.progress = ("land cover", done, total)
    return r


def test_a_first_report_of_a_big_stage_shows_no_rate_and_a_later_one_a_sensible_rate(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("cli.app.time.monotonic", lambda: now[0])
    out = _Tty()
    h = _Handler(out)
    h.emit(_record(4_089_918_274, 8_000_000_000))  # the first report: no time has passed
    assert "/s" not in out.getvalue() and "4,089,918,274/8,000,000,000" in out.getvalue()
    now[0] = 102.0
    h.emit(_record(4_089_918_274 + 2_000_000, 8_000_000_000))  # two seconds later, two million more
    assert "1,000,000/s" in out.getvalue() and "ETA" in out.getvalue()


def test_file_only_records_stay_off_the_terminal():
    out = io.StringIO()
    h = _Handler(out)
    r = logging.LogRecord("zoning", logging.INFO, __file__, 1, "zone table", None, None)
    r.file_only = True
    h.emit(r)
    assert out.getvalue() == ""
