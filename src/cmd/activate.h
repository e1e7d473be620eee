/*
 * Socket activation (spec/systemd.md §2): inherited sockets become rules. Two ways in:
 * the seed's positional form (`ferry --systemd T1 ... Tn`: socket i forwards to Ti) and
 * fd:// listen endpoints in any rule (`fd://game udp://10.0.0.2:27000`). Pure: the sockets
 * were probed by os/systemd.c, nothing here makes a syscall, so it is unit-tested as is.
 */
#ifndef FERRY_CMD_ACTIVATE_H
#define FERRY_CMD_ACTIVATE_H
#include <stddef.h>
#include <stdint.h>

#include "os/systemd.h"
#include "relay/rule.h"

/*
 * "udp://host:port" (type SOCK_DGRAM) or "tcp://host:port" for one positional target word:
 * host:port, [v6]:port, a bare host or [v6] (port = listen_port), or the word with its
 * scheme when the scheme matches the socket's type. -EINVAL with err naming the word.
 */
int activate_target_text(const char *word, int type, uint16_t listen_port, char *out, size_t len, char *err,
			 size_t errlen);

/*
 * The positional form: one rule "fd://N -> TARGET" per inherited socket, in order, with the
 * options ro. Entries of the fd store (ferry's own listeners from before a restart) do not
 * count. A count mismatch names both counts. The rules still need activate_attach().
 */
int activate_positional(const struct systemd_socks *s, const char *const targets[], size_t ntargets,
			const struct rule_opts *ro, struct rule ***rules, size_t *nrules, char *err, size_t errlen);

/*
 * Gives every fd:// rule in (*rules)[0..*nrules) its inherited socket: fd://N that fd,
 * fd://NAME every socket of that name, in order (a name on k sockets becomes k rules with
 * the same target and options, inserted in place; *rules is reallocated). used (s->n
 * entries, zeroed by the caller) counts the rules that took each socket. A missing name,
 * a non-socket, a connected stream socket (Accept=yes), a socket whose type does not
 * match the target's scheme, or a socket taken twice is an error naming the rule.
 */
int activate_attach(const struct systemd_socks *s, unsigned *used, struct rule ***rules, size_t *nrules,
		    char *err, size_t errlen);

/* "fd 4 (voice, udp 10.0.0.1:7002)" for messages. */
void activate_sock_describe(const struct systemd_sock *sk, char *buf, size_t len);

#endif
