"""signing.py against the @x402/evm 2.27.0 fixtures: same nonce and clock, same bytes."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils import keccak

import signing
from conftest import ALICE_ADDRESS, fixture

ANVIL_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def digest_of(message: SignableMessage) -> bytes:
    """The EIP-191 digest an EIP-712 signature signs: keccak(0x19 || version || header || body)."""
    return keccak(b"\x19" + message.version + message.header + message.body)


def terms_of_fixture(f: dict) -> signing.Terms:
    requirement = f["requirement"]
    chain_id = 84532  # both base-sepolia (v1) and eip155:84532 (v2)
    extra = requirement["extra"]
    return signing.terms_of_payload(
        f["paymentPayload"]["payload"], chain_id, requirement["asset"], extra["name"], extra["version"]
    )


@pytest.mark.parametrize("name", ["exact_eip3009_v1.json", "exact_eip3009_v2.json", "exact_permit2_v2.json"])
def test_signing_reproduces_the_fixture_signature_byte_for_byte(name: str) -> None:
    # GIVEN a fixture signed by @x402/evm 2.27.0 and its nonce and times
    f = fixture(name)
    terms = terms_of_fixture(f)
    # WHEN the same terms are signed with the same test key
    payload = signing.sign(Account.from_key(ANVIL_KEY_0), terms)
    # THEN the payload, signature included, is the fixture's, key order too
    assert payload == f["paymentPayload"]["payload"]
    assert list(payload) == list(f["paymentPayload"]["payload"])


@pytest.mark.parametrize("name", ["exact_eip3009_v1.json", "exact_eip3009_v2.json", "exact_permit2_v2.json"])
def test_the_fixture_signature_recovers_to_its_signer_under_our_typed_data(name: str) -> None:
    # GIVEN a fixture WHEN its signature is recovered over our EIP-712 typed data THEN it is the signer
    f = fixture(name)
    recovered = signing.recover(f["signer"], terms_of_fixture(f), f["paymentPayload"]["payload"]["signature"])
    assert recovered == f["signer"] == ALICE_ADDRESS


def test_the_eip3009_digest_is_the_eip712_hash_of_domain_and_transfer_with_authorization() -> None:
    # GIVEN the v2 EIP-3009 fixture
    f = fixture("exact_eip3009_v2.json")
    terms = terms_of_fixture(f)
    # WHEN its digest is computed from the typed data
    digest = digest_of(encode_typed_data(full_message=signing.typed_data(f["signer"], terms)))
    # THEN it is 0x1901 || domainSeparator || structHash with USDC's domain on chain 84532
    from eth_abi import encode

    domain_type = b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    separator = keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [keccak(domain_type), keccak(b"USDC"), keccak(b"2"), 84532, f["requirement"]["asset"]],
        )
    )
    a = f["paymentPayload"]["payload"]["authorization"]
    type_hash = keccak(
        b"TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,"
        b"uint256 validBefore,bytes32 nonce)"
    )
    struct = keccak(
        encode(
            ["bytes32", "address", "address", "uint256", "uint256", "uint256", "bytes32"],
            [
                type_hash,
                a["from"],
                a["to"],
                int(a["value"]),
                int(a["validAfter"]),
                int(a["validBefore"]),
                bytes.fromhex(a["nonce"][2:]),
            ],
        )
    )
    assert digest == keccak(b"\x19\x01" + separator + struct)


def test_the_permit2_digest_uses_the_witness_to_and_valid_after_only() -> None:
    # GIVEN the Permit2 fixture
    f = fixture("exact_permit2_v2.json")
    terms = terms_of_fixture(f)
    digest = digest_of(encode_typed_data(full_message=signing.typed_data(f["signer"], terms)))
    # THEN the digest is Permit2's domain (no version) over PermitWitnessTransferFrom with
    # Witness(address to,uint256 validAfter), as @x402/evm 2.27.0 signs it
    from eth_abi import encode

    separator = keccak(
        encode(
            ["bytes32", "bytes32", "uint256", "address"],
            [
                keccak(b"EIP712Domain(string name,uint256 chainId,address verifyingContract)"),
                keccak(b"Permit2"),
                84532,
                signing.PERMIT2_ADDRESS,
            ],
        )
    )
    p = f["paymentPayload"]["payload"]["permit2Authorization"]
    token_permissions = b"TokenPermissions(address token,uint256 amount)"
    witness = b"Witness(address to,uint256 validAfter)"
    primary = (
        b"PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,"
        b"uint256 deadline,Witness witness)"
    )
    permitted = keccak(
        encode(
            ["bytes32", "address", "uint256"],
            [keccak(token_permissions), p["permitted"]["token"], int(p["permitted"]["amount"])],
        )
    )
    witness_hash = keccak(
        encode(
            ["bytes32", "address", "uint256"], [keccak(witness), p["witness"]["to"], int(p["witness"]["validAfter"])]
        )
    )
    struct = keccak(
        encode(
            ["bytes32", "bytes32", "address", "uint256", "uint256", "bytes32"],
            [
                keccak(primary + token_permissions + witness),
                permitted,
                p["spender"],
                int(p["nonce"]),
                int(p["deadline"]),
                witness_hash,
            ],
        )
    )
    assert digest == keccak(b"\x19\x01" + separator + struct)
    assert p["spender"] == signing.X402_EXACT_PERMIT2_PROXY


def test_valid_after_is_backdated_600_seconds_in_v1_and_zero_in_v2_as_the_fixtures_show() -> None:
    # GIVEN the fixtures' clock WHEN validAfter is chosen per version THEN it is what they signed
    v1, v2 = fixture("exact_eip3009_v1.json"), fixture("exact_eip3009_v2.json")
    assert (
        str(signing.valid_after(1, v1["generatedAt"])) == v1["paymentPayload"]["payload"]["authorization"]["validAfter"]
    )
    assert (
        str(signing.valid_after(2, v2["generatedAt"])) == v2["paymentPayload"]["payload"]["authorization"]["validAfter"]
    )


def test_fresh_nonces_have_each_method_s_form_and_differ() -> None:
    # GIVEN two fresh nonces per method THEN EIP-3009 ones are bytes32 hex, Permit2 ones decimal uint256
    a, b = signing.new_nonce("eip3009"), signing.new_nonce("eip3009")
    assert a != b and a.startswith("0x") and len(a) == 66 and int(a, 16) >= 0
    c, d = signing.new_nonce("permit2"), signing.new_nonce("permit2")
    assert c != d and c.isdigit() and 0 <= int(c) < 2**256
