/*
 * libFuzzer target for net/endpoint's parsers (endpoint_parse, endpoint_parse_bare).
 * Properties: no crash or sanitizer report; a failure returns -EINVAL and writes a
 * terminated message; a success formats back to text that parses to the same endpoint.
 * No resolution: nothing here may touch DNS.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/endpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_failure(int rc, const char *err, size_t errlen)
{
	if (rc != -EINVAL || !memchr(err, '\0', errlen) || !err[0]) {
		fprintf(stderr, "failure without a message: rc %d\n", rc);
		abort();
	}
}

static void check_round_trip(const struct endpoint *ep)
{
	static struct endpoint again;
	char text[EP_TEXT_MAX], err[EP_ERR_MAX];
	int rc;

	/* fd://NAME names an inherited socket: no port; an icmp:// echo ID may be 0 (dynamic) */
	if (!ep->host[0] || (ep->port == 0 && ep->scheme != EP_FD && ep->scheme != EP_ICMP) ||
	    (ep->port != 0 && ep->scheme == EP_FD) || !strcmp(endpoint_scheme_name(ep->scheme), "?"))
		abort();
	if (ep->reply_id < -1 || ep->reply_id > 65535 || (ep->reply_id >= 0 && ep->scheme != EP_ICMP))
		abort();
	endpoint_format(ep, text, sizeof(text));
	if (strlen(text) >= sizeof(text) - 1) {
		fprintf(stderr, "formatted endpoint fills EP_TEXT_MAX: \"%s\"\n", text);
		abort();
	}
	rc = endpoint_parse(text, &again, err, sizeof(err));
	if (rc || strcmp(again.host, ep->host) || again.port != ep->port || again.scheme != ep->scheme ||
	    again.reply_id != ep->reply_id) {
		fprintf(stderr, "round trip: \"%s\" -> rc %d host \"%s\" port %u (%s), was host \"%s\" port %u\n",
			text, rc, again.host, again.port, rc ? err : "", ep->host, ep->port);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct endpoint ep;
	char err[EP_ERR_MAX];
	char *text = malloc(size + 1);
	int rc;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	memset(err, 'x', sizeof(err));
	rc = endpoint_parse(text, &ep, err, sizeof(err));
	if (rc)
		check_failure(rc, err, sizeof(err));
	else
		check_round_trip(&ep);

	memset(err, 'x', sizeof(err));
	rc = endpoint_parse_bare(text, EP_TCP, &ep, err, sizeof(err));
	if (rc)
		check_failure(rc, err, sizeof(err));
	else
		check_round_trip(&ep);

	free(text);
	return 0;
}
