/*
 * crypto/kcptun_crypt: the PBKDF2 and xor-table vectors of spec/kcp.md §2.2–2.3; the
 * minimal-profile datagram of §2.11 opened as "none"; the first datagram of Debian's
 * kcptun-client 20210922 for every cipher it offers, captured on loopback in a private
 * network namespace (each must open with a good CRC to a KCP PUSH sn=0 carrying smux SYN,
 * and sealing that plaintext with its nonce must give the captured bytes back), and for
 * twofish, which is our own code rather than a library's, the second datagram too; a default-
 * profile FEC group (aes, 10/3); AES-CFB and SM4-CFB against python3-cryptography; salsa20
 * against a reference Salsa20 written here; seal → open round trips at every size from 20
 * to 1500 bytes; CRC mismatches; names. Prints seal/open speed (informational).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/kcptun_crypt.h"
#include "proto/fec.h"
#include "test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_BYTES 66000

static const char *const all_ciphers[] = {
	"aes", "aes-128", "aes-192", "salsa20", "blowfish", "twofish", "cast5", "3des", "tea", "xtea", "xor", "sm4", "none",
	"null",
};


static bool hex_eq(const uint8_t *p, size_t n, const char *h)
{
	uint8_t want[MAX_BYTES];

	return test_unhex(h, want, sizeof(want)) == n && !memcmp(p, want, n);
}

static struct kcptun_crypt *crypt_new(const char *name, const char *key)
{
	struct kcptun_crypt *c = NULL;
	int rc = kcptun_crypt_new(name, key, &c);

	if (rc)
		fprintf(stderr, "  kcptun_crypt_new(%s): %d\n", name, rc);
	CHECK_EQ(rc, 0);
	return c;
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- §2.2, §2.3 vectors ---- */

static void test_kcptun_key_derivation_matches_spec(void)
{
	uint8_t pass[KCPTUN_CRYPT_PASS_BYTES];

	CHECK_EQ(kcptun_crypt_derive("test", pass), 0);
	CHECK(hex_eq(pass, sizeof(pass), "fc0327c66699e5622be3b108e336991375ba429750939d57003dc89d9fed8859"));
	CHECK_EQ(kcptun_crypt_derive("it's a secrect", pass), 0);
	CHECK(hex_eq(pass, sizeof(pass), "25d7d7bd51050742d8d791f2b653c6c8b2366b7e25a124cf7a2e12eaf4ffa444"));
}

/* With a zero nonce the first 16 sealed bytes are the table itself. */
static void test_kcptun_xor_table_prefix_matches_spec(void)
{
	struct kcptun_crypt *c = crypt_new("xor", "test");
	static const uint8_t zero[KCPTUN_CRYPT_NONCE_BYTES];
	uint8_t buf[40] = { 0 };

	kcptun_crypt_seal_nonce(c, buf, sizeof(buf), zero);
	CHECK(hex_eq(buf, 16, "ab86cd9bea0b76fcd56f363040c5aab5"));
	kcptun_crypt_free(c);
}

/*
 * The table is 1500 bytes (kcp-go's mtuLimit): the last 16 of them are python's
 * hashlib.pbkdf2_hmac("sha1", pass, salt, 32, 1500)[1484:1500]; a longer datagram keeps
 * its tail clear, as kcp-go's xor over min(len, 1500) bytes does.
 */
static void test_kcptun_xor_table_covers_1500_bytes(void)
{
	struct kcptun_crypt *c = crypt_new("xor", "test");
	static const uint8_t zero[KCPTUN_CRYPT_NONCE_BYTES];
	static uint8_t buf[1600];
	bool tail_clear = true;

	memset(buf, 0, sizeof(buf));
	kcptun_crypt_seal_nonce(c, buf, sizeof(buf), zero);
	CHECK(hex_eq(buf + 1484, 16, "c278dc80fc4684b1d5c0c8de9263e502"));
	for (size_t i = 1500; i < sizeof(buf); i++)
		tail_clear &= buf[i] == 0;
	CHECK(tail_clear);
	CHECK_EQ(kcptun_crypt_open(c, buf, sizeof(buf)), 0);
	kcptun_crypt_free(c);
}

/* ---- §2.11: minimal profile, datagram 2, "hello\n" on stream 3 ---- */

#define SPEC_MINIMAL_HELLO \
	"2abe633e9d3a0636b05a04bc32bee318" "5de08de5" \
	"98761c60" "51" "00" "0002" "3f040000" "01000000" "00000000" "0e000000" \
	"0102060003000000" "68656c6c6f0a"

static void test_kcptun_opens_spec_minimal_datagram_as_none(void)
{
	struct kcptun_crypt *c = crypt_new("none", "test");
	uint8_t buf[64], again[64];
	size_t n = test_unhex(SPEC_MINIMAL_HELLO, buf, sizeof(buf));

	CHECK_EQ(n, 58);
	CHECK_EQ(kcptun_crypt_open(c, buf, n), 0);
	CHECK_EQ(get_le32(buf + 16), 0xe58de05d);
	CHECK_EQ(get_le32(buf + 20), 0x601c7698);	/* conv */
	CHECK(!memcmp(buf + 52, "hello\n", 6));
	/* sealing the same bytes with the same nonce writes the same CRC */
	memcpy(again, buf, n);
	memset(again + 16, 0, 4);
	kcptun_crypt_seal_nonce(c, again, n, buf);
	CHECK(!memcmp(again, buf, n));
	/* one flipped payload bit: CRC mismatch */
	buf[57] ^= 0x01;
	CHECK_EQ(kcptun_crypt_open(c, buf, n), -EBADMSG);
	kcptun_crypt_free(c);
}

