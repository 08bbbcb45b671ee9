"""Suite-wide settings: reproducible property tests with no per-example deadline.

Deadlines measure the machine, not the code (CI shares two cores with other work);
performance is measured in bench/ instead.
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("default", deadline=None, max_examples=150, derandomize=True)
settings.load_profile("default")
