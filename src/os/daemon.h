/* Detaching from the terminal, and dropping root after the sockets are bound. */
#ifndef FERRY_OS_DAEMON_H
#define FERRY_OS_DAEMON_H
#include <stddef.h>

/*
 * Forks into the background (fork, setsid, fork), chdir("/"), stdio to /dev/null. The
 * parent waits for daemon_ready() (or the child's exit) and exits with its status, so a
 * start-up error still reaches the terminal. Returns 0 in the daemon.
 */
int daemon_start(void);
/* Tells the waiting parent that start-up succeeded (status 0) or failed. */
void daemon_ready(int status);

/* setgroups/setgid/setuid to user (and group, or the user's primary group). */
int privdrop(const char *user, const char *group, char *err, size_t errlen);

#endif
