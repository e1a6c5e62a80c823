"""Command line of the app (replaced by the full window in the desktop-app issue)."""
from __future__ import annotations


def run(argv: list[str]) -> int:
    from bpviz.core import Network
    print("bpviz core ready:", Network.__doc__.splitlines()[0])
    return 0
