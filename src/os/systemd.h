/*
 * systemd integration (spec/systemd.md §2, §3): the sockets a service manager hands over
 * (socket activation, fd store) and the sd_notify messages ferry sends back. The only
 * file that includes <systemd/sd-daemon.h>. Without NOTIFY_SOCKET every notify call is a
 * no-op, without LISTEN_FDS there are no inherited sockets: ferry runs the same either way.
 *
 * Mapping sockets to rules is cmd/activate.c's; the selection and naming helpers below
 * that it uses are pure (no libsystemd, no syscalls) so they can be unit-tested.
 */
#ifndef FERRY_OS_SYSTEMD_H
#define FERRY_OS_SYSTEMD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* FileDescriptorName= is at most 255 characters. */
#define SYSTEMD_FDNAME_MAX 256
/* Names ferry gives its own listeners in the fd store: "l-" + 16 hex digits. */
#define SYSTEMD_STORE_PREFIX "l-"
#define SYSTEMD_STORE_NAME_MAX 24

/* One inherited file descriptor as found at start-up. */
struct systemd_sock {
	int fd;
	char name[SYSTEMD_FDNAME_MAX];	/* LISTEN_FDNAMES entry; "unknown" without the variable */
	int family;		/* AF_INET/AF_INET6/AF_UNIX...; 0: not a socket */
	int type;		/* SOCK_DGRAM or SOCK_STREAM (sockets only) */
	bool listening;		/* stream socket after listen() (SO_ACCEPTCONN) */
	bool connected;		/* has a peer: an Accept=yes connection */
	struct sockaddr_storage addr;	/* getsockname() */
};

struct systemd_socks {
	struct systemd_sock *v;
	size_t n;
};

/*
 * Takes the sockets passed with LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES (sd_listen_fds_with_names,
 * which also unsets the variables and marks the fds close-on-exec) and probes each one. Zero
 * sockets is not an error. Inet sockets are made non-blocking.
 */
int systemd_socks_take(struct systemd_socks *s);
/* Closes every socket still held and frees the table. */
void systemd_socks_free(struct systemd_socks *s);
/* Closes s->v[i] (an unused fd store entry) and forgets it. */
void systemd_sock_drop(struct systemd_socks *s, size_t i);

/* Pure helpers. */
/* Whether sk is what the selector of fd://SEL names: fd number sel_num (>= 0) or the name sel. */
bool systemd_sock_matches(const struct systemd_sock *sk, const char *sel, int sel_num);
/* "l-<16 hex>": the fd store name of a rule's listeners, from the rule's canonical text. */
void systemd_store_name(const char *canon, char *out, size_t len);
bool systemd_is_store_name(const char *name);

/* sd_notify. Each returns quietly when there is no manager to tell. */
bool systemd_notify_wanted(void);	/* NOTIFY_SOCKET is set */
void systemd_notify_ready(const char *status);
void systemd_notify_status(const char *status);
void systemd_notify_reloading(void);	/* RELOADING=1 + MONOTONIC_USEC (Type=notify-reload) */
void systemd_notify_stopping(void);
void systemd_notify_watchdog(void);
/* STATUS= + ERRNO= before a start-up failure exit. */
void systemd_notify_failure(int err, const char *status);
/* The watchdog interval when WatchdogSec= is on for this process, in microseconds; 0 = off. */
uint64_t systemd_watchdog_usec(void);
/* Whether the manager keeps fds for us: NOTIFY_SOCKET set and $FDSTORE (systemd >= 254) not 0. */
bool systemd_fdstore_wanted(void);
/* FDSTORE=1 with fd under name; FDSTOREREMOVE=1 for every fd stored under name. 0 or -errno. */
int systemd_fdstore_add(int fd, const char *name);
int systemd_fdstore_remove(const char *name);

#endif