/* ---- captures: kcptun-client --key test --crypt X --nocomp --datashard 0 --parityshard 0 ---- */

static const struct {
	const char *cipher;
	const char *hex;
} first_datagram[] = {
	{ "aes",
		"ddb1933e00c80654f9b2f3f5f98a231f1a7757e2bd2e60b44b4ba8efb588b11cd3ffef6b8659c40b8fd95bf1eb819c70"
		"cb5337c1" },
	{ "aes-128",
		"a24116bc4ce2851c3e11bdeb9053170109eb5b3cfc0683778dd34a7978a9585a16e21947090591524643b1216c18ae42"
		"7f338291" },
	{ "aes-192",
		"b6cc3524c6cbe9bba796aa5e41c4a4c7b9c7441cca58c7d9c9034dd0c3a7aeae3cf1e28f4d5113a318f163866e031ac5"
		"577de1e2" },
	{ "salsa20",
		"f896ecad6c1d718c793caa3044fc65af545d9fdc4e3dacf2eede9962aaed697e8bf03227954b433c73429e5d6083e497"
		"4673756c" },
	{ "blowfish",
		"375a63d9eaacc76b26be8ceb0a24d296d0e0f0bbb44bb9df086ac99e079c787f784707f9bac6f13899b96d777593db48"
		"3bae1fb8" },
	/* captured like the others, on loopback in a private netns, with a UDP socket standing in for the server */
	{ "twofish",
		"f8d875e81928ccbd19f3270b91fd90fbf55b422877b73ed0027c40b2010d355402722fc52b10081589b95b6a85307eaa"
		"a25c57e1" },
	{ "cast5",
		"97ea16c438d749ae2660a58db92e7096abda3c84c31c5c6c9994159603e7d5559bdf974d238b58130a22118c05ffda96"
		"ea0833bd" },
	{ "3des",
		"f29556de87571a09df2479ffbb675ac81da64d3ac0f2874f44cf062cdebbd789eefa477fe5922baee3a538e9bb83909a"
		"2b0f01cf" },
	{ "tea",
		"f011279f91a7d2f71a46af938324be6cf644337d0953e1e652baf19506d55c591ec608878d4e116e98a6313f5086a048"
		"ae74d7c4" },
	{ "xtea",
		"4fd992e561ecf344d66a6cfb7c301a52ee8932a0b97487237f021b70f54897e8b81144938e1c01c5d4be4910e08dec87"
		"a005565d" },
	{ "xor",
		"eecc68e013ea3b93cdafe4cdc8910f0d00c55feb9b45d93a578d560c788b35798edffefe515a71c613cb65daab935982"
		"035b5818" },
	{ "sm4",
		"e96f91e33da6e7ff6e1b353ce4a8105c96b84f6a7090eb9031c559446a9fd4ffd3bd1a92b929d6f7960f49eecf9981e2"
		"eba8b222" },
	{ "none",
		"93a0350c347884336c27d17a24c70c4e1b3cf344a613b68c510000028003000000000000000000000800000001000000"
		"03000000" },
	{ "null",
		"c3d1a532b9a0d62c1e442908c0d749f3ce87cf4e7b8fcf5f270f1b0b5fe65ac8a492fb7692797887ad7eea3f62643c89"
		"31767f15" },
};

/* A KCP PUSH sn=0 una=0 len=8 carrying smux v1 SYN for stream 3 (spec §2.11, datagram 1). */
static void check_push_syn(const uint8_t *kcp, size_t n)
{
	CHECK_EQ(n, 32);
	CHECK_EQ(kcp[4], 81);		/* PUSH */
	CHECK_EQ(kcp[5], 0);		/* frg */
	CHECK_EQ(get_le32(kcp + 12), 0);	/* sn */
	CHECK_EQ(get_le32(kcp + 16), 0);	/* una */
	CHECK_EQ(get_le32(kcp + 20), 8);	/* len */
	CHECK(hex_eq(kcp + 24, 8, "0100000003000000"));
}

static void test_kcptun_opens_first_datagram_of_every_kcptun_cipher(void)
{
	for (size_t i = 0; i < N(first_datagram); i++) {
		struct kcptun_crypt *c = crypt_new(first_datagram[i].cipher, "test");
		struct kcptun_crypt *other = crypt_new(strcmp(first_datagram[i].cipher, "xtea") ? "xtea" : "tea", "test");
		uint8_t wire[64], buf[64];
		size_t n = test_unhex(first_datagram[i].hex, wire, sizeof(wire));

		if (!c || !other)
			continue;
		memcpy(buf, wire, n);
		CHECK_EQ(kcptun_crypt_open(c, buf, n), 0);
		check_push_syn(buf + KCPTUN_CRYPT_HDR, n - KCPTUN_CRYPT_HDR);
		/* the plaintext sealed again with its own nonce is the captured datagram */
		kcptun_crypt_seal_nonce(c, buf, n, buf);
		if (memcmp(buf, wire, n)) {
			fprintf(stderr, "  %s: sealing does not give the capture back\n", first_datagram[i].cipher);
			CHECK(0);
		}
		/* another cipher (or key) does not open it */
		memcpy(buf, wire, n);
		CHECK_EQ(kcptun_crypt_open(other, buf, n), -EBADMSG);
		if (strcmp(first_datagram[i].cipher, "none")) {
			kcptun_crypt_free(other);
			other = crypt_new(first_datagram[i].cipher, "tesT");
			memcpy(buf, wire, n);
			CHECK_EQ(kcptun_crypt_open(other, buf, n), -EBADMSG);
		}
		kcptun_crypt_free(c);
		kcptun_crypt_free(other);
	}
}

