/* PID files: created exclusively, a stale one (dead pid) replaced, removed on clean exit. */
#ifndef FERRY_OS_PIDFILE_H
#define FERRY_OS_PIDFILE_H
#include <sys/types.h>

/* Writes getpid() to path. -EEXIST if a live process owns it (*owner set), else 0/-errno. */
int pidfile_create(const char *path, pid_t *owner);
/* Removes path if it still holds our pid. */
int pidfile_remove(const char *path);
/* Reads the pid in path: 0 or -errno (-EINVAL for garbage). */
int pidfile_read(const char *path, pid_t *pid);

#endif
