/*
 * The config file: one rule per line, the command line's rule syntax, '#' comments.
 * Reads and tokenizes; the meaning of the words is args.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/args.h"

#define CONFIG_WORDS_MAX 64
#define CONFIG_RULES_MAX 4096
#define CONFIG_FILE_MAX_BYTES (4u << 20)

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Splits line (modified in place) into words; a word starting with '#' ends the line. */
static int config_split(char *line, char **words, int *nwords)
{
	int n = 0;
	char *p = line;

	for (;;) {
		while (is_space(*p))
			p++;
		if (!*p || *p == '#')
			break;
		if (n == CONFIG_WORDS_MAX)
			return -E2BIG;
		words[n++] = p;
		while (*p && !is_space(*p))
			p++;
		if (*p)
			*p++ = '\0';
	}
	*nwords = n;
	return 0;
}

static int config_line(const char *name, unsigned lineno, char *line, const struct rule_opts *defaults,
		       struct rule **out, char *err, size_t errlen)
{
	char *words[CONFIG_WORDS_MAX];
	char msg[ARGS_ERR_MAX];
	struct rule_opts ro = *defaults;
	struct args_result res;
	int n, rc;

	*out = NULL;
	rc = config_split(line, words, &n);
	if (rc) {
		snprintf(err, errlen, "%s:%u: too many words (at most %d)", name, lineno, CONFIG_WORDS_MAX);
		return -EINVAL;
	}
	if (n == 0)
		return 0;
	rc = args_parse(ARGS_FERRY, n, words, NULL, &ro, &res, msg, sizeof(msg));
	if (!rc && res.npos < 2) {
		snprintf(msg, sizeof(msg), "%s: a rule is LISTEN TARGET [options]",
			 res.npos ? "missing target" : "missing listen and target endpoints");
		rc = -EINVAL;
	}
	if (!rc)
		rc = rule_build(ARGS_FERRY, res.pos[0], res.pos[1], &ro, out, msg, sizeof(msg));
	if (rc)
		snprintf(err, errlen, "%s:%u: %s", name, lineno, msg);
	return rc;
}

int config_parse(const char *name, const char *text, const struct rule_opts *defaults, struct rule ***rules,
		 size_t *nrules, char *err, size_t errlen)
{
	struct rule **list = NULL;
	size_t n = 0;
	unsigned lineno = 0;
	const char *p = text;
	int rc = 0;

	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char *line = strndup(p, len);
		struct rule *r;

		lineno++;
		if (!line) {
			rc = -ENOMEM;
			snprintf(err, errlen, "%s: out of memory", name);
			break;
		}
		rc = config_line(name, lineno, line, defaults, &r, err, errlen);
		free(line);
		if (rc)
			break;
		for (size_t i = 0; r && i < n; i++) {
			if (list[i]->listen.scheme == r->listen.scheme && list[i]->listen.port == r->listen.port &&
			    !strcmp(list[i]->listen.host, r->listen.host)) {
				char ep[EP_TEXT_MAX];

				endpoint_format(&r->listen, ep, sizeof(ep));
				snprintf(err, errlen, "%s:%u: %s is already the listen address of rule %zu", name,
					 lineno, ep, i + 1);
				rule_unref(r);
				rc = -EINVAL;
				break;
			}
		}
		if (rc)
			break;
		if (r) {
			struct rule **nl2;

			if (n == CONFIG_RULES_MAX) {
				rule_unref(r);
				snprintf(err, errlen, "%s:%u: too many rules (at most %d)", name, lineno,
					 CONFIG_RULES_MAX);
				rc = -EINVAL;
				break;
			}
			nl2 = realloc(list, (n + 1) * sizeof(*list));
			if (!nl2) {
				rule_unref(r);
				rc = -ENOMEM;
				snprintf(err, errlen, "%s: out of memory", name);
				break;
			}
			list = nl2;
			list[n++] = r;
		}
		p += len;
		if (*p == '\n')
			p++;
	}
	if (!rc && n == 0) {
		snprintf(err, errlen, "%s: no rules (one per line: LISTEN TARGET [options])", name);
		rc = -EINVAL;
	}
	if (rc) {
		rules_free(list, n);
		return rc;
	}
	*rules = list;
	*nrules = n;
	return 0;
}

int config_load(const char *path, const struct rule_opts *defaults, struct rule ***rules, size_t *nrules,
		char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *text;
	size_t len;
	int rc;

	if (!f) {
		snprintf(err, errlen, "cannot open config \"%s\": %s", path, strerror(errno));
		return -errno;
	}
	text = malloc(CONFIG_FILE_MAX_BYTES + 1);
	if (!text) {
		fclose(f);
		return -ENOMEM;
	}
	len = fread(text, 1, CONFIG_FILE_MAX_BYTES + 1, f);
	fclose(f);
	if (len > CONFIG_FILE_MAX_BYTES) {
		free(text);
		snprintf(err, errlen, "config \"%s\" is larger than %u bytes", path, CONFIG_FILE_MAX_BYTES);
		return -EFBIG;
	}
	text[len] = '\0';
	if (memchr(text, '\0', len)) {
		free(text);
		snprintf(err, errlen, "config \"%s\" contains a NUL byte: not a text file", path);
		return -EINVAL;
	}
	rc = config_parse(path, text, defaults, rules, nrules, err, errlen);
	free(text);
	return rc;
}
