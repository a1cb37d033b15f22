"""The progress bar a batch shows on the terminal: by its time, not its size."""

import re
import time

from pymw import pymw
from pymw.interfaces.generic import GenericInterface
from pymw.progress import BAR_DELAY, REFRESH_SECONDS


def nap(seconds):
    import time

    time.sleep(seconds)
    return seconds


def _drawn(err: str) -> list[str]:
    """The bar's lines as drawn, in order (each redraw starts with a carriage return)."""
    return [line for line in err.split("\r") if line.strip()]


def test_a_long_task_shows_a_bar_whose_clock_moves_and_which_is_gone_before_its_result(
    capsys,
):
    # Two BOINC workunits may wait an hour for volunteers: one task is enough for a bar,
    # and it must show time passing while nothing finishes.
    seconds = BAR_DELAY + 2.5 * REFRESH_SECONDS
    with pymw.PyMW_Master(GenericInterface(num_workers=1), show_progress=True) as master:
        task = master.submit_task(nap, input_data=(seconds,))
        assert master.get_result(task)[1] == seconds
        err = capsys.readouterr().err
    lines = _drawn(err)
    clocks = [re.search(r"0/1 \[(\d\d:\d\d)", line) for line in lines]
    assert all(clocks), lines
    assert len({clock[1] for clock in clocks}) >= 2, lines  # redrawn as time passed
    assert err.split("\r")[-1].strip() == ""  # cleared before get_result returned


def test_a_batch_done_before_the_delay_draws_nothing(capsys):
    # Fifty quick local tasks: a bar would only flash.
    with pymw.PyMW_Master(GenericInterface(num_workers=2), show_progress=True) as master:
        started = time.monotonic()
        tasks = [master.submit_task(nap, input_data=(0.0,)) for _ in range(50)]
        assert [master.get_result(task)[1] for task in tasks] == [0.0] * 50
        assert time.monotonic() - started < BAR_DELAY  # else this test says nothing
        time.sleep(REFRESH_SECONDS * 1.5)  # a drawing pass comes and finds nothing to draw
    assert capsys.readouterr().err == ""


def test_each_batch_counts_its_own_tasks(capsys):
    with pymw.PyMW_Master(GenericInterface(num_workers=1), show_progress=True) as master:
        first = [master.submit_task(nap, input_data=(0.0,)) for _ in range(5)]
        for task in first:
            master.get_result(task)
        second = master.submit_task(nap, input_data=(BAR_DELAY + 1.5 * REFRESH_SECONDS,))
        master.get_result(second)
    lines = _drawn(capsys.readouterr().err)
    assert lines and all(" 0/1 " in line for line in lines), lines
