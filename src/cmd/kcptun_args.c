/*
 * kcptun-client / kcptun-server command lines and -c JSON configs -> one kcptun-profile rule;
 * see kcptun_args.h. The option list is Debian's kcptun 20210922 (its --help, and the JSON
 * keys of its Config structs), checked by running it: both -name and --name work, the JSON
 * file is applied over the command line, and ":PORT" listens on [::] (dual-stack).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cmd/kcptun_args.h"
#include "cmd/kcptun_json.h"
#include "proto/kcp.h"

enum kt_kind {
	KT_LISTEN,	/* -l: the rule's LISTEN */
	KT_TARGET,	/* client -r, server -t: the rule's TARGET */
	KT_FERRY,	/* ferry has the option under the same long name */
	KT_IGNORED,	/* no effect in ferry; the value is still checked */
	KT_UNSUPPORTED,	/* an error when switched on (true, or a non-empty string) */
	KT_LOG,		/* --log FILE */
	KT_CONFIG,	/* -c FILE */
	KT_HELP,
	KT_VERSION,
};

enum kt_type { KT_STR, KT_INT, KT_BOOL };

#define KT_CLIENT 1u
#define KT_SERVER 2u
#define KT_BOTH (KT_CLIENT | KT_SERVER)
#define KT_CLI_ONLY 4u	/* a command-line flag, not a JSON key */

struct kt_opt {
	const char *name;	/* -name, --name, and the JSON key */
	const char *alias;	/* a second command-line name (-l, --ds), or NULL */
	enum kt_type type;
	unsigned flags;
	enum kt_kind kind;
	const char *why;	/* KT_UNSUPPORTED: what to say */
};

/* In kcptun's --help order. */
static const struct kt_opt kt_opts[] = {
	{ "localaddr", "l", KT_STR, KT_CLIENT, KT_LISTEN, NULL },
	{ "remoteaddr", "r", KT_STR, KT_CLIENT, KT_TARGET, NULL },
	{ "listen", "l", KT_STR, KT_SERVER, KT_LISTEN, NULL },
	{ "target", "t", KT_STR, KT_SERVER, KT_TARGET, NULL },
	{ "key", NULL, KT_STR, KT_BOTH, KT_FERRY, NULL },
	{ "crypt", NULL, KT_STR, KT_BOTH, KT_FERRY, NULL },
	{ "mode", NULL, KT_STR, KT_BOTH, KT_FERRY, NULL },
	{ "conn", NULL, KT_INT, KT_CLIENT, KT_FERRY, NULL },
	{ "autoexpire", NULL, KT_INT, KT_CLIENT, KT_FERRY, NULL },
	{ "scavengettl", NULL, KT_INT, KT_CLIENT, KT_FERRY, NULL },
	{ "mtu", NULL, KT_INT, KT_BOTH, KT_FERRY, NULL },
	{ "sndwnd", NULL, KT_INT, KT_BOTH, KT_FERRY, NULL },
	{ "rcvwnd", NULL, KT_INT, KT_BOTH, KT_FERRY, NULL },
	{ "datashard", "ds", KT_INT, KT_BOTH, KT_FERRY, NULL },
	{ "parityshard", "ps", KT_INT, KT_BOTH, KT_FERRY, NULL },
	{ "dscp", NULL, KT_INT, KT_BOTH, KT_FERRY, NULL },
	{ "nocomp", NULL, KT_BOOL, KT_BOTH, KT_FERRY, NULL },
	{ "sockbuf", NULL, KT_INT, KT_BOTH, KT_FERRY, NULL },
	{ "smuxver", NULL, KT_INT, KT_BOTH, KT_FERRY, NULL },
	{ "smuxbuf", NULL, KT_INT, KT_BOTH, KT_FERRY, NULL },
	{ "streambuf", NULL, KT_INT, KT_BOTH, KT_FERRY, NULL },
	{ "keepalive", NULL, KT_INT, KT_BOTH, KT_FERRY, NULL },
	{ "snmplog", NULL, KT_STR, KT_BOTH, KT_UNSUPPORTED,
	  "is not supported by ferry (ferry --stats-interval S prints counters as JSON lines)" },
	{ "snmpperiod", NULL, KT_INT, KT_BOTH, KT_IGNORED, NULL },
	{ "pprof", NULL, KT_BOOL, KT_BOTH, KT_UNSUPPORTED, "(Go's profiler) is not supported by ferry" },
	{ "log", NULL, KT_STR, KT_BOTH, KT_LOG, NULL },
	{ "quiet", NULL, KT_BOOL, KT_BOTH, KT_FERRY, NULL },
	{ "tcp", NULL, KT_BOOL, KT_BOTH, KT_UNSUPPORTED,
	  "(kcptun's TCP emulation) is not supported by ferry: ferry sends KCP over UDP only" },
	/* hidden in kcptun's --help, used in manual mode */
	{ "acknodelay", NULL, KT_BOOL, KT_BOTH, KT_FERRY, NULL },
	{ "nodelay", NULL, KT_INT, KT_BOTH, KT_FERRY, NULL },
	{ "interval", NULL, KT_INT, KT_BOTH, KT_FERRY, NULL },
	{ "resend", NULL, KT_INT, KT_BOTH, KT_FERRY, NULL },
	{ "nc", NULL, KT_INT, KT_BOTH, KT_FERRY, NULL },
	{ "c", NULL, KT_STR, KT_BOTH | KT_CLI_ONLY, KT_CONFIG, NULL },
	{ "help", "h", KT_BOOL, KT_BOTH | KT_CLI_ONLY, KT_HELP, NULL },
	{ "version", "v", KT_BOOL, KT_BOTH | KT_CLI_ONLY, KT_VERSION, NULL },
};