/*
 * The datagram after the twofish one above (58 bytes: three whole CFB blocks and a short
 * one): PUSH sn=1 with smux PSH "hello\n" on stream 3, as in spec §2.11 datagram 2.
 */
static void test_kcptun_opens_twofish_push_with_payload(void)
{
	static const char hex[] = "94e50b1e9be7ec54a8afa6a0eee857e735916579afb2eaf1fecc10a593be97d284d3ec6d22f6f5e5"
				  "200e2e274d77129bd4963d85b571d1e5d5ce";
	struct kcptun_crypt *c = crypt_new("twofish", "test");
	uint8_t wire[64], buf[64];
	size_t n = test_unhex(hex, wire, sizeof(wire));

	CHECK_EQ(n, 58);
	memcpy(buf, wire, n);
	CHECK_EQ(kcptun_crypt_open(c, buf, n), 0);
	CHECK_EQ(buf[KCPTUN_CRYPT_HDR + 4], 81);		/* PUSH */
	CHECK_EQ(get_le32(buf + KCPTUN_CRYPT_HDR + 12), 1);	/* sn */
	CHECK_EQ(get_le32(buf + KCPTUN_CRYPT_HDR + 20), 14);	/* len */
	CHECK(hex_eq(buf + KCPTUN_CRYPT_HDR + 24, 14, "010206000300000068656c6c6f0a"));
	kcptun_crypt_seal_nonce(c, buf, n, buf);
	CHECK(!memcmp(buf, wire, n));
	kcptun_crypt_free(c);
}

/* kcptun 20210922 takes "null" as aes: its capture opens with aes, and aes's with null. */
static void test_kcptun_null_means_aes(void)
{
	struct kcptun_crypt *null = crypt_new("null", "test"), *aes = crypt_new("aes", "test");
	uint8_t buf[64];
	size_t n;

	CHECK(kcptun_crypt_null_is_aes(null));
	CHECK(!kcptun_crypt_null_is_aes(aes));
	CHECK_STR(kcptun_crypt_name(null), "aes");
	for (size_t i = 0; i < N(first_datagram); i++) {
		if (strcmp(first_datagram[i].cipher, "null") && strcmp(first_datagram[i].cipher, "aes"))
			continue;
		n = test_unhex(first_datagram[i].hex, buf, sizeof(buf));
		CHECK_EQ(kcptun_crypt_open(first_datagram[i].cipher[0] == 'n' ? aes : null, buf, n), 0);
	}
	kcptun_crypt_free(null);
	kcptun_crypt_free(aes);
}

/* ---- capture: kcptun-client --key test --crypt aes --nocomp --datashard 10 --parityshard 3 --mtu 200 ---- */

