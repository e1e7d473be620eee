/*
 * Command-line and config-file parsing into global options and rules. Pure: no sockets,
 * no exit(); every error is one line in err naming the bad word. The same parser reads
 * argv and each config line, so a user who learned one knows the other.
 */
#ifndef FERRY_CMD_ARGS_H
#define FERRY_CMD_ARGS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "relay/rule.h"

#define ARGS_ERR_MAX 512
/* Positional words: LISTEN TARGET, or under --systemd one target per inherited socket. */
#define ARGS_POS_MAX 1024

struct global_opts {
	const char *config_path;
	bool daemonize;
	const char *pidfile;
	const char *user, *group;
	unsigned workers;		/* 0 = number of CPUs */
	uint32_t busy_poll_us;		/* workers poll without sleeping this long after activity */
	enum log_level log_level;
	bool log_json;
	uint32_t stats_interval_ms;	/* 0 = off */
	uint32_t drain_ms;
	bool help, version;
	/* socket activation and sd_notify (spec/systemd.md) */
	bool systemd;			/* positionals are targets, one per inherited socket */
	uint32_t status_interval_ms;	/* STATUS= to the service manager; 0 = off */
	bool no_fdstore;		/* do not hand own listeners to systemd's fd store */
};

enum args_dialect {
	ARGS_FERRY,	/* ferry [options] tcp://LISTEN tcp://TARGET */
	ARGS_TCPFWD,	/* tcpfwd [options] HOST:PORT HOST:PORT (portfwd) */
	ARGS_UDPFWD,	/* udpfwd HOST:PORT HOST:PORT [options] (portfwd) */
	ARGS_KCPTCP_CLIENT,	/* kcptcp-client [options] LOCAL_TCP REMOTE_UDP (portfwd) */
	ARGS_KCPTCP_SERVER,	/* kcptcp-server [options] LOCAL_UDP TARGET_TCP (portfwd) */
	/* kcptun's own command line and -c JSON (cmd/kcptun_args.h parses these, not args_parse) */
	ARGS_KCPTUN_CLIENT,	/* kcptun-client -l LOCAL -r SERVER [kcptun options] */
	ARGS_KCPTUN_SERVER,	/* kcptun-server -l LISTEN -t TARGET [kcptun options] */
};

/*
 * What one argv (or config line) said: options applied to g/ro, positionals collected.
 * At most two (LISTEN TARGET) unless --systemd is given (then: targets).
 */
struct args_result {
	const char *pos[ARGS_POS_MAX];
	int npos;
};

void global_opts_default(struct global_opts *g);
/*
 * Parses words[0..n). Global options are allowed only when g != NULL (the command line);
 * rule options update *ro. Returns 0 or -EINVAL with err set.
 */
int args_parse(enum args_dialect dia, int n, char *const words[], struct global_opts *g, struct rule_opts *ro,
	       struct args_result *res, char *err, size_t errlen);
/*
 * Applies ferry's long option --name with value v (NULL for a flag), as args_parse would:
 * for front-ends that translate another tool's option names into ferry's.
 */
int args_apply_long(const char *name, const char *v, struct global_opts *g, struct rule_opts *ro, char *err,
		    size_t errlen);
/* Builds a rule from its two endpoint words (syntax and scheme pairing only; no DNS). */
int rule_build(enum args_dialect dia, const char *listen, const char *target, const struct rule_opts *ro,
	       struct rule **out, char *err, size_t errlen);
/* Resolves the rule's endpoints (DNS); -ENOENT with err set. */
int rule_resolve(struct rule *r, char *err, size_t errlen);

/*
 * Parses a config file's text: one rule per line, "LISTEN TARGET [rule options]", '#'
 * comments. Each rule starts from *defaults. On error err names "file:line". Rules are
 * returned in *rules (array of *nrules, caller frees with rules_free).
 */
int config_parse(const char *name, const char *text, const struct rule_opts *defaults, struct rule ***rules,
		 size_t *nrules, char *err, size_t errlen);
int config_load(const char *path, const struct rule_opts *defaults, struct rule ***rules, size_t *nrules,
		char *err, size_t errlen);
void rules_free(struct rule **rules, size_t n);

/* Parses "1.5" seconds into milliseconds (0 .. max_ms). */
int parse_seconds_ms(const char *s, uint32_t max_ms, uint32_t *out);
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

#endif
