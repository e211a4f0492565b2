"""The lowest redis-py and fakeredis that pyproject.toml allows, pinned, for pip.

`make test-floor` installs these (and the test runner, as pyproject.toml asks for it) into
a venv of their own and runs the wire and contract tests there, so a floor that does not
work fails CI. Raising a floor in pyproject.toml is all a change of floor needs.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

FLOORED = ("redis", "fakeredis")  # pinned to the lowest version allowed
RUNNER = ("pytest", "pytest-timeout")  # as pyproject.toml asks for them

project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
requirements = [*project["dependencies"], *project["optional-dependencies"]["test"]]
found = {}
for req in requirements:
    name = re.split(r"[\s\[<>=!~;]", req, maxsplit=1)[0].lower()
    if name in FLOORED:
        floor = re.fullmatch(r"([^<>=!~;\s]+)\s*>=\s*([\w.]+)", req.split(";")[0].strip())
        if floor is None:
            sys.exit(f"pyproject.toml: {req!r} must read NAME>=FLOOR for `make test-floor`")
        found[name] = f"{floor[1]}=={floor[2]}"
    elif name in RUNNER:
        found[name] = req
if missing := set(FLOORED + RUNNER) - found.keys():
    sys.exit(f"pyproject.toml names no {sorted(missing)}")
print("\n".join(found.values()))
