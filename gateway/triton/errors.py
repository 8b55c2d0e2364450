"""What Triton's failures mean to the gateway: unavailable (nothing was generated, try again
later) or an error for this request. gRPC's and tritonclient's errors go no further."""

from __future__ import annotations

import grpc
from tritonclient.utils import InferenceServerException


class BackendUnavailable(Exception):
    """Triton cannot be reached or the model is not ready: nothing was generated."""


class BackendError(Exception):
    """Triton or the model reported an error for this request."""


def from_response_message(message: str) -> Exception:
    """An error the stream answered with, in place of a response."""
    if "unknown model" in message or "is not ready" in message or "not found" in message:
        return BackendUnavailable(message)
    return BackendError(message)


def from_rpc_error(rpc_error: grpc.aio.AioRpcError) -> Exception:
    """The gRPC call failed; caused by `rpc_error`."""
    if rpc_error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        error: Exception = BackendUnavailable(f"Triton is unavailable: {rpc_error.details()}")
    else:
        error = BackendError(f"Triton: {rpc_error.code().name}: {rpc_error.details()}")
    return chained(error, rpc_error)


def from_triton_exception(triton_error: InferenceServerException) -> Exception:
    """tritonclient failed the call; caused by `triton_error`."""
    return chained(BackendError(str(triton_error.message())), triton_error)


def chained(error: Exception, cause: BaseException) -> Exception:
    """`error`, raised from `cause`."""
    error.__cause__ = cause
    return error
