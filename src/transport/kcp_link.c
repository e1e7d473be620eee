/*
 * Outer layers of a KCP session; see kcp_link.h. kcptun's order on send (spec/kcp.md
 * §2.1): FEC header and parity (§2.5), then the crypt header and cipher over the whole
 * datagram (§2.3). Receive undoes it in the opposite order. The secure channel seals the
 * whole KCP datagram (§3.3 DATA).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "crypto/kcptun_crypt.h"
#include "proto/fec.h"
#include "proto/kcp.h"
#include "proto/secure.h"
#include "transport/kcp_link.h"

int kcp_link_env_init(struct kcp_link_env *env, const struct kcp_opts *k, bool server, unsigned worker_id,
		      char *err, size_t errlen)
{
	int rc;

	memset(env, 0, sizeof(*env));
	if (k->profile == KCP_PROFILE_KCPTUN) {
		env->kind = KCP_LINK_KCPTUN;
		rc = kcptun_crypt_new(k->crypt, k->key, &env->crypt);
		if (rc) {
			snprintf(err, errlen, "--crypt %s: %s (accepted: %s)", k->crypt,
				 rc == -ENOTSUP ? "not supported" : "unknown cipher", kcptun_crypt_names());
			return rc;
		}
		env->crypt_hdr = KCPTUN_CRYPT_HDR;
		env->ds = k->ds;
		env->ps = k->ps;
		return 0;
	}
	if (k->secure) {
		struct secure_cfg cfg;

		env->kind = KCP_LINK_SECURE;
		secure_cfg_default(&cfg);
		memcpy(cfg.psk, k->psk, sizeof(cfg.psk));
		cfg.max_skew_s = k->max_skew_s;
		cfg.rekey_time_ms = k->rekey_time_ms;
		cfg.rekey_packets = k->rekey_packets;
		cfg.flags = SECURE_F_HALF_CLOSE | SECURE_F_SMUX_V2;
		cfg.max_datagram = (uint16_t)k->mtu;
		cfg.worker_id = (uint8_t)worker_id;
		cfg.responder = server;
		env->sec = secure_ctx_new(&cfg);
		if (!env->sec) {
			snprintf(err, errlen, "secure mode: cannot set up (out of memory or libsodium failed)");
			return -ENOMEM;
		}
		return 0;
	}
	env->kind = KCP_LINK_PLAIN;
	return 0;
}

void kcp_link_env_destroy(struct kcp_link_env *env)
{
	if (env->crypt)
		kcptun_crypt_free(env->crypt);
	if (env->sec)
		secure_ctx_free(env->sec);
	memset(env, 0, sizeof(*env));
}

uint32_t kcp_link_reserved(const struct kcp_link_env *env)
{
	switch (env->kind) {
	case KCP_LINK_KCPTUN:
		return (uint32_t)env->crypt_hdr + (env->ds && env->ps ? FEC_DATA_HDR_BYTES : 0);
	case KCP_LINK_SECURE:
		return SECURE_OVERHEAD;
	default:
		return 0;
	}
}

int kcp_link_init(struct kcp_link *l, struct kcp_link_env *env)
{
	memset(l, 0, sizeof(*l));
	l->env = env;
	if (env->kind != KCP_LINK_KCPTUN)
		return 0;
	/* a receiver must take FEC packets even with FEC off locally (§2.5) */
	l->fdec = fec_dec_new(env->ds, env->ps);
	if (!l->fdec)
		return -ENOMEM;
	if (env->ds && env->ps) {
		l->fenc = fec_enc_new(env->ds, env->ps);
		if (!l->fenc) {
			fec_dec_free(l->fdec);
			l->fdec = NULL;
			return -ENOMEM;
		}
	}
	return 0;
}

void kcp_link_destroy(struct kcp_link *l)
{
	if (l->fenc)
		fec_enc_free(l->fenc);
	if (l->fdec)
		fec_dec_free(l->fdec);
	l->fenc = NULL;
	l->fdec = NULL;
}

