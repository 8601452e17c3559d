"""The typed async client for services that call aiotrade: `AiotradeClient` and what it raises and yields."""

from aiotrade.client.client import AiotradeClient
from aiotrade.client.errors import (
    ApiError,
    ClientError,
    Conflict,
    FieldError,
    Forbidden,
    InsufficientFunds,
    InvalidInput,
    NotFound,
    NotSupported,
    OrderRejected,
    RateLimited,
    RiskRejected,
    ServerError,
    StreamRefused,
    TransportFailed,
    Unauthorized,
    Unavailable,
    UpstreamError,
)
from aiotrade.client.retrying import RetryPolicy
from aiotrade.client.stream import FillEvent, LiveFrame, OrderEvent, SnapshotFrame, StreamError

__all__ = [
    "AiotradeClient",
    "ApiError",
    "ClientError",
    "Conflict",
    "FieldError",
    "FillEvent",
    "Forbidden",
    "InsufficientFunds",
    "InvalidInput",
    "LiveFrame",
    "NotFound",
    "NotSupported",
    "OrderEvent",
    "OrderRejected",
    "RateLimited",
    "RetryPolicy",
    "RiskRejected",
    "ServerError",
    "SnapshotFrame",
    "StreamError",
    "StreamRefused",
    "TransportFailed",
    "Unauthorized",
    "Unavailable",
    "UpstreamError",
]
