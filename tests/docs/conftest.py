"""The chart's render, as tests/helm renders it (real Helm through helm-sdkpy), for the
documentation's Helm examples."""

from tests.helm.conftest import helm_python, render

__all__ = ["helm_python", "render"]