static void kcptun_send(struct kcp_link *l, uint8_t *buf, size_t n, kcp_link_emit_fn emit, void *ctx)
{
	struct kcp_link_env *env = l->env;
	size_t h = env->crypt_hdr;
	int parity = 0;

	if (l->fenc)
		parity = fec_enc_data(l->fenc, buf + h, n - h);
	kcptun_crypt_seal(env->crypt, buf, n);
	emit(ctx, buf, n);
	for (int i = 0; i < parity; i++) {
		size_t pn = fec_enc_parity(l->fenc, i, env->scratch + h, sizeof(env->scratch) - h);

		if (!pn)
			continue;
		kcptun_crypt_seal(env->crypt, env->scratch, h + pn);
		emit(ctx, env->scratch, h + pn);
	}
}

void kcp_link_send(struct kcp_link *l, uint32_t now_ms, uint8_t *buf, size_t n, kcp_link_emit_fn emit, void *ctx)
{
	struct kcp_link_env *env = l->env;
	int len;

	switch (env->kind) {
	case KCP_LINK_PLAIN:
		emit(ctx, buf, n);
		return;
	case KCP_LINK_KCPTUN:
		kcptun_send(l, buf, n, emit, ctx);
		return;
	case KCP_LINK_SECURE:
		/* the KCP bytes follow SECURE_OVERHEAD bytes of headroom (kept so mss fits the mtu) */
		len = secure_seal(l->sec, now_ms, buf + SECURE_OVERHEAD, n - SECURE_OVERHEAD, env->scratch,
				  sizeof(env->scratch));
		if (len > 0)
			emit(ctx, env->scratch, (size_t)len);
		return;
	}
}

int kcp_link_recv(struct kcp_link *l, uint32_t now_ms, uint8_t *pkt, size_t n, kcp_link_deliver_fn deliver,
		  void *ctx)
{
	struct kcp_link_env *env = l->env;
	uint8_t *p = pkt;
	int rc;

	if (env->kind == KCP_LINK_PLAIN) {
		deliver(ctx, pkt, n, true);
		return 0;
	}
	if (env->kind != KCP_LINK_KCPTUN)
		return -EINVAL;
	if (n < env->crypt_hdr + KCP_OVERHEAD) {
		l->st.short_pkts++;
		return -EBADMSG;
	}
	if (kcptun_crypt_open(env->crypt, pkt, n)) {
		l->st.crc_errors++;
		return -EBADMSG;
	}
	p += env->crypt_hdr;
	n -= env->crypt_hdr;
	if (!fec_is_fec(p, n)) {
		deliver(ctx, p, n, true);
		return 0;
	}
	rc = fec_dec_input(l->fdec, now_ms, p, n, deliver, ctx);
	if (rc < 0)
		l->st.fec_errors++;
	l->st.fec_recovered = fec_dec_stats(l->fdec)->recovered;
	return rc < 0 ? rc : 0;
}

int kcp_link_peek(struct kcp_link_env *env, const uint8_t *pkt, size_t n, uint32_t *conv, uint32_t *sn)
{
	const uint8_t *k = pkt;

	if (env->kind == KCP_LINK_KCPTUN) {
		if (n > sizeof(env->scratch) || n < env->crypt_hdr + KCP_OVERHEAD)
			return -EBADMSG;
		memcpy(env->scratch, pkt, n);
		if (kcptun_crypt_open(env->crypt, env->scratch, n))
			return -EBADMSG;
		k = env->scratch + env->crypt_hdr;
		n -= env->crypt_hdr;
		if (fec_is_fec(k, n)) {
			if (k[4] != FEC_FLAG_DATA)
				return -ENOENT;
			if (n < FEC_DATA_HDR_BYTES + KCP_OVERHEAD)
				return -EBADMSG;
			k += FEC_DATA_HDR_BYTES;
			n -= FEC_DATA_HDR_BYTES;
		}
	}
	if (n < KCP_OVERHEAD)
		return -EBADMSG;
	*conv = kcp_peek_conv(k);
	*sn = kcp_peek_sn(k);
	return 0;
}
