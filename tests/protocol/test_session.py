"""Session codec (spec §1.7, §1.11, §3.3): Diffie-Hellman key data, session key derivation,
``HS_MAC`` credentials, RSA key transport and message encryption, checked against the session
setups recorded from the reference server (``../shared/vectors``).

The recordings hold no private Diffie-Hellman value, so their session keys (and so their
``HS_MAC`` values) cannot be recomputed. What is checked against them: every byte of the key
exchange data, and every byte of the ``HS_MAC`` credential except the 32 MAC bytes. That the
MAC covers what :func:`mac_bytes` says is checked by an independent HMAC computation here
and, end to end, by our client and server agreeing (tests/server/test_sessions.py).
"""

from __future__ import annotations

import hashlib
import hmac
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from hypothesis import given, settings
from hypothesis import strategies as st

from idnode.errors import ProtocolViolation
from idnode.protocol.bodies import SessionSetupRequest, SessionSetupResponse
from idnode.protocol.codes import OpCode, OpFlag
from idnode.protocol.credential import HS_MAC, HS_SIGNED, Credential
from idnode.protocol.message import Message
from idnode.protocol.session import (
    OAKLEY_GROUP_2,
    CipherAlgorithm,
    DHKeyPair,
    DHPublicKey,
    KeyExchangeMode,
    decrypt_payload,
    decrypt_session_key,
    derive_session_key,
    dh_response_data,
    encrypt_payload,
    encrypt_session_key,
    mac_bytes,
    mac_credential,
    new_session_key,
    parse_dh_response_data,
    parse_exchanged_key,
    verify_mac,
)
from idnode.protocol.types.hs_pubkey import DH_PUB_KEY, PublicKeyData
from tests.vectors_util import load_messages, pem_blocks, readme_section

EXCHANGES = ["session-create-seckey", "genericbatch-create-session"]
_, RSA_PRIVATE_PEM = pem_blocks(readme_section("RSA identity key"))


def _messages(name: str) -> list[Message]:
    return [Message.decode(block.data) for block in load_messages(name)]


@pytest.mark.parametrize("name", EXCHANGES)
def test_recorded_setup_request_decodes_and_reencodes(name: str) -> None:
    setup = _messages(name)[0]
    body = setup.body
    assert isinstance(body, SessionSetupRequest)
    assert body.mode == KeyExchangeMode.DH
    assert body.timeout == 86400
    assert (body.identity_handle, body.identity_index) == ("20.500.999/ADMIN", 300)
    assert setup.has(OpFlag.CT) and setup.has(OpFlag.RD)
    key = DHPublicKey.from_bytes(body.public_key)
    assert key.p == OAKLEY_GROUP_2 and key.g == 2
    # Java's BigInteger encoding, rebuilt from the integers alone: byte-exact.
    rebuilt = DHPublicKey(key.y, key.p, key.g)
    assert rebuilt.to_bytes() == body.public_key
    assert setup.encode() == load_messages(name)[0].data


@pytest.mark.parametrize("name", EXCHANGES)
def test_recorded_setup_response_data(name: str) -> None:
    request, response = _messages(name)[:2]
    body = response.body
    assert isinstance(body, SessionSetupResponse)
    assert body.mode == KeyExchangeMode.DH
    algorithm, server_key = parse_dh_response_data(body.data)
    assert algorithm == CipherAlgorithm.AES
    client = request.body
    assert isinstance(client, SessionSetupRequest)
    client_key = DHPublicKey.from_bytes(client.public_key)
    assert (server_key.p, server_key.g) == (client_key.p, client_key.g)
    # Rebuilt from integers: the same bytes as the reference server wrote.
    assert dh_response_data(algorithm, DHPublicKey(server_key.y, server_key.p, 2)) == body.data
    assert response.session_id != 0  # the new session's id
    # The setup response is signed with the server key, not the session key (counter 0).
    credential = Credential.from_bytes(response.credential)
    assert credential.type == HS_SIGNED and credential.signer_index == 0