static const char *const aes_fec_group[] = {
	"fa2a0bc7adaf1086954fbe1c0e7538b1fb976259669bf6c7de22f709f2bc58cceaca52f57d454412eae58848b71e84ef"
	"c28f7d8441977d6b20a327bf",
	"50189fa3f70531cbfdbd3c4b0aaec8087315d08b1fe919a9067167df96836584867f4b46541ab0402efdf144df3c5aad"
	"cef0693fc308c3500eb161b783f2ce4b77bee5a37977d3aab78f843b0c434be4230a905f373d2192101a58fadef788f7"
	"126e33f65afc09d397ba71412c07f07b38db8c9b0b5671eb5f91f5a309ee777d1ee660ce1284acd64b110bf8444698d6"
	"3cb6417a9d5585bf3c46d76cb3a922121bbe0b990b5b3f16a0048073de3ada3043079a64f436cc1c1f0e4caa379aabef"
	"2c07e6b77c5208c4",
	"7f95b28003c43f7388e797c8f33ac8e1f34cf0b6ce62eae008c8abfcc790d8eddc504179adf707aa98c3cb55160f0a5d"
	"a0a92c6c3a110cc04de9ed09bbe4d31cab6d64d9e4618637e1bdfe28a1cef0a4c0c0ac09a79a7e71402be90d8fd1964d"
	"3cc0855ac758f9316c8c43ad9c2fdcf9c88166c23a0ee78dc08e1971571b22598c86cd54311421a3143052ce9ffdcc7f"
	"1c5fa909608369ad401010ca4e9faf1f5bf433341476e4e97039eab9965bd11b1a017e36041b0232c2390a9d79b3ef03"
	"42af2464049788e6",
	"7de46747640c22b415ba1162dc7af4e8e008eca031f23f4b6e3bb47f2620efaaa187f05d22edfcaf19b48df9dd2914e6"
	"a2191ac26badade3a60ee4424ffcddeee03cc3a675f250a01b8bf4599296ba870fe2ab9163655b98d5a6cd3e2d4878ff"
	"d12d9342a4245eb69fea6d1f7fae5731184ae1d7c2e30c9de14ef36c3a52a33439881cd59d3673c1b5dd976f86d73321"
	"5443f40446a49f3d265d9003612a304e27fc055f74257e30abde99b665b8ae117117df2f7ee9be844bc0039ef3131e12"
	"5b44102cf69ff357",
	"b0847084edafd77a20caeb3a9fb4b194820bcf760a87c1564b3c016703233dc20dde990ebe8a875e766d84c45c6465a7"
	"3d6c3c08064b9d694bfe9e079b5efbe274caf7df8dd56e1f56a7d48da9fa35aa62d91a63c5f704144909595de3173b09"
	"26b7b51c83bf34164cff90cd87c9b29f5f1820477551a9d81035a6e5ac0906fa860db4a4119b1379e341d3ec99136700"
	"f902ce482501839db4ac862bc7af7e6c782e145cbb0b6597657f1adfd31d8d2f2da1ec7a0c9d11cdb24398bdb37c8e46"
	"6fded40227cb7615",
	"46d3920af2f452d1e5be51ac38cbc657b2ac6314f8c3890179f113e87ab34030ff389105b4cefc7fed488818e178b079"
	"75cfd81a169a9b92d8811185c796c8b7fc8d10994960303102ac033fcecfe278724e74a864b5b392f2d05ce0c0925835"
	"96922e7c49446d39f2d0f56cd422d6a3eb99a2d0ecc922dcb28e6da279f9eec487eec3f3905db060d47629b40fc2c817"
	"dd9b3e2b3d3f08463b0991f396362be4131837e51ebe79a13650a5da7fa68133e7576eed6269efb48c81ea85a10f6e8b"
	"05f316aef914959e",
	"d43de443937c892dae0a38ae57edaae32fe357349b4b01f6416af95526cd76f0d871c62d8caad52a4918a0620e1ce45d"
	"d638b860c526016dc8320081cfacd64d9ff537e3986ba2050eba3c4f8fcc082101196f8d32564e8c57dd3c30be6fdcce"
	"b26f35221ff41f7463af129ccd28939335cd59379879f38ca494350b3971af5a30a12b3e100b1cccd6a9ae80554f67cc"
	"27428b7009f96db7e4f99de907a7fcd8d75c95fc0407142959e06913fd0f50f4d5961e016c807f6dbc74bcb4df7f7e63"
	"0fe511a0408fa049",
	"5140ae41d912ad77c7309521747669484117f2a9749506a2ac594be580d1b2013aa9c54666ebed0e8d0a73be10f95b9b"
	"06d0010748fa5e98423e9e81850eb17df46c06ac8ba223d75bba028f9fc2f4beb7d734809e3a52d232e8036a8e60bab0"
	"4e1c0a8dadaf20441249a51e36f9caf3d99dfa16680c43da39de8c296878c7dee1788813a2e4f0922db4cdc2a6fc3492"
	"5d654c90aa8f935fed07a4d66cbba140fed22af7aa64c8ed656b9c8183176c6d48c0170d2e12b35b38f98538810a7bd3"
	"3d3f87b53a6959a0",
	"7feb93bd11e901cf120fa2995695abba354fae7fa1ecc142a27f382b566b7943d933f84242fb8c5956148b6a536f8e74"
	"01ad184ced9a3999c2c864e82730511e3b0642cae380ac35a767119887f486ed2b9f4a164f3bea995d53f4025c5357b4"
	"70ead3f0d20e6cf437853b3075b7c7598eb555f87268167e19cd50cc7c38d57d5afbd505510833f12fd0a7f4c814603d"
	"1758da3eba45abf9e06bee9da9ee6361ddfc63ff7fcc133a2fd49d9462d7b3709505172740292f629063b639f7dad4f0"
	"5b34c2a31ba6f369",
	"22a6c8a21a4e5413fe0f3e1b5d9b6cf0cccbb29cdb2b5221c3c6d4af4b286cff12d61ef01d660f50634111c11aaeec92"
	"b6259ffa8d032e0b8900d9c21f0a02dcfa548cde5c0fb4c4678bb43dc571cbfc12268bf2718210ead461d55d7de017ef"
	"fb672ed346852a57b2f8b486bf1b7549af971382ac2f771467d445c9508638d0414114a4b4c0fa194c813f40505cebf1"
	"90581a07d289920089b3f1df5ca807cee559511417b481efbf4e24c2ef6082848e3401671e521c4ff548671976e02f12"
	"c915967a8bd3bc5c",
	"9382b86bac7ebb7ba9f88256178a12a8dcb67fdd5786868bf3e37d7afe45e1647bfba78d6f5b55d298dc76fda82da33e"
	"36da3355c7efd2c733afdce476ae5a78ccc7d5616ef49878fc68b230f4d0e7958fa369ea435b864a6ca38ae1e639d294"
	"e6b8916a580ba1ca5a49dc1e5b00146780cc93665d9599bdc33157dcbbefecce2f46149af2e74007a56565a270066894"
	"549371f8ea519e00c4a0aee921da18214a3cf280533036b44364e8ebfb7d5fa6cc631fcd5c7a4b65f00997bc8e8edaa2"
	"5f8ce7b7d4536c74",
	"7791392d49cdaf435b6fccf72d832abc146793d04e7c1cdf7d8cb023b1989076126eed6d759d138553aec5aea1abcfd1"
	"9c8976df64228af22e6019272a0f80292fad2227bb0c7fd8d36deee30ca071bfa3340a259cbc37769f5c897323888f82"
	"a0242e4ae8de7e5eeeea59feccc661be7e85269b1704cb915aa5b2e5d8cc8b8cf694fdb46313e991fc8f17bc7c42f094"
	"970477c8b5062836792b88bd812117e85b88cf5c7a9977e37325e536fbf9acd9641bcbe0e40e4d45206b2897e2e68259"
	"f2a97be499068d5c",
	"092eb4dfbc6c6b6f0c24521f28bcb4165f9a2bcdcdb168c486222155e669df6c69cf1bd7ad2b38aaf86ea5e6f4b19c76"
	"63a251c0502a357b5c3db622fd1837589ce96cf1497abd285cbec31fe9ae2163f3269172b425d6231eaae45c17a0cda8"
	"66a3770fab28088bd7531d771e4398e2b739d76a0aa630d6587a10cb78694fe9ea53468a05684e3c73fb403f9abb4a85"
	"79323a7ecd7f7d50c10e1abbf4a03f0901c5f15775ebc9df89660c25eeb5a7fa8bba228ee69b8098145da0bbd1ac6e16"
	"ac1dd571fbc695b2",
};

