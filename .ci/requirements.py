"""Print the package's declared dependencies (base + the `test` and `deepspeed` extras), one per line.

The shared CPU environment installs these, not the package: the scripts put the running clone on PYTHONPATH, so
every clone imports its own code from one environment that no run writes to after it is built.
"""

import pathlib
import sys


try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

project = tomllib.loads((pathlib.Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
extras = project["optional-dependencies"]
for requirement in [*project["dependencies"], *extras["test"], *extras["deepspeed"]]:
    if not requirement.startswith(project["name"]):
        sys.stdout.write(requirement + "\n")
