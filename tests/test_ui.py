"""Shared terminal conventions: whole cells in piped tables, piped progress for long work only."""

from __future__ import annotations

import time

from redundancy import ui


def test_piped_progress_is_silent_for_short_work(capsys):
    with ui.progress("quick step", total=10) as advance:
        advance(10)
    assert capsys.readouterr().err == ""


def test_piped_progress_reports_long_work_in_plain_lines(capsys, monkeypatch):
    monkeypatch.setattr(ui, "PIPED_FIRST_NOTE_S", 0.05)
    monkeypatch.setattr(ui, "PIPED_EVERY_S", 0.1)
    with ui.progress("training", total=200) as advance:
        advance(100)
        time.sleep(0.3)
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert captured.out == ""
    assert lines[0] == "training ..."
    assert "training: 50%" in lines[1:-1]
    assert lines[-1].startswith("training: done in ") and lines[-1].endswith(" s")


def test_piped_table_keeps_every_cell_whole(capsys):
    long_cell = "x" * 300
    ui.print_table(("name", "value"), [("a", long_cell)], title="t")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "t" and out[3] == f"a     {long_cell}"


def test_numbers_never_print_nan():
    assert ui.format_number(float("nan")) == "n/a"
    assert ui.format_number(float("inf")) == "inf"
    assert ui.format_number(0.5) == "0.5"
