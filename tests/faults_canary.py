"""A module no worker may import because a payload named it (test_faults_fuzz checks)."""

import os
from pathlib import Path

Path(os.environ.get("LABQUEUE_CANARY", "/tmp/labqueue-canary-imported")).write_text("imported")


class Boom:
    pass