_Static_assert(sizeof(kt_opts) / sizeof(kt_opts[0]) <= KCPTUN_OPTS_MAX, "json_line[] is too short");

#define KT_NOPTS (sizeof(kt_opts) / sizeof(kt_opts[0]))

static unsigned kt_role(const struct kcptun_cli *kc)
{
	return kc->dia == ARGS_KCPTUN_SERVER ? KT_SERVER : KT_CLIENT;
}

static const char *kt_prog(const struct kcptun_cli *kc)
{
	return kc->dia == ARGS_KCPTUN_SERVER ? "kcptun-server" : "kcptun-client";
}

void kcptun_cli_init(struct kcptun_cli *kc, enum args_dialect dia, struct rule_opts *ro)
{
	memset(kc, 0, sizeof(*kc));
	kc->dia = dia;
	/* kcptun's defaults; the client's "vps:29900" is a placeholder, so -r stays required */
	snprintf(kc->listen, sizeof(kc->listen), "%s", dia == ARGS_KCPTUN_SERVER ? ":29900" : ":12948");
	if (dia == ARGS_KCPTUN_SERVER)
		snprintf(kc->target, sizeof(kc->target), "127.0.0.1:12948");
	ro->kcp.profile = KCP_PROFILE_KCPTUN;
}

/* Go's strconv.ParseBool, which kcptun's -flag=VALUE goes through. */
static int kt_parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "1", "t", "T", "TRUE", "true", "True" };
	static const char *const no[] = { "0", "f", "F", "FALSE", "false", "False" };

	for (size_t i = 0; i < 6; i++) {
		if (!strcmp(v, yes[i]) || !strcmp(v, no[i])) {
			*out = !strcmp(v, yes[i]);
			return 0;
		}
	}
	return -EINVAL;
}

/*
 * A decimal integer. kcptun reads "0x10" as hex and "010" as octal (strconv base 0); ferry
 * refuses both rather than read them differently.
 */
