/*
 * syslog sink; see syslog.h. <syslog.h> cannot be included next to core/log.h (both
 * name a LOG_INFO), so the two functions are declared here and the numbers are the
 * severities and facility of RFC 5424, which every syslog(3) uses.
 */
#include "core/log.h"
#include "os/syslog.h"

void openlog(const char *ident, int option, int facility);
void syslog(int priority, const char *format, ...);

#define SYSLOG_PID 0x01
#define SYSLOG_NDELAY 0x08
#define SYSLOG_DAEMON (3 << 3)

static const int syslog_severity[] = {
	[LOG_ERROR] = 3, [LOG_WARN] = 4, [LOG_INFO] = 6, [LOG_DEBUG] = 7,
};

static void syslog_sink(enum log_level level, const char *msg)
{
	syslog(SYSLOG_DAEMON | syslog_severity[level], "%s", msg);
}

void syslog_start(void)
{
	openlog("ferry", SYSLOG_PID | SYSLOG_NDELAY, SYSLOG_DAEMON);
	log_set_sink(syslog_sink);
}
