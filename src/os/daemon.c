/* Daemonizing and privilege drop; see daemon.h. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os/daemon.h"

static int ready_fd = -1;

int daemon_start(void)
{
	int p[2], fd;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		/* the original process: wait for the daemon's verdict on start-up */
		unsigned char status = 1;

		close(p[1]);
		if (read(p[0], &status, 1) != 1)
			status = 1;
		_exit(status);
	}
	close(p[0]);
	if (setsid() < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0)
		_exit(0);
	ready_fd = p[1];
	if (chdir("/"))
		return -errno;
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
	return 0;
}

void daemon_ready(int status)
{
	unsigned char s = (unsigned char)status;
	int fd;

	if (ready_fd < 0)
		return;
	if (write(ready_fd, &s, 1) != 1) {
		/* the parent is gone: nothing to tell */
	}
	close(ready_fd);
	ready_fd = -1;
	/* stderr stayed on the terminal so that start-up errors were seen; now detach it */
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
}

int privdrop(const char *user, const char *group, char *err, size_t errlen)
{
	struct passwd *pw = NULL;
	uid_t uid = getuid();
	gid_t gid = getgid();

	if (user) {
		pw = getpwnam(user);
		if (!pw) {
			snprintf(err, errlen, "unknown user \"%s\"", user);
			return -ENOENT;
		}
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	}
	if (group) {
		struct group *gr = getgrnam(group);

		if (!gr) {
			snprintf(err, errlen, "unknown group \"%s\"", group);
			return -ENOENT;
		}
		gid = gr->gr_gid;
	}
	if (setgroups(1, &gid) && errno != EPERM) {
		snprintf(err, errlen, "setgroups: %s", strerror(errno));
		return -errno;
	}
	if (setgid(gid)) {
		snprintf(err, errlen, "setgid %u: %s", (unsigned)gid, strerror(errno));
		return -errno;
	}
	if (user && setuid(uid)) {
		snprintf(err, errlen, "setuid %u: %s", (unsigned)uid, strerror(errno));
		return -errno;
	}
	/* make sure there is no way back */
	if (user && uid != 0 && setuid(0) == 0) {
		snprintf(err, errlen, "privileges could be regained after setuid");
		return -EPERM;
	}
	return 0;
}
