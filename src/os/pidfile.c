/* PID files; see pidfile.h. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "os/pidfile.h"

/* Attempts at create-or-replace before giving up (another process racing us). */
#define PIDFILE_TRIES 3

int pidfile_read(const char *path, pid_t *pid)
{
	char buf[32];
	char *end;
	long v;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno || end == buf || (*end && *end != '\n') || v <= 0 || v > 0x3fffffff)
		return -EINVAL;
	*pid = (pid_t)v;
	return 0;
}

static int pid_alive(pid_t pid)
{
	return kill(pid, 0) == 0 || errno == EPERM;
}

int pidfile_create(const char *path, pid_t *owner)
{
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

	for (int i = 0; i < PIDFILE_TRIES; i++) {
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		pid_t pid;

		if (fd >= 0) {
			int err = write(fd, buf, (size_t)len) == len ? 0 : -EIO;

			if (close(fd) && !err)
				err = -errno;
			if (err)
				unlink(path);
			return err;
		}
		if (errno != EEXIST)
			return -errno;
		int err = pidfile_read(path, &pid);

		if (!err && pid != getpid() && pid_alive(pid)) {
			if (owner)
				*owner = pid;
			return -EEXIST;
		}
		if (err == -ENOENT)
			continue;	/* removed meanwhile: try again */
		/* stale (dead pid) or garbage: replace it */
		if (unlink(path) && errno != ENOENT)
			return -errno;
	}
	return -EAGAIN;
}

int pidfile_remove(const char *path)
{
	pid_t pid;
	int err = pidfile_read(path, &pid);

	if (err)
		return err;
	if (pid != getpid())
		return -ESRCH;
	return unlink(path) ? -errno : 0;
}
