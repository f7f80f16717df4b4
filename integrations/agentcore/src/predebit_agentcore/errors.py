"""The structured decline the agent and the application see."""

from __future__ import annotations

from bedrock_agentcore.payments.manager import PaymentError

# predebit reason codes raised by the plugin itself (the rest come from verify and the ledger).
VERIFIER_UNAVAILABLE = "VERIFIER_UNAVAILABLE"
PAYMENT_TYPE_NOT_SUPPORTED = "PAYMENT_TYPE_NOT_SUPPORTED"
NETWORK_NOT_ALLOWED = "NETWORK_NOT_ALLOWED"
SIGNED_PAYLOAD_MISMATCH = "SIGNED_PAYLOAD_MISMATCH"
# verify's code, also raised by the plugin before verify when the 402 may come from another origin
# than the URL the tool call requested (a redirect).
RESOURCE_MISMATCH = "RESOURCE_MISMATCH"
# verify's code for a requirement it cannot read; the plugin raises it in enforcing mode for a 402
# that carries no readable x402 offer, before authorize is called.
REQUIREMENT_INVALID = "REQUIREMENT_INVALID"
# The ledger's code for an op a deployment does not serve; the plugin raises it in enforcing mode
# for any attempt to call ProcessPayment from the agent's process.
OP_NOT_ALLOWED = "OP_NOT_ALLOWED"

_MESSAGES = {
    VERIFIER_UNAVAILABLE: "predebit could not be reached; nothing was signed.",
    PAYMENT_TYPE_NOT_SUPPORTED: "Only CRYPTO_X402 payments are supported.",
    SIGNED_PAYLOAD_MISMATCH: "The signed payment differs from the approved one.",
}


class PredebitDeclined(PaymentError):
    """predebit said NO (or could not say YES): nothing was sent to the merchant.

    The SDK stores it as ``exceptionType == "PredebitDeclined"``; the plugin adds
    ``reasonCode``, ``predebitMessage`` and ``verificationId`` to the stored failure, so the
    interrupt the application handles carries the structured decline.
    """

    def __init__(self, reason_code: str, message: str | None = None, verification_id: str | None = None):
        self.reason_code = reason_code
        self.message = message or _MESSAGES.get(reason_code, reason_code)
        self.verification_id = verification_id
        suffix = f" (verificationId {verification_id})" if verification_id else ""
        super().__init__(f"predebit declined the payment: {reason_code}: {self.message}{suffix}")

    def as_dict(self) -> dict[str, str | None]:
        """The decline as the JSON fields the application reads."""
        return {
            "reasonCode": self.reason_code,
            "predebitMessage": self.message,
            "verificationId": self.verification_id,
        }


class PredebitUnavailable(Exception):
    """A verify or ledger call failed in transport, timed out or returned a Lambda error."""
