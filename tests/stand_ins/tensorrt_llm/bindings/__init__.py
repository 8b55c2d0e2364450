"""The C++ binding's `KVCacheType` (members CONTINUOUS, PAGED, DISABLED)."""

from enum import Enum


class KVCacheType(Enum):
    CONTINUOUS = 0
    PAGED = 1
    DISABLED = 2
