"""Progress: a bar redrawn in place on a terminal, every message a plain line anywhere else."""

import io

from qkdnet.orchestrator.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_one_line_redrawn_per_count_then_plain_lines():
    out = Terminal()
    progress = Progress(out)
    progress("starting 4 node processes")
    for done in range(3):
        progress(f"link key: {done}/2 links hold >= 1024 bits")
    progress("shutting down nodes")
    lines = out.getvalue().split("\n")
    assert lines[0] == "  starting 4 node processes"
    assert lines[1].count("\r") == 3 and lines[1].endswith("[########################] link key: 2/2 links hold "
                                                           ">= 1024 bits")
    assert "[............" in lines[1]  # 0/2 drawn first
    assert lines[2] == "  shutting down nodes" and lines[3] == ""


def test_an_unfinished_bar_ends_its_line_before_the_next_message():
    out = Terminal()
    progress = Progress(out)
    progress("20 km: block 1/10")
    progress("no count here")
    assert out.getvalue().split("\n")[1] == "  no count here"


def test_a_pipe_gets_every_message_as_a_line():
    out = io.StringIO()
    progress = Progress(out)
    progress("link key: 0/2 links hold >= 1024 bits")
    progress("link key: 2/2 links hold >= 1024 bits")
    assert out.getvalue() == "  link key: 0/2 links hold >= 1024 bits\n  link key: 2/2 links hold >= 1024 bits\n"
