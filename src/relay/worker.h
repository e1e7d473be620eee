/*
 * A worker: one thread, one event loop, its own listeners (SO_REUSEPORT), connections,
 * pipe pool and reserve fd. The control thread talks to it only through worker_send(),
 * a mutex-protected queue and an eventfd: a control path, never taken per packet.
 */
#ifndef FERRY_RELAY_WORKER_H
#define FERRY_RELAY_WORKER_H
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/list.h"
#include "core/loop.h"
#include "relay/pipe_pool.h"
#include "relay/rule.h"

enum worker_cmd_type {
	WCMD_ADD_LISTENER,	/* rule + bound listening fd: start accepting */
	WCMD_DEL_RULE,		/* stop accepting for rule; its connections drain */
	WCMD_STOP,		/* stop accepting everything; close connections after drain_ms */
};

struct worker_cmd {
	struct worker_cmd *next;
	enum worker_cmd_type type;
	struct rule *rule;	/* a reference the worker takes over (ADD) */
	int fd;
	uint32_t drain_ms;
};

struct worker {
	unsigned id;
	struct loop *loop;
	pthread_t thread;
	bool started;
	int finished;		/* atomic: the thread left its loop */
	struct io ctl;
	pthread_mutex_t mu;
	struct worker_cmd *cmds, **cmds_tail;

	struct pipe_pool pipes;
	int reserve_fd;		/* spare fd given up to accept-and-close under EMFILE */
	struct list listeners;		/* tcp */
	struct list conns;		/* tcp */
	struct list udp_listeners;
	struct udp_scratch *udp_scratch;
	struct list kcp_rules;		/* struct kcp_rule_ctx: this worker's kcp:// state per rule */
	struct kcp_txq *kcp_txq;	/* datagrams of every KCP session, sent once per loop iteration */	/* batch buffers, shared by the worker's UDP sockets */
	uint64_t nconns;
	bool stopping;
	struct timer drain;
};

int worker_init(struct worker *w, unsigned id);
int worker_start(struct worker *w);
/* Queues cmd (allocated by the caller, freed by the worker). */
void worker_send(struct worker *w, struct worker_cmd *cmd);
void worker_join(struct worker *w);
void worker_destroy(struct worker *w);
/* Called by relays when a connection closes: lets a stopping worker finish. */
void worker_conn_gone(struct worker *w);
/* Re-opens the reserve fd after it was spent; 0 or negative errno. */
int worker_reserve_fd(struct worker *w);

#endif
