"""predebit for the Bedrock AgentCore Payments SDK: a pre-debit check before every signature."""

from .client import PredebitClient, PredebitConfig
from .errors import PredebitDeclined
from .payment_id import payment_id, requirement_digest
from .plugin import PredebitPaymentsPlugin

__all__ = [
    "PredebitClient",
    "PredebitConfig",
    "PredebitDeclined",
    "PredebitPaymentsPlugin",
    "payment_id",
    "requirement_digest",
]
