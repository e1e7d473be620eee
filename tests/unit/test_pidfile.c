/*
 * os/pidfile: exclusive creation, refusal when a live process owns the file, replacement
 * of stale (dead pid), garbage and our-own-pid files, and removal only by the owner.
 * Live and dead "other" processes are forked children; everything lives in a temp dir.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os/pidfile.h"
#include "test.h"

static char dir[] = "/tmp/ferry-test-pidfile-XXXXXX";
static char path[64];

static void write_file(const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f)) {
		fprintf(stderr, "  setup: cannot write %s\n", path);
		abort();
	}
}

static const char *read_file(void)
{
	static char buf[64];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return "(missing)";
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static const char *our_pid_line(void)
{
	static char buf[32];

	snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	return buf;
}

/* A child that lives until killed. */
static pid_t spawn_sleeper(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		for (;;)
			pause();
	}
	if (pid < 0)
		abort();
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* A pid that belonged to a process which has exited and been reaped. */
static pid_t dead_pid(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	if (pid < 0)
		abort();
	waitpid(pid, NULL, 0);
	return pid;
}

static void test_pidfile_create_writes_our_pid(void)
{
	pid_t owner = -1;

	unlink(path);
	CHECK_EQ(pidfile_create(path, &owner), 0);
	CHECK_STR(read_file(), our_pid_line());
	CHECK_EQ(owner, -1);
	unlink(path);
}

static void test_pidfile_create_replaces_a_file_holding_our_own_pid(void)
{
	pid_t owner = -1;

	unlink(path);
	CHECK_EQ(pidfile_create(path, NULL), 0);
	CHECK_EQ(pidfile_create(path, &owner), 0);
	CHECK_EQ(owner, -1);
	CHECK_STR(read_file(), our_pid_line());
	unlink(path);
}

static void test_pidfile_create_refuses_a_file_owned_by_a_live_process(void)
{
	pid_t child = spawn_sleeper(), owner = 0;
	char text[32];

	snprintf(text, sizeof(text), "%ld\n", (long)child);
	write_file(text);
	CHECK_EQ(pidfile_create(path, &owner), -EEXIST);
	CHECK_EQ(owner, child);
	CHECK_STR(read_file(), text);
	CHECK_EQ(pidfile_create(path, NULL), -EEXIST);	/* owner is optional */
	reap(child);
	unlink(path);
}

static void test_pidfile_create_refuses_a_file_owned_by_pid_1(void)
{
	pid_t owner = 0;

	write_file("1\n");
	CHECK_EQ(pidfile_create(path, &owner), -EEXIST);
	CHECK_EQ(owner, 1);
	CHECK_STR(read_file(), "1\n");
	unlink(path);
}

static void test_pidfile_create_replaces_a_stale_pid(void)
{
	pid_t gone = dead_pid(), owner = -1;
	char text[32];

	snprintf(text, sizeof(text), "%ld\n", (long)gone);
	write_file(text);
	CHECK_EQ(pidfile_create(path, &owner), 0);
	CHECK_STR(read_file(), our_pid_line());
	CHECK_EQ(owner, -1);
	unlink(path);
}

static void test_pidfile_create_replaces_garbage(void)
{
	static const char *const garbage[] = { "", "\n", "hello\n", "12abc\n", "-5\n", "0\n", "99999999999\n",
					       "0x10\n" };

	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		write_file(garbage[i]);
		CHECK_EQ(pidfile_create(path, NULL), 0);
		CHECK_STR(read_file(), our_pid_line());
	}
	unlink(path);
}

static void test_pidfile_create_fails_when_the_directory_is_missing(void)
{
	char missing[96];

	snprintf(missing, sizeof(missing), "%s/no/such/dir/x.pid", dir);
	CHECK_EQ(pidfile_create(missing, NULL), -ENOENT);
}

static void test_pidfile_read_parses_a_pid_and_rejects_garbage(void)
{
	static const struct {
		const char *text;
		int rc;
		pid_t pid;
	} cases[] = {
		{ "123\n", 0, 123 },
		{ "123", 0, 123 },
		{ "1073741823\n", 0, 1073741823 },
		{ "1073741824\n", -EINVAL, 0 },
		{ "", -EINVAL, 0 },
		{ "abc\n", -EINVAL, 0 },
		{ "12 34\n", -EINVAL, 0 },
		{ "0\n", -EINVAL, 0 },
		{ "-1\n", -EINVAL, 0 },
		{ "99999999999999999999999\n", -EINVAL, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pid_t pid = -7;

		write_file(cases[i].text);
		CHECK_EQ(pidfile_read(path, &pid), cases[i].rc);
		CHECK_EQ(pid, cases[i].rc ? -7 : cases[i].pid);
	}
	unlink(path);
	CHECK_EQ(pidfile_read(path, &(pid_t){ 0 }), -ENOENT);
}

static void test_pidfile_remove_removes_only_a_file_holding_our_pid(void)
{
	pid_t child = spawn_sleeper();
	char text[32];

	CHECK_EQ(pidfile_create(path, NULL), 0);
	CHECK_EQ(pidfile_remove(path), 0);
	CHECK_EQ(access(path, F_OK), -1);
	CHECK_EQ(pidfile_remove(path), -ENOENT);

	snprintf(text, sizeof(text), "%ld\n", (long)child);
	write_file(text);
	CHECK_EQ(pidfile_remove(path), -ESRCH);
	CHECK_STR(read_file(), text);

	write_file("garbage\n");
	CHECK_EQ(pidfile_remove(path), -EINVAL);
	CHECK_STR(read_file(), "garbage\n");
	reap(child);
	unlink(path);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/ferry.pid", dir);
	RUN(test_pidfile_create_writes_our_pid);
	RUN(test_pidfile_create_replaces_a_file_holding_our_own_pid);
	RUN(test_pidfile_create_refuses_a_file_owned_by_a_live_process);
	RUN(test_pidfile_create_refuses_a_file_owned_by_pid_1);
	RUN(test_pidfile_create_replaces_a_stale_pid);
	RUN(test_pidfile_create_replaces_garbage);
	RUN(test_pidfile_create_fails_when_the_directory_is_missing);
	RUN(test_pidfile_read_parses_a_pid_and_rejects_garbage);
	RUN(test_pidfile_remove_removes_only_a_file_holding_our_pid);
	unlink(path);
	rmdir(dir);
	TEST_EXIT();
}
