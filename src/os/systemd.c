/* Inherited sockets and sd_notify through libsystemd; see systemd.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "os/systemd.h"

/* ---- inherited sockets ---- */

static int sockopt_int(int fd, int name)
{
	int v = 0;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, SOL_SOCKET, name, &v, &len))
		return -1;
	return v;
}

/* Fills sk from what the kernel says about fd; a non-socket keeps family 0. */
static void sock_probe(struct systemd_sock *sk, int fd, const char *name)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof(sk->addr);

	memset(sk, 0, sizeof(*sk));
	sk->fd = fd;
	snprintf(sk->name, sizeof(sk->name), "%s", name ? name : "unknown");
	if (sd_is_socket(fd, AF_UNSPEC, 0, -1) <= 0)
		return;
	sk->family = sockopt_int(fd, SO_DOMAIN);
	if (sk->family <= 0)
		sk->family = AF_UNSPEC;
	sk->type = sockopt_int(fd, SO_TYPE);
	sk->listening = sockopt_int(fd, SO_ACCEPTCONN) == 1;
	if (getsockname(fd, (struct sockaddr *)&sk->addr, &len))
		memset(&sk->addr, 0, sizeof(sk->addr));
	len = sizeof(peer);
	sk->connected = getpeername(fd, (struct sockaddr *)&peer, &len) == 0;
	if (sk->family == AF_INET || sk->family == AF_INET6) {
		int fl = fcntl(fd, F_GETFL);

		/* several workers may wait on one inherited listener: accept must not block */
		if (fl >= 0 && !(fl & O_NONBLOCK))
			fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	}
}

int systemd_socks_take(struct systemd_socks *s)
{
	char **names = NULL;
	int n;

	s->v = NULL;
	s->n = 0;
	n = sd_listen_fds_with_names(1, &names);
	if (n <= 0)
		return n;
	s->v = calloc((size_t)n, sizeof(*s->v));
	for (int i = 0; i < n; i++) {
		if (s->v)
			sock_probe(&s->v[i], SD_LISTEN_FDS_START + i, names ? names[i] : NULL);
		if (names)
			free(names[i]);
	}
	free(names);
	if (!s->v)
		return -ENOMEM;
	s->n = (size_t)n;
	return 0;
}

void systemd_socks_free(struct systemd_socks *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].fd >= 0)
			close(s->v[i].fd);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

void systemd_sock_drop(struct systemd_socks *s, size_t i)
{
	if (i < s->n && s->v[i].fd >= 0) {
		close(s->v[i].fd);
		s->v[i].fd = -1;
	}
}

/* ---- pure helpers ---- */

bool systemd_sock_matches(const struct systemd_sock *sk, const char *sel, int sel_num)
{
	if (sk->fd < 0)
		return false;
	if (sel_num >= 0)
		return sk->fd == sel_num;
	return !strcmp(sk->name, sel);
}

/* FNV-1a, 64 bits: stable across builds and machines, which is all a store name needs. */
void systemd_store_name(const char *canon, char *out, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const unsigned char *p = (const unsigned char *)canon; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	snprintf(out, len, SYSTEMD_STORE_PREFIX "%016llx", (unsigned long long)h);
}

bool systemd_is_store_name(const char *name)
{
	size_t plen = strlen(SYSTEMD_STORE_PREFIX);

	if (strncmp(name, SYSTEMD_STORE_PREFIX, plen) || strlen(name) != plen + 16)
		return false;
	for (const char *p = name + plen; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

/* ---- sd_notify ---- */

bool systemd_notify_wanted(void)
{
	const char *e = getenv("NOTIFY_SOCKET");

	return e && *e;
}

void systemd_notify_ready(const char *status)
{
	if (systemd_notify_wanted())
		sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void systemd_notify_status(const char *status)
{
	if (systemd_notify_wanted())
		sd_notifyf(0, "STATUS=%s", status);
}

void systemd_notify_reloading(void)
{
	struct timespec ts;

	if (!systemd_notify_wanted())
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%llu",
		   (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
}

void systemd_notify_stopping(void)
{
	if (systemd_notify_wanted())
		sd_notify(0, "STOPPING=1\nSTATUS=stopping");
}

void systemd_notify_watchdog(void)
{
	sd_notify(0, "WATCHDOG=1");
}

void systemd_notify_failure(int err, const char *status)
{
	if (systemd_notify_wanted())
		sd_notifyf(0, "STATUS=%s\nERRNO=%d", status, err < 0 ? -err : err);
}

uint64_t systemd_watchdog_usec(void)
{
	uint64_t usec = 0;

	return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}

bool systemd_fdstore_wanted(void)
{
	const char *max = getenv("FDSTORE");

	return systemd_notify_wanted() && (!max || atoi(max) > 0);
}

int systemd_fdstore_add(int fd, const char *name)
{
	char msg[64 + SYSTEMD_FDNAME_MAX];
	int rc;

	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
	rc = sd_pid_notify_with_fds(0, 0, msg, &fd, 1);
	return rc > 0 ? 0 : rc < 0 ? rc : -ENOTCONN;
}

int systemd_fdstore_remove(const char *name)
{
	int rc = sd_notifyf(0, "FDSTOREREMOVE=1\nFDNAME=%s", name);

	return rc > 0 ? 0 : rc < 0 ? rc : -ENOTCONN;
}