@pytest.mark.parametrize("name", EXCHANGES)
def test_recorded_hs_mac_credential_layout(name: str) -> None:
    """Everything but the MAC bytes of the recorded credential comes out of mac_credential."""
    messages = _messages(name)
    create = messages[2]
    assert create.op == OpCode.CREATE_HANDLE
    assert create.session_id == messages[1].session_id
    recorded = Credential.from_bytes(create.credential)
    assert recorded.type == HS_MAC
    assert recorded.digest_alg == "HMAC-SHA256"
    assert recorded.signer_index == 1  # the client's first session counter
    ours = mac_credential(
        bytes(32),
        create.version,
        create.suggested_version,
        create.session_id,
        create.request_id,
        recorded.signer_index,
        create.header_and_body(),
    )
    assert len(ours.signature) == len(recorded.signature) == 32
    assert ours.to_bytes()[:-32] == recorded.to_bytes()[:-32]
    assert not verify_mac(
        bytes(32),
        recorded,
        create.version,
        create.suggested_version,
        create.session_id,
        create.request_id,
        create.header_and_body(),
    )


def test_mac_is_hmac_sha256_over_versions_ids_header_and_body() -> None:
    """Independent computation of the 2.8+ layout on a recorded request."""
    create = _messages("session-create-seckey")[2]
    key = bytes(range(32))
    prefix = bytes([2, 11, 2, 11]) + struct.pack(">III", create.session_id, create.request_id, 7)
    expected = hmac.new(key, prefix + create.header_and_body(), hashlib.sha256).digest()
    credential = mac_credential(
        key, (2, 11), (2, 11), create.session_id, create.request_id, 7, create.header_and_body()
    )
    assert credential.signature == expected
    assert mac_bytes((2, 11), (2, 11), create.session_id, create.request_id, 7, b"x") == (
        prefix + b"x"
    )


def test_dh_agreement_gives_both_sides_the_same_key() -> None:
    client = DHKeyPair.generate()
    server = DHKeyPair.generate(client.public.p, client.public.g)
    peer_of_server = DHPublicKey.from_bytes(server.public.to_bytes())
    peer_of_client = DHPublicKey.from_bytes(client.public.to_bytes())
    secret = client.shared_secret(peer_of_server)
    assert secret == server.shared_secret(peer_of_client)
    assert len(secret) == 128  # padded to the byte length of p
    for alg, size in ((CipherAlgorithm.AES, 32), (CipherAlgorithm.DES, 8)):
        key = derive_session_key(secret, alg)
        assert len(key) == size
    assert "x=" not in repr(client)


def test_aes_key_skips_leading_zero_bytes_like_java() -> None:
    secret = bytes(3) + bytes(range(1, 126))
    assert derive_session_key(secret, CipherAlgorithm.AES) == bytes(range(1, 33))
    # Never past the point where 32 bytes remain.
    assert derive_session_key(bytes(40), CipherAlgorithm.AES) == bytes(32)


def test_des_keys_get_odd_parity() -> None:
    key = derive_session_key(bytes(range(24)) + bytes(104), CipherAlgorithm.DESEDE)
    assert len(key) == 24
    assert all(bin(b).count("1") % 2 == 1 for b in key)
    with pytest.raises(ProtocolViolation):
        derive_session_key(bytes(128), 9)


@pytest.mark.parametrize(
    "y,p,g",
    [
        (1, OAKLEY_GROUP_2, 2),  # y = 1
        (OAKLEY_GROUP_2 - 1, OAKLEY_GROUP_2, 2),  # y = p - 1
        (5, 2**127 - 1, 2),  # modulus far too small
        (5, OAKLEY_GROUP_2, 1),  # g = 1
        (5, OAKLEY_GROUP_2 + 1, 2),  # even modulus
    ],
)
def test_unsafe_dh_keys_are_refused(y: int, p: int, g: int) -> None:
    data = PublicKeyData.from_integers(DH_PUB_KEY, y, p, g).to_bytes()
    with pytest.raises(ProtocolViolation):
        DHPublicKey.from_bytes(data)


def test_non_dh_key_and_garbage_are_refused() -> None:
    rsa_data = PublicKeyData.from_integers("RSA_PUB_KEY", 65537, 2**1023 + 1).to_bytes()
    for data in (rsa_data, b"", b"\x00\x00\x00\x0aDH_PUB_KEY", b"\xff" * 10):
        with pytest.raises(ProtocolViolation):
            DHPublicKey.from_bytes(data)
    with pytest.raises(ProtocolViolation):
        parse_dh_response_data(b"\x00\x00")


