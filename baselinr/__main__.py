"""The ``baselinr`` console script (and ``python -m baselinr``).

It imports nothing but ``sys`` and ``signal`` before the CLI, so a Ctrl-C while the CLI is still
importing (the first few tenths of a second) ends like one during a command: ``aborted``, exit
130, no traceback.
"""

import signal
import sys


def main() -> None:
    try:
        from baselinr.cli import main as cli
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the exit
        sys.stderr.write("aborted\n")
        sys.exit(130)
    cli()


if __name__ == "__main__":
    main()
