"""The paper exchange's one error family: every refusal is a `BinanceError` worded exactly as Binance words it.

Codes and messages are Binance Spot's (see its errors.md); the HTTP status is Binance's for that refusal (400
unless said otherwise). Each constructor below builds a fresh exception: an instance is never reused.
"""

from __future__ import annotations

ErrorBody = dict[str, int | str]


class BinanceError(Exception):
    """A refusal answered as Binance does: HTTP `status`, body `{"code": code, "msg": msg}`.

    `retry_after_s`, when set, is sent as the `Retry-After` header (429 and 418 answers).
    """

    def __init__(self, code: int, msg: str, status: int = 400, *, retry_after_s: int | None = None) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status
        self.retry_after_s = retry_after_s

    def body(self) -> ErrorBody:
        """The JSON body Binance answers with."""
        return {"code": self.code, "msg": self.msg}


# -- parameters ----------------------------------------------------------------------------------------------


def illegal_chars(name: str, legal: str) -> BinanceError:
    return BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.")


def mandatory(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def either_param(first: str, second: str) -> BinanceError:
    return BinanceError(-1102, f"Param '{first}' or '{second}' must be sent, but both were empty/null!")


def unread_parameters(read: int, sent: int) -> BinanceError:
    return BinanceError(-1104, f"Not all sent parameters were read; read '{read}' parameter(s) but was sent '{sent}'.")


def not_required(name: str) -> BinanceError:
    return BinanceError(-1106, f"Parameter '{name}' sent when not required.")


def too_much_precision(name: str) -> BinanceError:
    return BinanceError(-1111, f"Parameter '{name}' has too much precision.")


def invalid_symbol() -> BinanceError:
    return BinanceError(-1121, "Invalid symbol.")


def bad_combination() -> BinanceError:
    return BinanceError(-1128, "Combination of optional parameters invalid.")


def not_valid(name: str) -> BinanceError:
    return BinanceError(-1130, f"Data sent for parameter '{name}' is not valid.")


def unsupported_operation(status: int) -> BinanceError:
    # Binance documents no body for a path it does not serve; the paper exchange answers in its error shape
    # with the operation code, so a client reads it like any other refusal and never mistakes it for an outage.
    return BinanceError(-1020, "This operation is not supported.", status=status)


# -- orders ------------------------------------------------------------------------------------------------------


def filter_failure(name: str) -> BinanceError:
    return BinanceError(-1013, f"Filter failure: {name}")


def order_rejected(msg: str) -> BinanceError:
    """-2010 NEW_ORDER_REJECTED with one of the matching engine's messages."""
    return BinanceError(-2010, msg)


def insufficient_balance() -> BinanceError:
    return order_rejected("Account has insufficient balance for requested action.")


def duplicate_order() -> BinanceError:
    return order_rejected("Duplicate order sent.")


def unknown_order() -> BinanceError:
    return BinanceError(-2011, "Unknown order sent.")


def unknown_order_list() -> BinanceError:
    return BinanceError(-2011, "Unknown order list sent.")


def order_does_not_exist() -> BinanceError:
    return BinanceError(-2013, "Order does not exist.")


def order_list_does_not_exist() -> BinanceError:
    return BinanceError(-2013, "Order list does not exist.")


def oco_error(code: int) -> BinanceError:
    """The OCO leg-placement refusals (-1158, -1165, -1166, -1168, -1196..-1199)."""
    return BinanceError(code, _OCO_MESSAGES[code])


_OCO_MESSAGES = {
    -1158: "Order type not supported in OCO.",
    -1165: "A limit order in a buy OCO must be below.",
    -1166: "A limit order in a sell OCO must be above.",
    -1168: "At least one OCO order must be contingent.",
    -1196: "A stop loss order in a buy OCO must be above.",
    -1197: "A stop loss order in a sell OCO must be below.",
    -1198: "A take profit order in a buy OCO must be below.",
    -1199: "A take profit order in a sell OCO must be above.",
}


# -- keys, signatures, time --------------------------------------------------------------------------------------


def bad_api_key_format() -> BinanceError:
    return BinanceError(-2014, "API-key format invalid.", status=401)


def invalid_api_key() -> BinanceError:
    return BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)


def invalid_signature() -> BinanceError:
    return BinanceError(-1022, "Signature for this request is not valid.")


def timestamp_ahead() -> BinanceError:
    return BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")


def timestamp_outside_window() -> BinanceError:
    return BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")


def unauthorized() -> BinanceError:
    return BinanceError(-1002, "You are not authorized to execute this request.", status=403)


# -- limits ------------------------------------------------------------------------------------------------------


def too_much_weight(limit: int, interval: str, retry_after_s: int | None = None) -> BinanceError:
    return BinanceError(
        -1003,
        f"Too much request weight used; current limit is {limit} request weight per {interval}. "
        "Please use WebSocket Streams for live updates to avoid polling the API.",
        status=429,
        retry_after_s=retry_after_s,
    )


def banned(until_ms: int, retry_after_s: int) -> BinanceError:
    return BinanceError(
        -1003,
        f"Way too much request weight used; IP banned until {until_ms}. "
        "Please use WebSocket Streams for live updates to avoid bans.",
        status=418,
        retry_after_s=retry_after_s,
    )


def too_many_orders(limit: int, interval: str, retry_after_s: int) -> BinanceError:
    return BinanceError(
        -1015,
        f"Too many new orders; current limit is {limit} orders per {interval}.",
        status=429,
        retry_after_s=retry_after_s,
    )
