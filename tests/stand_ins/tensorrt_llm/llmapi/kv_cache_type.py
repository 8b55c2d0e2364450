"""1.2's Python `KVCacheType` (llmapi/kv_cache_type.py): a string enum, looked up
case-insensitively, convertible to the C++ binding's."""

from enum import Enum

from tensorrt_llm import bindings


class KVCacheType(str, Enum):  # noqa: UP042 (as upstream defines it)
    CONTINUOUS = "continuous"
    PAGED = "paged"
    DISABLED = "disabled"

    @classmethod
    def _missing_(cls, value: object) -> "KVCacheType | None":
        if isinstance(value, str):
            return next((member for member in cls if member.value == value.lower()), None)
        return None

    def to_cpp(self) -> bindings.KVCacheType:
        return getattr(bindings.KVCacheType, self.name)  # type: ignore[no-any-return]
