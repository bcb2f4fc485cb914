"""Secret sharing: Shamir over GF(2^8) and prime fields, and SNEAK dissemination over networks.

Heavy parts (networkx, asyncio runtime) load only from their own modules.
"""

from redundancy.secret_sharing.shamir import combine, split
from redundancy.secret_sharing.shares import Share

__all__ = ["Share", "combine", "split"]
