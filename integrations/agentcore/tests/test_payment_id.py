import hashlib
import struct

from predebit_agentcore import payment_id, requirement_digest

REQ = {"scheme": "exact", "network": "base", "maxAmountRequired": "1000000", "payTo": "0xabc"}


def test_payment_id_follows_the_documented_byte_layout():
    # GIVEN the layout in payment_id.py written out by hand WHEN computed THEN both agree
    digest = hashlib.sha256(
        b'{"maxAmountRequired":"1000000","network":"base","payTo":"0xabc","scheme":"exact"}'
    ).hexdigest()
    assert requirement_digest(REQ) == digest
    h = hashlib.sha256(b"predebit/paymentId/v1")
    for field in ("ps-1", "tu-1", digest, "1"):
        h.update(struct.pack(">I", len(field)) + field.encode())
    assert payment_id("ps-1", "tu-1", REQ, 1) == h.hexdigest()


def test_payment_id_is_64_lowercase_hex_and_a_valid_client_token():
    pid = payment_id("ps-1", "tu-1", REQ, 1)
    assert len(pid) == 64 and pid == pid.lower() and all(c in "0123456789abcdef" for c in pid)


def test_payment_id_ignores_key_order_but_not_values_or_attempt():
    reordered = dict(reversed(list(REQ.items())))
    assert payment_id("ps-1", "tu-1", reordered, 1) == payment_id("ps-1", "tu-1", REQ, 1)
    assert payment_id("ps-1", "tu-1", {**REQ, "maxAmountRequired": "1000001"}, 1) != payment_id("ps-1", "tu-1", REQ, 1)
    assert payment_id("ps-1", "tu-1", REQ, 2) != payment_id("ps-1", "tu-1", REQ, 1)


def test_fields_cannot_run_into_each_other():
    # GIVEN ids whose concatenation is equal WHEN hashed THEN the length prefixes keep them apart
    assert payment_id("ps-1t", "u-1", REQ, 1) != payment_id("ps-1", "tu-1", REQ, 1)