/* All 13 open; data seqids 0..9, parity 10..12, and the parity is what our encoder makes. */
static void test_kcptun_opens_aes_fec_group_and_parity_matches(void)
{
	struct kcptun_crypt *c = crypt_new("aes", "test");
	struct fec_enc *e = fec_enc_new(10, 3);
	static uint8_t buf[13][256], mine[256];
	size_t n[13];

	for (int i = 0; i < 13; i++) {
		n[i] = test_unhex(aes_fec_group[i], buf[i], sizeof(buf[i]));
		CHECK_EQ(kcptun_crypt_open(c, buf[i], n[i]), 0);
		CHECK(fec_is_fec(buf[i] + 20, n[i] - 20));
		CHECK_EQ(get_le32(buf[i] + 20), i);
		CHECK_EQ(buf[i][24], i < 10 ? FEC_FLAG_DATA : FEC_FLAG_PARITY);
	}
	/* datagram 0 is PUSH sn=0 with smux SYN, after the 8-byte FEC data header */
	check_push_syn(buf[0] + 28, n[0] - 28);
	for (int i = 0; i < 10; i++) {
		memcpy(mine, buf[i], n[i]);
		CHECK_EQ(fec_enc_data(e, mine + 20, n[i] - 20), i == 9 ? 3 : 0);
		CHECK(!memcmp(mine + 20, buf[i] + 20, n[i] - 20));
	}
	for (int j = 0; j < 3; j++) {
		size_t pn = fec_enc_parity(e, j, mine + 20, sizeof(mine) - 20);

		CHECK_EQ(pn, n[10 + j] - 20);
		CHECK(pn == n[10 + j] - 20 && !memcmp(mine + 20, buf[10 + j] + 20, pn));
	}
	fec_enc_free(e);
	kcptun_crypt_free(c);
}

/* ---- independent vectors ---- */

/*
 * python3-cryptography: Cipher(AES(pass[:k]) or SM4(pass[:16]), CFB(iv)).encryptor() over
 * nonce 10..1f ‖ crc32(payload) LE ‖ payload, pass = PBKDF2("test").
 */
#define PY_PAYLOAD "ferry: AES-CFB vector from python cryptography"
static const struct {
	const char *cipher;
	const char *hex;
} python_cfb[] = {
	{ "aes", "5926479a4b47e283cd8e5992166afb6339f9e168ad8d512d4c602165074174bde2e8593a9b1e1e4f30de458ce7b5b09c"
		 "034c695a67cd1640d1c8dd3c1bade5e95171" },
	{ "aes-128", "472a65ed2166c2f478f28815a12027da2ae54220427b15bb5ad89dc134822e5f64efc032c81fe7442c2170ac8e3fbfbd"
		     "114e18669cac3356a2046c204d73cc532668" },
	{ "aes-192", "9c5ebed67253b250b0bda766c714ea25f2cd1478f7cbb3f32f6eb6d9b51d937343ceae0092ade6f981cf64263c4001e1"
		     "93c55bb08425bee2a1610e37e9cd51af019b" },
	{ "sm4", "ef4e6798dd9a659d2f116af63c285cbf08ccbb4f0a3cfa15261ac29ecd08d1ac198ca7ad7be972b0633cc797d2a3071a"
		 "f530198c9ac9a0a36a2aaed3aa088de7cce7" },
};

