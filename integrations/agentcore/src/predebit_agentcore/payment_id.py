"""paymentId: one id per payment attempt, shared by AgentCore (clientToken) and the ledger.

Layout (version 1), all strings UTF-8:

    requirementDigest = hex(SHA-256(canonical JSON of the selected accepts entry))
    paymentId         = hex(SHA-256("predebit/paymentId/v1"
                                    || len32(paymentSessionId) || paymentSessionId
                                    || len32(toolUseId)        || toolUseId
                                    || len32(requirementDigest)|| requirementDigest
                                    || len32(attempt)          || attempt))

``len32`` is the byte length as a 4-byte big-endian unsigned integer, so no field can run into
the next; ``attempt`` is the SDK's signing attempt for the tool call (1, 2, 3) in decimal.
Canonical JSON here is ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)``:
the entry as received, keys sorted, no whitespace.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping
from typing import Any

DOMAIN_TAG = b"predebit/paymentId/v1"


def requirement_digest(requirement: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the selected requirement's canonical JSON."""
    canonical = json.dumps(requirement, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def payment_id(payment_session_id: str, tool_use_id: str, requirement: Mapping[str, Any], attempt: int) -> str:
    """The 64-character lowercase hex paymentId for one signing attempt."""
    if attempt < 1:
        raise ValueError("attempt starts at 1")
    h = hashlib.sha256(DOMAIN_TAG)
    for field in (payment_session_id, tool_use_id, requirement_digest(requirement), str(attempt)):
        data = field.encode("utf-8")
        h.update(struct.pack(">I", len(data)))
        h.update(data)
    return h.hexdigest()
