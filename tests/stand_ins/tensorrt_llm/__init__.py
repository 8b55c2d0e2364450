"""Stand-in for TensorRT-LLM 1.2.1's top level: `build` and `BuildConfig` (see README.md)."""

from tensorrt_llm.builder import BuildConfig, Engine, build

__version__ = "1.2.1"
__all__ = ["BuildConfig", "Engine", "build"]
