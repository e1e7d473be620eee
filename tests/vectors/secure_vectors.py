#!/usr/bin/python3
"""
Independent reference for ferry secure mode (spec/kcp.md §3.2-§3.7, §3.10, §3.13).

Written from the spec text only, with python3-cryptography (X25519, ChaCha20-Poly1305) and
hashlib/hmac (BLAKE2b, HMAC-BLAKE2b); it shares no code with src/proto/secure.c. It prints
every value tests/unit/test_secure.c asserts, as C-ready hex. Run:

    /usr/bin/python3 tests/vectors/secure_vectors.py            # print the vectors
    /usr/bin/python3 tests/vectors/secure_vectors.py --check    # also compare with §3.13

--check exits non-zero when a value differs from the reference values quoted in §3.13
(or the published cacophony vector for Noise_NNpsk0_25519_ChaChaPoly_BLAKE2b).
"""
import hashlib
import hmac
import struct
import sys

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives import serialization

HASHLEN = 64
RAW = serialization.Encoding.Raw


# ---- primitives ----

def blake2b(data, size=64, key=b""):
    return hashlib.blake2b(data, digest_size=size, key=key).digest()


def hmac_b2b(key, data):
    # hashlib.blake2b: block 128, digest 64, which is what §3.1 prescribes for HMAC
    return hmac.new(key, data, hashlib.blake2b).digest()


def hkdf(ck, ikm, n):
    """Noise HKDF: outputs 1..n (n in 1..3) of the HMAC chain."""
    temp = hmac_b2b(ck, ikm)
    out, prev = [], b""
    for i in range(1, n + 1):
        prev = hmac_b2b(temp, prev + bytes([i]))
        out.append(prev)
    return out


def x25519_pub(priv):
    return X25519PrivateKey.from_private_bytes(priv).public_key().public_bytes(RAW, serialization.PublicFormat.Raw)


def x25519(priv, pub):
    return X25519PrivateKey.from_private_bytes(priv).exchange(X25519PublicKey.from_public_bytes(pub))


def nonce96(n):
    return b"\0" * 4 + struct.pack("<Q", n)


def aead_seal(key, n, ad, pt):
    return ChaCha20Poly1305(key).encrypt(nonce96(n), pt, ad)


def aead_open(key, n, ad, ct):
    return ChaCha20Poly1305(key).decrypt(nonce96(n), ct, ad)


# HChaCha20 (draft-irtf-cfrg-xchacha) by hand: cryptography 38 has no XChaCha20-Poly1305.
def _rotl(v, c):
    return ((v << c) & 0xffffffff) | (v >> (32 - c))


