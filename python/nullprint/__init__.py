"""nullprint: test model-lineage fingerprint claims against chance.

The work is done by the ``nullprint`` binary this package installs (a Rust program); run it
from the shell, or as ``python -m nullprint``. :func:`find_nullprint_bin` gives its path, e.g.
for ``subprocess.run([find_nullprint_bin(), "fingerprint", path], ...)``.
"""

import os
import shutil
import sys
import sysconfig
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nullprint")
except PackageNotFoundError:  # imported from a source checkout, not installed
    __version__ = "unknown"

__all__ = ["find_nullprint_bin", "__version__"]

_EXE = "nullprint" + (sysconfig.get_config_var("EXE") or "")


def _candidates():
    """Where pip puts a package's scripts: the interpreter's scheme (a venv, the system), the
    user scheme (``pip install --user``), and next to the package (``--prefix``, ``--target``)."""
    yield sysconfig.get_path("scripts")
    if hasattr(sysconfig, "get_preferred_scheme"):  # Python >= 3.10
        user_scheme = sysconfig.get_preferred_scheme("user")
    else:
        user_scheme = "nt_user" if os.name == "nt" else "posix_user"
    try:
        yield sysconfig.get_path("scripts", scheme=user_scheme)
    except KeyError:
        pass
    here = os.path.dirname(os.path.abspath(__file__))
    # --target DIR: DIR/nullprint/__init__.py and DIR/bin/nullprint.
    yield os.path.join(os.path.dirname(here), "bin")
    # --prefix P: P/lib/pythonX.Y/site-packages/nullprint/__init__.py and P/bin/nullprint.
    yield os.path.join(here, os.pardir, os.pardir, os.pardir, os.pardir, "bin")


def find_nullprint_bin():
    """The path of the installed ``nullprint`` binary.

    Raises FileNotFoundError naming every place looked in when it is not installed.
    """
    looked = []
    for d in _candidates():
        if not d:
            continue
        path = os.path.normpath(os.path.join(d, _EXE))
        looked.append(path)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    found = shutil.which(_EXE)
    if found:
        return found
    raise FileNotFoundError(
        "the nullprint binary is not installed next to this Python package; looked in "
        + ", ".join(looked)
        + " and on PATH"
    )
