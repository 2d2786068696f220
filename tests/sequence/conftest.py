"""tests/ on the import path, so the service test harness (service/service_harness.py) is
importable however these tests are selected."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))
