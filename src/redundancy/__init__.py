"""redundancy: coding-theoretic redundancy and cost-efficient ML infrastructure.

Importing the package is cheap: each system (``redundancy.erasure``, ``redundancy.dart``, ...)
is a subpackage imported on demand, and heavy dependencies load inside the systems that need them.
"""

from redundancy.errors import RedundancyError

__all__ = ["RedundancyError"]
__version__ = "0.1.0"