def _qr(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = _rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = _rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = _rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = _rotl(s[b] ^ s[c], 7)


def hchacha20(key, nonce16):
    s = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]
    s += list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))
    for _ in range(10):
        _qr(s, 0, 4, 8, 12); _qr(s, 1, 5, 9, 13); _qr(s, 2, 6, 10, 14); _qr(s, 3, 7, 11, 15)
        _qr(s, 0, 5, 10, 15); _qr(s, 1, 6, 11, 12); _qr(s, 2, 7, 8, 13); _qr(s, 3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def xaead_seal(key, nonce24, ad, pt):
    sub = hchacha20(key, nonce24[:16])
    return ChaCha20Poly1305(sub).encrypt(b"\0" * 4 + nonce24[16:], pt, ad)


# ---- Noise symmetric state (Noise spec §5.2) ----

class Noise:
    def __init__(self, name, prologue):
        self.h = name.ljust(HASHLEN, b"\0") if len(name) <= HASHLEN else blake2b(name)
        self.ck = self.h
        self.k = None
        self.n = 0
        self.mix_hash(prologue)

    def mix_hash(self, data):
        self.h = blake2b(self.h + data)

    def mix_key(self, ikm):
        self.ck, t = hkdf(self.ck, ikm, 2)
        self.k, self.n = t[:32], 0

    def mix_key_and_hash(self, ikm):
        self.ck, th, tk = hkdf(self.ck, ikm, 3)
        self.mix_hash(th)
        self.k, self.n = tk[:32], 0

    def encrypt_and_hash(self, pt):
        ct = aead_seal(self.k, self.n, self.h, pt)
        self.n += 1
        self.mix_hash(ct)
        return ct

    def decrypt_and_hash(self, ct):
        pt = aead_open(self.k, self.n, self.h, ct)
        self.n += 1
        self.mix_hash(ct)
        return pt

    # e token in a PSK handshake: MixHash(e.pub) and MixKey(e.pub)
    def e_token(self, pub):
        self.mix_hash(pub)
        self.mix_key(pub)


NAME = b"Noise_NNpsk0_25519_ChaChaPoly_BLAKE2b"


def nnpsk0(prologue, psk, ei, er, p1, p2):
    """Generic NNpsk0 run: returns (msg1, msg2, h, (c_i2r, c_r2i)) with raw Noise messages."""
    ini, res = Noise(NAME, prologue), Noise(NAME, prologue)
    for st in (ini, res):
        st.mix_key_and_hash(psk)
    ei_pub = x25519_pub(ei)
    ini.e_token(ei_pub)
    m1 = ei_pub + ini.encrypt_and_hash(p1)
    res.e_token(m1[:32])
    assert res.decrypt_and_hash(m1[32:]) == p1
    er_pub = x25519_pub(er)
    res.e_token(er_pub)
    res.mix_key(x25519(er, ei_pub))
    m2 = er_pub + res.encrypt_and_hash(p2)
    ini.e_token(m2[:32])
    ini.mix_key(x25519(ei, m2[:32]))
    assert ini.decrypt_and_hash(m2[32:]) == p2
    assert ini.h == res.h and ini.ck == res.ck
    k1, k2 = hkdf(ini.ck, b"", 2)
    return m1, m2, ini.h, (k1[:32], k2[:32])


# ---- ferry secure (§3.3-§3.7) with the fixed inputs of §3.13 ----

PROLOGUE = b"ferry-secure-v1"
PSK = bytes(range(0x00, 0x20))
EI = bytes(range(0x20, 0x40))
ER = bytes(range(0x40, 0x60))
A_PRIV = bytes(range(0x60, 0x80))
B_PRIV = bytes(range(0x80, 0xa0))
A2_PRIV = bytes(range(0xc0, 0xe0))
B2_PRIV = bytes(range(0xe0, 0x100))
I_INDEX, R_INDEX, CONV = 0x11111111, 0x22222222, 0x33333333
UNIX_MS, MTU, FLAGS = 1700000000000, 1350, 3
COOKIE_SECRET = bytes(range(0xa0, 0xc0))
COOKIE_NONCE = bytes(range(0xc0, 0xd8))       # our choice; §3.13 names no nonce
SRC = bytes([192, 0, 2, 1]) + struct.pack(">H", 4000)


def payload1(flags, index, conv, unix_ms, mtu):
    return struct.pack("<BBHIIQH", 1, flags, 0, index, conv, unix_ms, mtu) + b"\0" * 42


def payload2(flags, index, conv, mtu):
    return struct.pack("<BBHIIHH", 1, flags, 0, index, conv, mtu, 0)


def ferry_handshake():
    ini = Noise(NAME, PROLOGUE)
    ini.mix_key_and_hash(PSK)
    pre = (ini.ck, ini.h, ini.k)
    ei_pub = x25519_pub(EI)
    ini.e_token(ei_pub)
    ct1 = ini.encrypt_and_hash(payload1(FLAGS, I_INDEX, CONV, UNIX_MS, MTU))
    msg1 = struct.pack("<B3xI", 1, I_INDEX) + ei_pub + ct1 + b"\0" * 16
    assert len(msg1) == 136
    h1, ck1 = ini.h, ini.ck

    res = Noise(NAME, PROLOGUE)
    res.mix_key_and_hash(PSK)
    res.e_token(msg1[8:40])
    p1 = res.decrypt_and_hash(msg1[40:120])
    flags = p1[1] & FLAGS
    er_pub = x25519_pub(ER)
    res.e_token(er_pub)
    res.mix_key(x25519(ER, msg1[8:40]))
    ct2 = res.encrypt_and_hash(payload2(flags, R_INDEX, CONV, MTU))
    msg2 = struct.pack("<B3xII", 2, R_INDEX, I_INDEX) + er_pub + ct2
    assert len(msg2) == 76

    ini.e_token(msg2[12:44])
    ini.mix_key(x25519(EI, msg2[12:44]))
    ini.decrypt_and_hash(msg2[44:76])
    assert ini.h == res.h and ini.ck == res.ck
    t1, t2, t3 = hkdf(ini.ck, b"", 3)
    return dict(pre=pre, msg1=msg1, h1=h1, ck1=ck1, msg2=msg2, h=ini.h,
                k_i2r=t1[:32], k_r2i=t2[:32], rk0=t3)


def data_packet(ptype, key, rindex, ctr, pt):
    hdr = struct.pack("<B3xIQ", ptype, rindex, ctr)
    return hdr + ChaCha20Poly1305(key).encrypt(nonce96(ctr), pt, hdr)


def rekey(rk, a_priv, b_priv):
    a_pub, b_pub = x25519_pub(a_priv), x25519_pub(b_priv)
    dh = x25519(b_priv, a_pub)
    assert dh == x25519(a_priv, b_pub)
    rk1, u1, u2 = hkdf(rk, dh + a_pub + b_pub, 3)
    return dict(a_pub=a_pub, b_pub=b_pub, rk1=rk1, k_i2r=u1[:32], k_r2i=u2[:32])


def cookie_values(msg1):
    cookie_key = blake2b(b"ferry-secure-v1 cookie key", 32, PSK)
    cookie = blake2b(SRC, 16, COOKIE_SECRET)
    mac2 = blake2b(msg1[:120], 16, cookie)
    tag = msg1[104:120]
    reply = struct.pack("<B3xI", 3, I_INDEX) + COOKIE_NONCE + xaead_seal(cookie_key, COOKIE_NONCE, tag, cookie)
    assert len(reply) == 64
    return dict(cookie_key=cookie_key, cookie=cookie, mac2=mac2, reply=reply)


def fingerprint(psk):
    return blake2b(b"ferry-secure-v1 fingerprint", 32, psk)[:8]


# ---- the cacophony vector (Noise_NNpsk0_25519_ChaChaPoly_BLAKE2b) ----

CACO = dict(
    prologue="4a6f686e2047616c74",
    psk="54686973206973206d7920417573747269616e20706572737065637469766521",
    ei="893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a",
    er="bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b",
    p1="4c756477696720766f6e204d69736573",
    p2="4d757272617920526f746862617264",
    p3="462e20412e20486179656b",
    p4="4361726c204d656e676572",
)
CACO_WANT = dict(
    m1="ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944ed63df2f5a12aee1185ee9c50"
       "305f2ecf12421dcb53c047a63b784cf7c54a105",
    m2="95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f1448088430e0fe7d5c0c9b92f7478716c8"
       "852f1b4f389edb75e3ebe546fafafd5b6f0f7",
    h="ed5e9692d0ab507b6c2beec3f584fd5b127817a9d20b26cd50aa72c507260fa31aa7d88dd3723316338af37"
      "ce0b4cfb2923aeb848bbf2b934911306f01ffc963",
    m3="0fe04b26dcfbb69f8a6a94c61f1a26ef88769218d32f5d17c068a6",
    m4="2239e0c540c01f09eb1f4cc5258fd5acfefff18a5a3773f21b7bfe",
)


def cacophony():
    c = {k: bytes.fromhex(v) for k, v in CACO.items()}
    m1, m2, h, (k1, k2) = nnpsk0(c["prologue"], c["psk"], c["ei"], c["er"], c["p1"], c["p2"])
    return dict(m1=m1, m2=m2, h=h, m3=aead_seal(k1, 0, b"", c["p3"]), m4=aead_seal(k2, 0, b"", c["p4"]))


# ---- §3.13 reference values, as quoted in the spec ----

SPEC = dict(
    msg1="0100000011111111358072d6365880d1aeea329adf9121383851ed21a28e3b75e965d0d2cd166254"
         "9a43c8b8082a6951144842658a36f70f9094e3449962ae1f5beebfc67e4c9551a53da3b95783713d"
         "0c042c0b28c4734da2698af74ccc81105d5585169dfa1ed8fcbaa3caec7879b126dc1544074857f3"
         "00000000000000000000000000000000",
    msg2="02000000222222221111111179a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89"
         "af85a51aaba137b65e3cf725dba232b14614b33a48651a0ac5c70cb3b76c16b38fbd43b0",
    h="96bb7ef586e6d4ed3078551012ea533a5738b72118445ac001291cc0e96eddac"
      "6a7d96e094c76c3c934149962e088ff48fbea43d19209b0e45dc2583966c7c3c",
    k_i2r="273411a20d403ff9ba529df1d8012e772ba280ec3bee3a4fee564071947dc664",
    k_r2i="c01df1c863723d216a12b9cfebc9d9d456677dce38c24129e4e7719888759111",
    rk0="6f86546ffbbb50f2e60dff2deb0f84400ba3c76cbb6b505fa8c8143f8a6b3a2e"
        "1712d2c63d3900fcf708327cb0068fcc728636f7168a6751a787273f036ea48d",
    data0="040000002222222200000000000000008d03487f1710b80d708796a66156c8aca4a8b91b1d",
    data1="04000000222222220100000000000000bc4db961d6940e151e6ae1c315f4cc0ed857f162a1",
    data2_32="04000000222222220000000001000000987110b723104a599f93b2d3ca22377090c2d19795",
    a_pub="675dd574ed7789310b3d2e7681f3790b466c773b1521fecf36577958371ea52f",
    b_pub="493e82fc74464a59268817623d2053c5eb8e2cc4a988b4fee179ec6b010d531d",
    rk1="fdb781eaefe988e8d9a8ff5ef02a9c4e6000428df8dd8e0d942e12b87c3ef40a"
        "3337ebca74b218895fb2f3d327bfac697e770d2623e107cae2430939dfb7039f",
    k_i2r1="f957973c236d5e0c1c6cb843622c2888aea1ab6487cfeab36694a0debb2edcd3",
    k_r2i1="bfe9521e5c0344716d18666a2c2f03a005d56a13f7bc118deef5700a9165f713",
    fingerprint="092eca4ee02abd2b",
    cookie_key="aab28720cf4fc9200f76cacbd4c8b7d6e4ab1baae8ee43b492418334dec2a93e",
    cookie="171cc80be6a760b2b95a963dba28cd43",
    mac2="b4fde869019383bba1031128f2e1d53d",
    hmac32="178056d90badbce5e533b4b4359a64b51cd95e3ed81262b62137f5de78de7523",
)


def c_array(name, b):
    lines = []
    for i in range(0, len(b), 12):
        lines.append("\t" + " ".join("0x%02x," % x for x in b[i:i + 12]))
    return "static const uint8_t %s[%d] = {\n%s\n};" % (name, len(b), "\n".join(lines))


def main():
    out = {}
    # 1. HMAC / HKDF: 64-byte ck = 0x00..0x3f; ikm of 0, 32 and 200 bytes (0xff - i)
    ck = bytes(range(64))
    out["hmac_00_1f_empty"] = hmac_b2b(bytes(range(32)), b"")
    for ilen in (0, 32, 200):
        ikm = bytes((0xff - i) & 0xff for i in range(ilen))
        o = hkdf(ck, ikm, 3)
        out["hkdf_ikm%d" % ilen] = b"".join(o)
        # 1 and 2 outputs are prefixes of the chain by construction; check it anyway
        assert hkdf(ck, ikm, 1) == o[:1] and hkdf(ck, ikm, 2) == o[:2]

    hs = ferry_handshake()
    out["pre_ck"], out["pre_h"], out["pre_k"] = hs["pre"]
    for k in ("msg1", "h1", "ck1", "msg2", "h", "k_i2r", "k_r2i", "rk0"):
        out[k] = hs[k]
    out["data0"] = data_packet(4, hs["k_i2r"], R_INDEX, 0, b"hello")
    out["data1"] = data_packet(4, hs["k_i2r"], R_INDEX, 1, b"hello")
    out["data2_32"] = data_packet(4, hs["k_i2r"], R_INDEX, 1 << 32, b"hello")
    rk = rekey(hs["rk0"], A_PRIV, B_PRIV)
    out["a_pub"], out["b_pub"], out["rk1"] = rk["a_pub"], rk["b_pub"], rk["rk1"]
    out["k_i2r1"], out["k_r2i1"] = rk["k_i2r"], rk["k_r2i"]
    ck_ = cookie_values(hs["msg1"])
    out.update(ck_)
    out["fingerprint"] = fingerprint(PSK)
    out["hmac32"] = out["hmac_00_1f_empty"][:32]
    # The packet sequence test_secure.c scripts on the §3.13 handshake (see test_session_*):
    #  I's key confirmation (empty DATA, counter 0 under k_i2r); R's first DATA "hello" under k_r2i, counter 0;
    #  rekey 1, A = I: I's REKEY_INIT at counter 2^60 (the count trigger), new_index_A 0x11aaaaaa;
    #    R's REKEY_ACK at its counter 1, new_index_B 0x22bbbbbb; I's empty DATA (counter 0) under
    #    k_i2r', then "hello" at counter 1; R's "hello" under k_r2i' at counter 0;
    #  rekey 2, A = R (count trigger at 2^60, a = 0xc0..0xdf, new index 0x22cccccc), B = I
    #    (b = 0xe0..0xff, new index 0x11dddddd): HKDF(rk_1, dh ‖ R.e ‖ I.e, 3), directions by the
    #    original roles; R's empty DATA under k_r2i'' (counter 0) then "hello" (1); I's "hello" (0).
    new_a, new_b = 0x11aaaaaa, 0x22bbbbbb
    init_pt = bytes([1, 0, 0, 0]) + struct.pack("<I", new_a) + rk["a_pub"]
    ack_pt = bytes([2, 0, 0, 0]) + struct.pack("<II", new_b, new_a) + rk["b_pub"]
    out["i2r_confirm"] = data_packet(4, hs["k_i2r"], R_INDEX, 0, b"")
    out["r2i_hello"] = data_packet(4, hs["k_r2i"], I_INDEX, 0, b"hello")
    out["rekey_init"] = data_packet(5, hs["k_i2r"], R_INDEX, 1 << 60, init_pt)
    out["rekey_ack"] = data_packet(5, hs["k_r2i"], I_INDEX, 1, ack_pt)
    out["i2r1_confirm"] = data_packet(4, rk["k_i2r"], new_b, 0, b"")
    out["i2r1_hello"] = data_packet(4, rk["k_i2r"], new_b, 1, b"hello")
    out["r2i1_hello"] = data_packet(4, rk["k_r2i"], new_a, 0, b"hello")
    rk2 = rekey(rk["rk1"], A2_PRIV, B2_PRIV)
    new_a2, new_b2 = 0x22cccccc, 0x11dddddd
    out["rk2"], out["k_i2r2"], out["k_r2i2"] = rk2["rk1"], rk2["k_i2r"], rk2["k_r2i"]
    out["r2i2_hello"] = data_packet(4, rk2["k_r2i"], new_b2, 1, b"hello")
    out["i2r2_hello"] = data_packet(4, rk2["k_i2r"], new_a2, 0, b"hello")
    caco = cacophony()
    for k, v in caco.items():
        out["caco_" + k] = v

    for k, v in out.items():
        print(c_array("v_" + k, v))

    if "--check" in sys.argv:
        bad = 0
        for k, want in SPEC.items():
            if out[k].hex() != want:
                print("MISMATCH %s: got %s want %s" % (k, out[k].hex(), want), file=sys.stderr)
                bad += 1
        for k, want in CACO_WANT.items():
            if caco[k].hex() != want:
                print("MISMATCH cacophony %s: got %s want %s" % (k, caco[k].hex(), want), file=sys.stderr)
                bad += 1
        print("%d mismatches" % bad, file=sys.stderr)
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