static void test_kcptun_cfb_matches_python_cryptography(void)
{
	uint8_t nonce[KCPTUN_CRYPT_NONCE_BYTES], buf[128];
	size_t n = KCPTUN_CRYPT_HDR + strlen(PY_PAYLOAD);

	for (int i = 0; i < KCPTUN_CRYPT_NONCE_BYTES; i++)
		nonce[i] = (uint8_t)(0x10 + i);
	for (size_t i = 0; i < N(python_cfb); i++) {
		struct kcptun_crypt *c = crypt_new(python_cfb[i].cipher, "test");

		if (!c)
			continue;
		memset(buf, 0xee, sizeof(buf));
		memcpy(buf + KCPTUN_CRYPT_HDR, PY_PAYLOAD, strlen(PY_PAYLOAD));
		kcptun_crypt_seal_nonce(c, buf, n, nonce);
		if (!hex_eq(buf, n, python_cfb[i].hex)) {
			fprintf(stderr, "  %s: differs from python cryptography\n", python_cfb[i].cipher);
			CHECK(0);
		}
		CHECK_EQ(kcptun_crypt_open(c, buf, n), 0);
		CHECK(!memcmp(buf + KCPTUN_CRYPT_HDR, PY_PAYLOAD, strlen(PY_PAYLOAD)));
		CHECK(!memcmp(buf, nonce, sizeof(nonce)));
		kcptun_crypt_free(c);
	}
}

/* ---- Salsa20/20 written out from its specification, for comparison ---- */

static uint32_t rotl(uint32_t v, int c)
{
	return v << c | v >> (32 - c);
}

static void ref_salsa20_block(const uint8_t key[32], const uint8_t nonce[8], uint64_t counter, uint8_t out[64])
{
	static const uint8_t sigma[16] = "expand 32-byte k";
	uint32_t in[16], x[16];

	in[0] = get_le32(sigma);
	in[5] = get_le32(sigma + 4);
	in[10] = get_le32(sigma + 8);
	in[15] = get_le32(sigma + 12);
	for (int i = 0; i < 4; i++) {
		in[1 + i] = get_le32(key + 4 * i);
		in[11 + i] = get_le32(key + 16 + 4 * i);
	}
	in[6] = get_le32(nonce);
	in[7] = get_le32(nonce + 4);
	in[8] = (uint32_t)counter;
	in[9] = (uint32_t)(counter >> 32);
	memcpy(x, in, sizeof(x));
	for (int r = 0; r < 10; r++) {
		/* columns */
		x[4] ^= rotl(x[0] + x[12], 7);   x[8] ^= rotl(x[4] + x[0], 9);
		x[12] ^= rotl(x[8] + x[4], 13);  x[0] ^= rotl(x[12] + x[8], 18);
		x[9] ^= rotl(x[5] + x[1], 7);    x[13] ^= rotl(x[9] + x[5], 9);
		x[1] ^= rotl(x[13] + x[9], 13);  x[5] ^= rotl(x[1] + x[13], 18);
		x[14] ^= rotl(x[10] + x[6], 7);  x[2] ^= rotl(x[14] + x[10], 9);
		x[6] ^= rotl(x[2] + x[14], 13);  x[10] ^= rotl(x[6] + x[2], 18);
		x[3] ^= rotl(x[15] + x[11], 7);  x[7] ^= rotl(x[3] + x[15], 9);
		x[11] ^= rotl(x[7] + x[3], 13);  x[15] ^= rotl(x[11] + x[7], 18);
		/* rows */
		x[1] ^= rotl(x[0] + x[3], 7);    x[2] ^= rotl(x[1] + x[0], 9);
		x[3] ^= rotl(x[2] + x[1], 13);   x[0] ^= rotl(x[3] + x[2], 18);
		x[6] ^= rotl(x[5] + x[4], 7);    x[7] ^= rotl(x[6] + x[5], 9);
		x[4] ^= rotl(x[7] + x[6], 13);   x[5] ^= rotl(x[4] + x[7], 18);
		x[11] ^= rotl(x[10] + x[9], 7);  x[8] ^= rotl(x[11] + x[10], 9);
		x[9] ^= rotl(x[8] + x[11], 13);  x[10] ^= rotl(x[9] + x[8], 18);
		x[12] ^= rotl(x[15] + x[14], 7); x[13] ^= rotl(x[12] + x[15], 9);
		x[14] ^= rotl(x[13] + x[12], 13); x[15] ^= rotl(x[14] + x[13], 18);
	}
	for (int i = 0; i < 16; i++) {
		uint32_t v = x[i] + in[i];

		out[4 * i] = (uint8_t)v;
		out[4 * i + 1] = (uint8_t)(v >> 8);
		out[4 * i + 2] = (uint8_t)(v >> 16);
		out[4 * i + 3] = (uint8_t)(v >> 24);
	}
}

/* §2.3 salsa20: bytes 0..7 (the nonce's first half) stay clear, the rest is XORed with the
 * Salsa20 keystream for that 8-byte nonce, counter from 0 — over several 64-byte blocks. */
static void test_kcptun_salsa20_leaves_8_bytes_clear_and_xors_the_keystream(void)
{
	struct kcptun_crypt *c = crypt_new("salsa20", "test");
	uint8_t pass[KCPTUN_CRYPT_PASS_BYTES], nonce[KCPTUN_CRYPT_NONCE_BYTES], buf[300], plain[300], ks[64];
	size_t n = sizeof(buf);

	kcptun_crypt_derive("test", pass);
	for (int i = 0; i < KCPTUN_CRYPT_NONCE_BYTES; i++)
		nonce[i] = (uint8_t)(0xa0 + i);
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)(i * 13);
	kcptun_crypt_seal_nonce(c, buf, n, nonce);
	/* the plaintext: nonce, CRC as sealed (checked by open below), payload */
	memcpy(plain, buf, n);
	CHECK(!memcmp(buf, nonce, 8));
	for (size_t off = 8; off < n; off += 64) {
		ref_salsa20_block(pass, nonce, (off - 8) / 64, ks);
		for (size_t k = 0; k < 64 && off + k < n; k++)
			plain[off + k] ^= ks[k];
	}
	CHECK(!memcmp(plain, nonce, sizeof(nonce)));
	for (size_t i = 20; i < n; i++)
		if (plain[i] != (uint8_t)(i * 13)) {
			CHECK(!"salsa20 differs from the reference");
			break;
		}
	CHECK_EQ(kcptun_crypt_open(c, buf, n), 0);
	CHECK(!memcmp(buf + 16, plain + 16, n - 16));
	kcptun_crypt_free(c);
}

