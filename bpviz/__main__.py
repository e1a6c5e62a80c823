"""Entry point for ``python -m bpviz`` and the ``bpviz`` script."""
import sys


def main(argv=None) -> int:
    from bpviz.app import run
    return run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
