/* A log sink for daemons: lines go to syslog (LOG_DAEMON) once stderr is gone. */
#ifndef FERRY_OS_SYSLOG_H
#define FERRY_OS_SYSLOG_H

/* Opens syslog and routes log_msg() there. */
void syslog_start(void);

#endif