/* ---- properties ---- */

static void check_round_trip(struct kcptun_crypt *c, const char *name, size_t n)
{
	static uint8_t buf[MAX_BYTES], payload[MAX_BYTES];

	for (size_t i = KCPTUN_CRYPT_HDR; i < n; i++)
		payload[i] = buf[i] = (uint8_t)test_rng();
	kcptun_crypt_seal(c, buf, n);
	if (strcmp(name, "none") && n >= KCPTUN_CRYPT_HDR + 8)
		CHECK(memcmp(buf + KCPTUN_CRYPT_HDR, payload + KCPTUN_CRYPT_HDR, n - KCPTUN_CRYPT_HDR));
	CHECK_EQ(kcptun_crypt_open(c, buf, n), 0);
	if (memcmp(buf + KCPTUN_CRYPT_HDR, payload + KCPTUN_CRYPT_HDR, n - KCPTUN_CRYPT_HDR)) {
		fprintf(stderr, "  %s: %zu bytes do not come back\n", name, n);
		CHECK(0);
	}
}

static void test_kcptun_seal_open_round_trip_every_cipher_and_size(void)
{
	static const size_t big[] = { 1501, 4095, 4096, 4097, 4112, 4113, 8199, 9000, 65507, 65535 };

	test_rng_seed(2021);
	for (size_t i = 0; i < N(all_ciphers); i++) {
		struct kcptun_crypt *c = crypt_new(all_ciphers[i], "round trip");

		if (!c)
			continue;
		for (size_t n = KCPTUN_CRYPT_HDR; n <= 1500 && !test_failed_; n++)
			check_round_trip(c, all_ciphers[i], n);
		for (size_t k = 0; k < N(big); k++)
			check_round_trip(c, all_ciphers[i], big[k]);
		kcptun_crypt_free(c);
	}
}

/*
 * What a flipped bit in the nonce does: nothing checks the nonce itself, so it is caught
 * only when the cipher carries the change into the CRC or the payload — CFB garbles the
 * block after the flipped one (for 8-byte blocks that is still the nonce when the flip is
 * in bytes 0..7), salsa20's bytes 0..7 are its nonce, none and xor keep it local.
 */
static int nonce_flip_result(const char *name, size_t bit)
{
	static const char *const block8[] = { "blowfish", "cast5", "3des", "tea", "xtea" };

	if (!strcmp(name, "none") || !strcmp(name, "xor"))
		return 0;
	if (!strcmp(name, "salsa20"))
		return bit < 64 ? -EBADMSG : 0;
	for (size_t i = 0; i < N(block8); i++)
		if (!strcmp(name, block8[i]))
			return bit < 64 ? 0 : -EBADMSG;
	return -EBADMSG;
}

/* Every single flipped bit from the CRC on is caught, and the nonce as above. */
static void test_kcptun_open_rejects_crc_mismatch(void)
{
	for (size_t i = 0; i < N(all_ciphers); i++) {
		struct kcptun_crypt *c = crypt_new(all_ciphers[i], "test");
		static const uint8_t nonce[KCPTUN_CRYPT_NONCE_BYTES] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
		uint8_t sealed[100], buf[100];
		int wrong = 0;

		if (!c)
			continue;
		for (size_t k = 0; k < sizeof(sealed); k++)
			sealed[k] = (uint8_t)k;
		kcptun_crypt_seal_nonce(c, sealed, sizeof(sealed), nonce);
		for (size_t bit = 0; bit < 8 * sizeof(sealed); bit++) {
			int want = bit < 8 * KCPTUN_CRYPT_NONCE_BYTES ? nonce_flip_result(all_ciphers[i], bit) : -EBADMSG;

			memcpy(buf, sealed, sizeof(buf));
			buf[bit / 8] ^= (uint8_t)(1 << bit % 8);
			wrong += kcptun_crypt_open(c, buf, sizeof(buf)) != want;
		}
		if (wrong)
			fprintf(stderr, "  %s: %d flipped bits not handled as expected\n", all_ciphers[i], wrong);
		CHECK_EQ(wrong, 0);
		memcpy(buf, sealed, sizeof(buf));
		CHECK_EQ(kcptun_crypt_open(c, buf, KCPTUN_CRYPT_HDR - 1), -EMSGSIZE);
		CHECK(!memcmp(buf, sealed, sizeof(buf)));
		CHECK_EQ(kcptun_crypt_open(c, buf, 0), -EMSGSIZE);
		kcptun_crypt_free(c);
	}
}

