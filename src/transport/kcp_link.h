/*
 * The layers under KCP for one session (spec/kcp.md §2.1, §3.3): nothing (plain ferry
 * profile), kcptun's FEC + crypt header (§2.3, §2.5), or ferry's secure channel (§3).
 * A link turns each datagram KCP emits into the packets that go on the wire, and each
 * packet from the wire into the KCP datagrams it carries. No sockets here: the caller
 * passes an emit function and a deliver function.
 *
 * Shared state (cipher contexts, the secure context with its responder tables) is per
 * worker thread and rule: struct kcp_link_env. Per-session state (FEC coders, the secure
 * session) is struct kcp_link.
 */
#ifndef FERRY_TRANSPORT_KCP_LINK_H
#define FERRY_TRANSPORT_KCP_LINK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "relay/rule.h"

struct kcptun_crypt;
struct secure_ctx;
struct secure_sess;
struct fec_enc;
struct fec_dec;

enum kcp_link_kind { KCP_LINK_PLAIN, KCP_LINK_KCPTUN, KCP_LINK_SECURE };

/* Largest packet a link sends or accepts (mtu ≤ 1500, and some slack to detect oversize). */
#define KCP_LINK_PKT_MAX 2048

struct kcp_link_env {
	enum kcp_link_kind kind;
	struct kcptun_crypt *crypt;	/* kcptun (every cipher, "none" too: it still has the header) */
	size_t crypt_hdr;		/* 20 for every kcptun cipher (none included), 0 otherwise */
	int ds, ps;			/* kcptun FEC; 0/0 = off */
	struct secure_ctx *sec;		/* secure */
	uint8_t scratch[KCP_LINK_PKT_MAX];	/* sealing and parity packets */
};

typedef void (*kcp_link_emit_fn)(void *ctx, const uint8_t *pkt, size_t n);
typedef void (*kcp_link_deliver_fn)(void *ctx, const uint8_t *kcp, size_t n, bool regular);

struct kcp_link_stats {
	uint64_t crc_errors;		/* kcptun: CRC mismatch after decryption (wrong key/cipher or junk) */
	uint64_t short_pkts;
	uint64_t fec_recovered;
	uint64_t fec_errors;
	uint64_t sec_dropped;		/* secure: packets that did not authenticate */
};

struct kcp_link {
	struct kcp_link_env *env;
	struct fec_enc *fenc;
	struct fec_dec *fdec;
	struct secure_sess *sec;	/* owned by the relay (created by initiator_new/responder_accept) */
	struct kcp_link_stats st;
};

/* Builds the per-worker environment from the rule's kcp options. err gets one line. */
int kcp_link_env_init(struct kcp_link_env *env, const struct kcp_opts *k, bool server, unsigned worker_id,
		      char *err, size_t errlen);
void kcp_link_env_destroy(struct kcp_link_env *env);
/* Bytes KCP must leave free in front of each datagram (spec §1.14). */
uint32_t kcp_link_reserved(const struct kcp_link_env *env);

int kcp_link_init(struct kcp_link *l, struct kcp_link_env *env);
void kcp_link_destroy(struct kcp_link *l);

/* One datagram from KCP: buf[0 .. reserved) is headroom, n counts it. */
void kcp_link_send(struct kcp_link *l, uint32_t now_ms, uint8_t *buf, size_t n, kcp_link_emit_fn emit, void *ctx);
/*
 * One packet from the wire (modified in place). KCP datagrams go to deliver(). Returns 0,
 * or a negative value when the packet was dropped (counted in l->st).
 * Not for the secure link: secure packets go through secure_open() by the relay, which
 * also needs their handshake results.
 */
int kcp_link_recv(struct kcp_link *l, uint32_t now_ms, uint8_t *pkt, size_t n, kcp_link_deliver_fn deliver,
		  void *ctx);

/*
 * Reads conv and sn of the first KCP segment in a packet before any session exists
 * (kcptun/plain, §2.4): decrypts a copy. -EBADMSG when the packet does not check out,
 * -ENOENT when it carries no readable conv (a FEC parity packet).
 */
int kcp_link_peek(struct kcp_link_env *env, const uint8_t *pkt, size_t n, uint32_t *conv, uint32_t *sn);

#endif
