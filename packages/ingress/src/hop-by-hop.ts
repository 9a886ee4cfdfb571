import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";

// RFC 9110 §7.6.1: connection-specific headers apply to one hop only and must not be forwarded,
// nor may any header the `Connection` header names. `host` is re-derived for the upstream and
// `content-length` re-computed from the body we actually send.
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

function connectionTokens(headers: IncomingHttpHeaders): Set<string> {
  const value = headers.connection;
  const tokens = new Set<string>();
  for (const v of Array.isArray(value) ? value : value ? [value] : []) {
    for (const token of v.split(",")) {
      const t = token.trim().toLowerCase();
      if (t) tokens.add(t);
    }
  }
  return tokens;
}

/** End-to-end headers of `headers` minus hop-by-hop ones and any named in `skip` (lower case). */
export function endToEndHeaders(
  headers: IncomingHttpHeaders,
  skip: ReadonlySet<string> = new Set(),
): OutgoingHttpHeaders {
  const named = connectionTokens(headers);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || named.has(lower) || skip.has(lower)) continue;
    out[lower] = value;
  }
  return out;
}
