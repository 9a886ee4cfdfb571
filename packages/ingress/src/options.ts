/** OpenAI-style requests are small; 4 MiB leaves room for long token-array prompts. */
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
/**
 * Time a client gets to send one whole request (headers and body): a slow or stalled sender
 * (slowloris) is cut with 408 instead of holding a connection for Node's default 5 minutes.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** Long enough for a slow prefill of a long prompt; short enough that a hung engine frees its slot. */
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 120_000;
/** vLLM's completions default output length. */
export const DEFAULT_DEFAULT_MAX_TOKENS = 256;
/** DESIGN §3: state snapshots on change with ≥ 1 ms debounce. */
export const DEFAULT_STATE_DEBOUNCE_MS = 1;
/** Peers are dropped after 3 silent heartbeats (3 s), inside the default 5 s lease TTL. */
export const DEFAULT_STATE_HEARTBEAT_MS = 1_000;
/** Deadline of one Route call to a router. */
export const DEFAULT_ROUTE_TIMEOUT_MS = 500;
/** Deadline of the fire-and-forget MarkPrefillDone / Release calls. */
export const DEFAULT_ROUTER_NOTIFY_TIMEOUT_MS = 1_000;
/**
 * How long a slot admitted through Envoy's rate limit API (which has no release call) counts as in
 * flight. By Little's law a slot held for the mean request duration makes the count equal the true
 * in-flight count in steady state; 10 s is about the default 256-token output budget at ~40 ms per
 * token. Set it to the cluster's measured mean request duration.
 */
export const DEFAULT_RLS_SLOT_HOLD_MS = 10_000;
