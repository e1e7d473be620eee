/*
 * kcptun's own command line (argv[0] kcptun-client / kcptun-server) and its -c JSON config,
 * translated into exactly one ferry rule with the kcptun profile (spec/kcp.md §2.8):
 *
 *   kcptun-client -l LOCAL -r SERVER ...   ->  tcp://LOCAL -> kcp://SERVER
 *   kcptun-server -l LISTEN -t TARGET ...  ->  kcp://LISTEN -> tcp://TARGET
 *
 * Only translation: option values go through ferry's own option code (args_apply_long), so
 * they are checked and mean exactly what ferry's --key, --mtu, ... mean. No sockets, no
 * exit(); kcptun_config_load is the only function that touches a file.
 */
#ifndef FERRY_CMD_KCPTUN_ARGS_H
#define FERRY_CMD_KCPTUN_ARGS_H
#include <stdbool.h>
#include <stdint.h>

#include "cmd/args.h"
#include "net/endpoint.h"

#define KCPTUN_PATH_MAX 512
/* Options kcptun has (kcptun_args.c's table), for the duplicate-key check of -c FILE. */
#define KCPTUN_OPTS_MAX 64

struct kcptun_cli {
	enum args_dialect dia;		/* ARGS_KCPTUN_CLIENT or ARGS_KCPTUN_SERVER */
	char listen[EP_TEXT_MAX];	/* -l, starting as kcptun's default */
	char target[EP_TEXT_MAX];	/* client -r (no default), server -t */
	const char *config_path;	/* -c FILE, or NULL */
	char log_path[KCPTUN_PATH_MAX];	/* --log FILE: stderr is appended to it; "" = stderr */
	/* -c FILE: where each key was first given, to name both places of a duplicate */
	unsigned json_line[KCPTUN_OPTS_MAX], json_col[KCPTUN_OPTS_MAX];
};

/* kcptun's defaults for dia, and the kcptun profile in *ro. */
void kcptun_cli_init(struct kcptun_cli *kc, enum args_dialect dia, struct rule_opts *ro);
/*
 * Parses argv[1..] as kcptun (urfave/cli on Go's flag package) does: -name or --name,
 * "-name value" or "-name=value", booleans as -name or -name=false. Options only; -h and
 * -v set g->help / g->version. Returns 0 or -EINVAL with err naming the bad word.
 */
int kcptun_args_parse(struct kcptun_cli *kc, int n, char *const words[], struct global_opts *g,
		      struct rule_opts *ro, char *err, size_t errlen);
/*
 * Applies a JSON config's text over what the command line set, as kcptun does (a key that
 * is absent keeps the command line's value; null leaves it too). Unknown and duplicate
 * keys are errors. err: "NAME:LINE:COL: message".
 */
int kcptun_config_parse(struct kcptun_cli *kc, const char *name, const char *text, size_t len, struct rule_opts *ro,
			char *err, size_t errlen);
/* Reads kc->config_path (at most KCPTUN_JSON_MAX_BYTES) and applies it. */
int kcptun_config_load(struct kcptun_cli *kc, struct rule_opts *ro, char *err, size_t errlen);
/*
 * The rule, after kcptun's last rules: the client needs -r; ":PORT" listens on every
 * address ([::] dual-stack when v6_any, else 0.0.0.0) and as a target means localhost;
 * a preset --mode overrides --nodelay/--interval/--resend/--nc (only manual keeps them).
 */
int kcptun_rule_build(struct kcptun_cli *kc, bool v6_any, struct rule_opts *ro, struct rule **out, char *err,
		      size_t errlen);

#endif