static bool kt_int_ok(const char *v)
{
	const char *p = v + (v[0] == '-');

	if (!*p || (p[0] == '0' && p[1]))
		return false;
	for (; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

static int kt_copy(char *dst, size_t cap, const char *v, const char *label, char *err, size_t errlen)
{
	if (strlen(v) >= cap) {
		snprintf(err, errlen, "value of %s too long (at most %zu bytes)", label, cap - 1);
		return -EINVAL;
	}
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

/* "nocomp": false after --nocomp: kcptun's booleans can be switched off again. */
static void kt_bool_clear(const struct kt_opt *o, struct rule_opts *ro)
{
	if (!strcmp(o->name, "nocomp"))
		ro->kcp.nocomp = false;
	else if (!strcmp(o->name, "acknodelay"))
		ro->kcp.acknodelay = false;
}

static int kt_apply_ferry(const struct kt_opt *o, const char *label, const char *v, bool b, struct global_opts *g,
			  struct rule_opts *ro, char *err, size_t errlen)
{
	if (o->type == KT_BOOL) {
		if (!b) {
			kt_bool_clear(o, ro);
			return 0;
		}
		return args_apply_long(o->name, NULL, g, ro, err, errlen);
	}
	if (o->type == KT_INT && !kt_int_ok(v)) {
		snprintf(err, errlen, "bad value \"%s\" for %s: expected a decimal integer", v, label);
		return -EINVAL;
	}
	return args_apply_long(o->name, v, g, ro, err, errlen);
}

/*
 * One option from either source. label is how the user wrote it (-mtu, "mtu"); v is the
 * text of a string or integer, b the value of a boolean.
 */
static int kt_apply(struct kcptun_cli *kc, const struct kt_opt *o, const char *label, const char *v, bool b,
		    struct global_opts *g, struct rule_opts *ro, char *err, size_t errlen)
{
	switch (o->kind) {
	case KT_LISTEN:
		return kt_copy(kc->listen, sizeof(kc->listen), v, label, err, errlen);
	case KT_TARGET:
		return kt_copy(kc->target, sizeof(kc->target), v, label, err, errlen);
	case KT_FERRY:
		return kt_apply_ferry(o, label, v, b, g, ro, err, errlen);
	case KT_IGNORED:
		if (o->type == KT_INT && !kt_int_ok(v)) {
			snprintf(err, errlen, "bad value \"%s\" for %s: expected a decimal integer", v, label);
			return -EINVAL;
		}
		return 0;
	case KT_UNSUPPORTED:
		if (o->type == KT_BOOL ? b : v[0] != '\0') {
			snprintf(err, errlen, "%s %s", label, o->why);
			return -EINVAL;
		}
		return 0;
	case KT_LOG:
		return kt_copy(kc->log_path, sizeof(kc->log_path), v, label, err, errlen);
	case KT_CONFIG:
		kc->config_path = v;	/* command line only: argv outlives the parse */
		return 0;
	case KT_HELP:
		g->help = b;
		return 0;
	case KT_VERSION:
		g->version = b;
		return 0;
	}
	snprintf(err, errlen, "internal: unhandled kcptun option %s", label);
	return -EINVAL;
}

/* ---- the command line ---- */

static const struct kt_opt *kt_find_flag(unsigned role, const char *name, size_t len)
{
	for (size_t i = 0; i < KT_NOPTS; i++) {
		const struct kt_opt *o = &kt_opts[i];

		if (!(o->flags & role))
			continue;
		if ((strlen(o->name) == len && !strncmp(o->name, name, len)) ||
		    (o->alias && strlen(o->alias) == len && !strncmp(o->alias, name, len)))
			return o;
	}
	return NULL;
}

/* words[*i] is a flag (starts with '-'): apply it, taking its value from the next word if needed. */
static int kt_flag(struct kcptun_cli *kc, int n, char *const words[], int *i, struct global_opts *g,
		   struct rule_opts *ro, char *err, size_t errlen)
{
	const char *w = words[*i], *name = w + 1 + (w[1] == '-'), *eq = strchr(name, '='), *v;
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	const struct kt_opt *o;
	char label[80];
	bool b = true;

	if (len == 0 || name[0] == '-') {
		snprintf(err, errlen, "bad option syntax \"%s\"", w);
		return -EINVAL;
	}
	o = kt_find_flag(kt_role(kc), name, len);
	if (!o) {
		snprintf(err, errlen, "unknown option \"%.*s\" for %s (see %s -h)", (int)(name - w + len), w,
			 kt_prog(kc), kt_prog(kc));
		return -EINVAL;
	}
	snprintf(label, sizeof(label), "%.*s", (int)(name - w + len), w);
	v = eq ? eq + 1 : NULL;
	if (o->type == KT_BOOL) {
		if (v && kt_parse_bool(v, &b)) {
			snprintf(err, errlen, "bad value \"%s\" for %s: expected true or false", v, label);
			return -EINVAL;
		}
		return kt_apply(kc, o, label, NULL, b, g, ro, err, errlen);
	}
	if (!v) {
		if (*i + 1 == n) {
			snprintf(err, errlen, "option %s needs a value", label);
			return -EINVAL;
		}
		v = words[++*i];
	}
	return kt_apply(kc, o, label, v, true, g, ro, err, errlen);
}

int kcptun_args_parse(struct kcptun_cli *kc, int n, char *const words[], struct global_opts *g,
		      struct rule_opts *ro, char *err, size_t errlen)
{
	bool flags_end = false;

	for (int i = 0; i < n; i++) {
		const char *w = words[i];
		int rc;

		if (!flags_end && !strcmp(w, "--")) {
			flags_end = true;	/* Go's flag package: the end of the flags */
			continue;
		}
		if (flags_end || w[0] != '-' || !w[1]) {
			/* urfave/cli's one command: "kcptun-client help" */
			if (!strcmp(w, "help") || !strcmp(w, "h")) {
				g->help = true;
				continue;
			}
			snprintf(err, errlen, "unexpected argument \"%s\": %s takes options only (%s)", w, kt_prog(kc),
				 kc->dia == ARGS_KCPTUN_SERVER ? "-l LISTEN -t TARGET ..." : "-l LOCAL -r SERVER ...");
			return -EINVAL;
		}
		rc = kt_flag(kc, n, words, &i, g, ro, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- -c FILE ---- */

struct kt_json {
	struct kcptun_cli *kc;
	struct rule_opts *ro;
	uint64_t seen;		/* bit i: kt_opts[i] was given */
};

/* Go's encoding/json matches keys to kcptun's field tags case-insensitively. */
static const struct kt_opt *kt_find_key(unsigned role, const char *key)
{
	for (size_t i = 0; i < KT_NOPTS; i++)
		if ((kt_opts[i].flags & role) && !(kt_opts[i].flags & KT_CLI_ONLY) && !strcasecmp(kt_opts[i].name, key))
			return &kt_opts[i];
	return NULL;
}

static const char *const kt_type_want[] = { [KT_STR] = "a string", [KT_INT] = "an integer", [KT_BOOL] = "true or false" };

static bool kt_json_type_ok(enum kt_type t, const struct kcptun_json_value *v)
{
	switch (t) {
	case KT_STR: return v->type == KCPTUN_JSON_STRING;
	case KT_INT: return v->type == KCPTUN_JSON_NUMBER && v->integer;
	case KT_BOOL: return v->type == KCPTUN_JSON_BOOL;
	}
	return false;
}

static int kt_json_member(void *ctx, const char *key, const struct kcptun_json_value *v, char *err, size_t errlen)
{
	struct kt_json *j = ctx;
	const struct kt_opt *o = kt_find_key(kt_role(j->kc), key);
	char label[80], num[24];
	size_t idx;

	if (!o) {
		snprintf(err, errlen, "unknown key \"%.40s\" for %s", key, kt_prog(j->kc));
		return -EINVAL;
	}
	idx = (size_t)(o - kt_opts);
	if (j->seen & (1ull << idx)) {
		snprintf(err, errlen, "duplicate key \"%.40s\" (first at %u:%u)", key, j->kc->json_line[idx],
			 j->kc->json_col[idx]);
		return -EINVAL;
	}
	j->seen |= 1ull << idx;
	j->kc->json_line[idx] = v->line;
	j->kc->json_col[idx] = v->col;
	if (v->type == KCPTUN_JSON_NULL)
		return 0;	/* as in kcptun: null leaves the command line's value */
	if (!kt_json_type_ok(o->type, v)) {
		snprintf(err, errlen, "\"%s\" must be %s, not %s%.40s%s", o->name, kt_type_want[o->type],
			 v->type == KCPTUN_JSON_STRING ? "\"" : "", v->text, v->type == KCPTUN_JSON_STRING ? "\"" : "");
		return -EINVAL;
	}
	if (o->type == KT_INT && !v->fits) {
		snprintf(err, errlen, "\"%s\": %.40s is out of range", o->name, v->text);
		return -EINVAL;
	}
	snprintf(label, sizeof(label), "\"%s\"", o->name);
	if (o->type == KT_INT) {
		snprintf(num, sizeof(num), "%" PRId64, v->i);
		return kt_apply(j->kc, o, label, num, true, NULL, j->ro, err, errlen);
	}
	return kt_apply(j->kc, o, label, v->text, v->b, NULL, j->ro, err, errlen);
}

int kcptun_config_parse(struct kcptun_cli *kc, const char *name, const char *text, size_t len, struct rule_opts *ro,
			char *err, size_t errlen)
{
	struct kt_json j = { .kc = kc, .ro = ro };
	char msg[ARGS_ERR_MAX];
	int rc;

	rc = kcptun_json_parse(text, len, kt_json_member, &j, msg, sizeof(msg));
	if (rc)
		snprintf(err, errlen, "%s:%s", name, msg);
	return rc;
}

int kcptun_config_load(struct kcptun_cli *kc, struct rule_opts *ro, char *err, size_t errlen)
{
	/* one byte more than allowed: enough to tell a file that is too large */
	const size_t cap = KCPTUN_JSON_MAX_BYTES + 1;
	const char *path = kc->config_path;
	char *text;
	ssize_t got;
	size_t len = 0;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open config \"%s\": %s", path, strerror(errno));
		return -ENOENT;
	}
	text = malloc(cap);
	if (!text) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	while (len < cap && (got = read(fd, text + len, cap - len)) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			snprintf(err, errlen, "cannot read config \"%s\": %s", path, strerror(errno));
			rc = -EIO;
			goto out;
		}
		len += (size_t)got;
	}
	rc = kcptun_config_parse(kc, path, text, len, ro, err, errlen);
out:
	free(text);
	close(fd);
	return rc;
}

/* ---- the rule ---- */

/* kcptun's "host:port" with Go's empty-host form ":PORT". */
static int kt_endpoint(const char *word, bool listen, bool v6_any, char *out, size_t len, char *err, size_t errlen)
{
	if (word[0] != ':') {
		snprintf(out, len, "%s", word);
		return 0;
	}
	/* Go listens on [::] with IPV6_V6ONLY off (every v4 and v6 address); dials localhost */
	if (snprintf(out, len, "%s%s", listen ? (v6_any ? "[::]" : "0.0.0.0") : "localhost", word) >= (int)len) {
		snprintf(err, errlen, "address \"%.40s...\" too long", word);
		return -EINVAL;
	}
	return 0;
}

int kcptun_rule_build(struct kcptun_cli *kc, bool v6_any, struct rule_opts *ro, struct rule **out, char *err,
		      size_t errlen)
{
	char l[EP_TEXT_MAX], t[EP_TEXT_MAX];
	struct kcp_opts *k = &ro->kcp;
	int rc;

	if (kc->dia == ARGS_KCPTUN_CLIENT && !kc->target[0]) {
		snprintf(err, errlen, "missing -r/--remoteaddr SERVER:PORT (kcptun's default \"vps:29900\" is only a "
			 "placeholder)");
		return -EINVAL;
	}
	/* kcptun-server reads a target that is not HOST:PORT as a unix socket path */
	if (kc->dia == ARGS_KCPTUN_SERVER && kc->target[0] && !strchr(kc->target, ':')) {
		snprintf(err, errlen, "target \"%s\": unix socket targets are not supported by ferry; give HOST:PORT",
			 kc->target);
		return -EINVAL;
	}
	rc = kt_endpoint(kc->listen, true, v6_any, l, sizeof(l), err, errlen);
	if (!rc)
		rc = kt_endpoint(kc->target, false, v6_any, t, sizeof(t), err, errlen);
	if (rc)
		return rc;
	/* kcptun sets nodelay/interval/resend/nc from a preset mode, over what was given */
	if (k->mode != KCP_MODE_MANUAL + 1)
		k->nodelay = k->interval = k->resend = k->nc = -1;
	return rule_build(kc->dia, l, t, ro, out, err, errlen);
}
