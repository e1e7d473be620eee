/* Worker threads and their control queue; see worker.h. The data path is in tcp.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "relay/kcp.h"
#include "relay/tcp.h"
#include "relay/udp.h"
#include "relay/worker.h"

static void worker_maybe_finish(struct worker *w)
{
	if (w->stopping && w->nconns == 0 && list_empty(&w->listeners) && list_empty(&w->udp_listeners) &&
	    list_empty(&w->kcp_rules))
		loop_stop(w->loop);
}

void worker_conn_gone(struct worker *w)
{
	if (w->stopping)
		worker_maybe_finish(w);
}

int worker_reserve_fd(struct worker *w)
{
	if (w->reserve_fd >= 0)
		return 0;
	w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return w->reserve_fd < 0 ? -errno : 0;
}

static void worker_on_drain_timeout(struct timer *t)
{
	struct worker *w = container_of(t, struct worker, drain);

	tcp_conn_close_all(w);
	kcp_close_all(w);
	worker_maybe_finish(w);
}

static void worker_run_cmd(struct worker *w, struct worker_cmd *c)
{
	int err;

	switch (c->type) {
	case WCMD_ADD_LISTENER:
		if (rule_datagram(c->rule))
			err = udp_listener_start(w, c->rule, c->fd);
		else if (c->rule->listen.scheme == EP_KCP)
			err = kcp_listener_start(w, c->rule, c->fd);
		else
			err = tcp_listener_start(w, c->rule, c->fd);
		if (err)
			log_error("%s: worker %u: cannot start listener: %s", c->rule->desc, w->id, strerror(-err));
		break;
	case WCMD_DEL_RULE:
		tcp_listener_stop_rule(w, c->rule);
		udp_listener_stop_rule(w, c->rule);
		kcp_stop_rule(w, c->rule);
		rule_unref(c->rule);
		break;
	case WCMD_STOP:
		w->stopping = true;
		tcp_listener_stop_all(w);
		udp_listener_stop_all(w);
		kcp_stop_all(w);
		if (c->drain_ms && w->nconns)
			timer_arm(w->loop, &w->drain, c->drain_ms);
		else {
			tcp_conn_close_all(w);
			kcp_close_all(w);
		}
		worker_maybe_finish(w);
		break;
	}
	free(c);
}

static void worker_on_ctl(struct io *io, uint32_t events)
{
	struct worker *w = container_of(io, struct worker, ctl);
	struct worker_cmd *list;
	uint64_t v;

	if (read(w->ctl.fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("worker %u: control read: %s", w->id, strerror(errno));
	pthread_mutex_lock(&w->mu);
	list = w->cmds;
	w->cmds = NULL;
	w->cmds_tail = &w->cmds;
	pthread_mutex_unlock(&w->mu);
	while (list) {
		struct worker_cmd *next = list->next;

		worker_run_cmd(w, list);
		list = next;
	}
}

int worker_init(struct worker *w, unsigned id)
{
	int err;

	memset(w, 0, sizeof(*w));
	w->id = id;
	w->reserve_fd = -1;
	list_init(&w->listeners);
	list_init(&w->conns);
	list_init(&w->udp_listeners);
	list_init(&w->kcp_rules);
	pipe_pool_init(&w->pipes);
	timer_init(&w->drain, worker_on_drain_timeout);
	pthread_mutex_init(&w->mu, NULL);
	w->cmds_tail = &w->cmds;
	err = loop_new(&w->loop);
	if (err)
		return err;
	w->ctl.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->ctl.fd < 0) {
		err = -errno;
		goto fail_loop;
	}
	w->ctl.cb = worker_on_ctl;
	err = loop_add(w->loop, &w->ctl, EPOLLIN);
	if (err)
		goto fail_fd;
	err = worker_reserve_fd(w);
	if (err)
		goto fail_fd;
	return 0;

fail_fd:
	close(w->ctl.fd);
fail_loop:
	loop_free(w->loop);
	return err;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int err = loop_run(w->loop);

	if (err)
		log_error("worker %u: event loop failed: %s", w->id, strerror(-err));
	__atomic_store_n(&w->finished, 1, __ATOMIC_RELEASE);
	return NULL;
}

int worker_start(struct worker *w)
{
	int err = pthread_create(&w->thread, NULL, worker_main, w);

	if (err)
		return -err;
	w->started = true;
	return 0;
}

void worker_send(struct worker *w, struct worker_cmd *cmd)
{
	uint64_t one = 1;

	cmd->next = NULL;
	pthread_mutex_lock(&w->mu);
	*w->cmds_tail = cmd;
	w->cmds_tail = &cmd->next;
	pthread_mutex_unlock(&w->mu);
	if (write(w->ctl.fd, &one, sizeof(one)) < 0)
		log_warn("worker %u: control write: %s", w->id, strerror(errno));
}

void worker_join(struct worker *w)
{
	if (w->started)
		pthread_join(w->thread, NULL);
	w->started = false;
}

void worker_destroy(struct worker *w)
{
	struct worker_cmd *c = w->cmds;

	while (c) {
		struct worker_cmd *next = c->next;

		if (c->type == WCMD_ADD_LISTENER) {
			close(c->fd);
			rule_unref(c->rule);
		} else if (c->type == WCMD_DEL_RULE) {
			rule_unref(c->rule);
		}
		free(c);
		c = next;
	}
	pipe_pool_destroy(&w->pipes);
	udp_worker_cleanup(w);
	kcp_worker_cleanup(w);
	if (w->reserve_fd >= 0)
		close(w->reserve_fd);
	close(w->ctl.fd);
	loop_free(w->loop);
	pthread_mutex_destroy(&w->mu);
}