static void test_kcptun_header_only_datagram(void)
{
	struct kcptun_crypt *c = crypt_new("aes", "test");
	uint8_t buf[KCPTUN_CRYPT_HDR], small[KCPTUN_CRYPT_HDR - 1];

	kcptun_crypt_seal(c, buf, sizeof(buf));
	CHECK_EQ(kcptun_crypt_open(c, buf, sizeof(buf)), 0);
	CHECK_EQ(get_le32(buf + 16), 0);	/* CRC-32 of nothing */
	memset(small, 0x33, sizeof(small));
	kcptun_crypt_seal(c, small, sizeof(small));	/* too short: left alone */
	for (size_t i = 0; i < sizeof(small); i++)
		CHECK_EQ(small[i], 0x33);
	kcptun_crypt_free(c);
}

static void test_kcptun_nonces_differ_between_datagrams(void)
{
	enum { COUNT = 1000 };
	struct kcptun_crypt *c = crypt_new("none", "test"), *c2 = crypt_new("none", "test");
	static uint8_t nonces[COUNT + 1][KCPTUN_CRYPT_NONCE_BYTES];
	uint8_t buf[32] = { 0 };
	int same = 0;

	for (int i = 0; i < COUNT; i++) {
		kcptun_crypt_seal(c, buf, sizeof(buf));
		memcpy(nonces[i], buf, KCPTUN_CRYPT_NONCE_BYTES);
	}
	/* a second object has its own generator */
	kcptun_crypt_seal(c2, buf, sizeof(buf));
	memcpy(nonces[COUNT], buf, KCPTUN_CRYPT_NONCE_BYTES);
	for (int i = 0; i <= COUNT; i++)
		for (int j = i + 1; j <= COUNT; j++)
			same += !memcmp(nonces[i], nonces[j], KCPTUN_CRYPT_NONCE_BYTES);
	CHECK_EQ(same, 0);
	kcptun_crypt_free(c);
	kcptun_crypt_free(c2);
}

static void test_kcptun_names_and_errors(void)
{
	struct kcptun_crypt *c = (struct kcptun_crypt *)&c;

	CHECK_EQ(kcptun_crypt_new("rc4", "test", &c), -EINVAL);
	CHECK(c == NULL);
	CHECK_EQ(kcptun_crypt_new("AES", "test", &c), -EINVAL);
	CHECK_EQ(kcptun_crypt_new("", "test", &c), -EINVAL);
	CHECK_EQ(kcptun_crypt_new("aes-128-gcm", "test", &c), -EINVAL);
	CHECK(c == NULL);
	CHECK(strstr(kcptun_crypt_names(), "salsa20") != NULL);
	for (size_t i = 0; i < N(all_ciphers); i++) {
		c = crypt_new(all_ciphers[i], "");
		if (c && strcmp(all_ciphers[i], "null"))
			CHECK_STR(kcptun_crypt_name(c), all_ciphers[i]);
		CHECK(strstr(kcptun_crypt_names(), all_ciphers[i]) != NULL);
		kcptun_crypt_free(c);
	}
	kcptun_crypt_free(NULL);
}

/* ---- speed (informational) ---- */

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void test_kcptun_speed(void)
{
	static const char *const names[] = { "aes", "aes-128", "salsa20", "xor", "none", "3des", "sm4", "twofish" };
	static uint8_t buf[1400];

	for (size_t i = 0; i < N(names); i++) {
		struct kcptun_crypt *c = crypt_new(names[i], "test");
		double t0, ts, to;
		long k, count = 0;

		if (!c)
			continue;
		t0 = now_s();
		do {
			for (k = 0; k < 100; k++)
				kcptun_crypt_seal(c, buf, sizeof(buf));
			count += k;
		} while ((ts = now_s() - t0) < 0.05);
		ts /= (double)count;
		count = 0;
		t0 = now_s();
		do {
			for (k = 0; k < 100; k++)
				kcptun_crypt_open(c, buf, sizeof(buf));
			count += k;
		} while ((to = now_s() - t0) < 0.05);
		to /= (double)count;
		printf("  info: %-8s 1400 B: seal %5.0f ns (%5.0f MB/s), open %5.0f ns (%5.0f MB/s)\n", names[i],
		       ts * 1e9, 1400 / ts / 1e6, to * 1e9, 1400 / to / 1e6);
		kcptun_crypt_free(c);
	}
}

int main(void)
{
	RUN(test_kcptun_key_derivation_matches_spec);
	RUN(test_kcptun_xor_table_prefix_matches_spec);
	RUN(test_kcptun_xor_table_covers_1500_bytes);
	RUN(test_kcptun_opens_spec_minimal_datagram_as_none);
	RUN(test_kcptun_opens_first_datagram_of_every_kcptun_cipher);
	RUN(test_kcptun_opens_twofish_push_with_payload);
	RUN(test_kcptun_null_means_aes);
	RUN(test_kcptun_opens_aes_fec_group_and_parity_matches);
	RUN(test_kcptun_cfb_matches_python_cryptography);
	RUN(test_kcptun_salsa20_leaves_8_bytes_clear_and_xors_the_keystream);
	RUN(test_kcptun_seal_open_round_trip_every_cipher_and_size);
	RUN(test_kcptun_open_rejects_crc_mismatch);
	RUN(test_kcptun_header_only_datagram);
	RUN(test_kcptun_nonces_differ_between_datagrams);
	RUN(test_kcptun_names_and_errors);
	RUN(test_kcptun_speed);
	TEST_EXIT();
}
