"""``python -m nullprint ARGS``: run the installed ``nullprint`` binary with ARGS."""

import os
import subprocess
import sys

from nullprint import find_nullprint_bin


def main():
    exe = find_nullprint_bin()
    argv = [exe, *sys.argv[1:]]
    if os.name == "nt":  # no exec on Windows: wait for the child and pass on its exit code
        sys.exit(subprocess.call(argv))
    os.execv(exe, argv)


if __name__ == "__main__":
    main()