def test_shared_secret_refuses_other_parameters() -> None:
    ours = DHKeyPair.generate()
    other = DHPublicKey(5, OAKLEY_GROUP_2 - 2, 2)
    with pytest.raises(ProtocolViolation):
        ours.shared_secret(other)


@settings(max_examples=40, deadline=None)
@given(
    key=st.binary(min_size=8, max_size=48),
    body=st.binary(min_size=24, max_size=300),
    session_id=st.integers(1, 2**31 - 1),
    request_id=st.integers(0, 2**32 - 1),
    counter=st.integers(1, 2**32 - 1),
    version=st.sampled_from([(2, 11), (2, 10), (2, 7), (2, 6), (2, 5), (2, 4), (2, 1)]),
)
def test_mac_round_trip_and_tampering(
    key: bytes,
    body: bytes,
    session_id: int,
    request_id: int,
    counter: int,
    version: tuple[int, int],
) -> None:
    cred = mac_credential(key, version, version, session_id, request_id, counter, body)
    decoded = Credential.from_bytes(cred.to_bytes())
    assert decoded == cred
    assert verify_mac(key, decoded, version, version, session_id, request_id, body)
    tampered = bytes([body[-1] ^ 1])
    assert not verify_mac(
        key, decoded, version, version, session_id, request_id, body[:-1] + tampered
    )
    assert not verify_mac(key + b"x", decoded, version, version, session_id, request_id, body)
    if version >= (2, 7):  # the ids are covered (2.5/2.6 MAC them only by accident)
        assert not verify_mac(key, decoded, version, version, session_id, request_id ^ 1, body)
        replayed = Credential(
            signer_index=counter ^ 1,
            type=HS_MAC,
            digest_alg=cred.digest_alg,
            signature=cred.signature,
        )
        assert not verify_mac(key, replayed, version, version, session_id, request_id, body)


def test_verify_mac_refuses_other_credentials() -> None:
    body = bytes(30)
    signed = Credential(type=HS_SIGNED, digest_alg="SHA-256", signature=bytes(32))
    assert not verify_mac(b"k" * 32, signed, (2, 11), (2, 11), 1, 1, body)
    unknown = Credential(type=HS_MAC, digest_alg="WHIRLPOOL", signature=bytes(32))
    assert not verify_mac(b"k" * 32, unknown, (2, 11), (2, 11), 1, 1, body)


def _rsa_key() -> rsa.RSAPrivateKey:
    key = load_pem_private_key(RSA_PRIVATE_PEM, None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def test_rsa_key_transport_round_trip() -> None:
    private = _rsa_key()
    key = new_session_key()
    assert len(key) == 32
    data = encrypt_session_key(private.public_key(), CipherAlgorithm.AES, key)
    assert decrypt_session_key(private, data) == (CipherAlgorithm.AES, key)
    with pytest.raises(ProtocolViolation):
        decrypt_session_key(private, data[:-1] + bytes([data[-1] ^ 1]))


def test_exchanged_key_with_or_without_algorithm() -> None:
    key = bytes(range(16))
    assert parse_exchanged_key(key) == (CipherAlgorithm.AES, key)
    assert parse_exchanged_key(b"\x00\x00\x00\x03" + key) == (3, key)
    with pytest.raises(ProtocolViolation):
        parse_exchanged_key(b"short")


@settings(max_examples=30, deadline=None)
@given(payload=st.binary(max_size=2000))
def test_encryption_round_trip(payload: bytes) -> None:
    key = new_session_key()
    sealed = encrypt_payload(key, CipherAlgorithm.AES, payload)
    assert len(sealed) % 16 == 0 and sealed[16:] != payload
    assert decrypt_payload(key, CipherAlgorithm.AES, sealed) == payload


def test_bad_ciphertext_is_a_protocol_error() -> None:
    key = new_session_key()
    for data in (b"", bytes(17), bytes(31)):
        with pytest.raises(ProtocolViolation):
            decrypt_payload(key, CipherAlgorithm.AES, data)
    with pytest.raises(ProtocolViolation):
        encrypt_payload(key, CipherAlgorithm.DES, b"x")
