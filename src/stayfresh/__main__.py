"""``python -m stayfresh``: the CLI, without relying on the console script being on PATH.

The OS service runs the daemon this way, with the absolute path of the
interpreter that installed it, so it always uses the same environment.
"""

from stayfresh.cli import main

if __name__ == "__main__":
    main()
