// Reads an Envoy `RateLimitRequest` (envoy.service.ratelimit.v3) as the cheap facts of one L1
// decision. Envoy sends one or more descriptors, each a list of key/value entries built by the route's
// rate limit actions; Sluice reads these keys from all of them together, since they describe the one
// request Envoy is about to forward:
//
//   model          required: the policy and engines the request is judged against (Envoy cannot read
//                  the JSON body, so the route supplies it: generic_key with descriptor_key `model`,
//                  or request_headers from a header such as x-sluice-model)
//   class          the requested class, treated like the x-sluice-class header: honoured for trusted
//                  tenants (or --trust-class-header), otherwise only to lower the class; unknown names
//                  are ignored, as over HTTP
//   tenant         tenant id as the gateway authenticated it (e.g. from JWT metadata); maps to the
//                  policy's tenant (class, per-tenant limit); unknown ids are anonymous
//   prompt_tokens  optional prompt size in tokens
//   prompt_bytes   optional body size in bytes (e.g. request_headers from content-length), estimated
//                  at PROMPT_BYTES_PER_TOKEN; used when prompt_tokens is absent
//   max_tokens     optional output budget; the ingress's --default-max-tokens otherwise
//
// Entries with other keys are ignored, so descriptors shared with another rate limit service do no
// harm. Envoy's default keys `generic_key` and `header_match` are ignored as well, on purpose: their
// meaning depends on the route, and guessing it would silently misclassify requests; set
// `descriptor_key` on those actions to one of the keys above instead. A key given twice with
// different values is an error (which one would be meant?). `hits_addend` is the number of requests
// this call stands for (0 = 1), capped by MAX_RLS_HITS.

import type { RateLimitRequest } from "@sluice/proto";
import { RlsRequestError } from "./errors.js";

/** Hits one ShouldRateLimit call may charge: each is a slot, so the bound caps one call's allocation. */
export const MAX_RLS_HITS = 1024;

/** The keys Sluice reads from descriptor entries. */
export const RLS_DESCRIPTOR_KEYS = [
  "model",
  "class",
  "tenant",
  "prompt_tokens",
  "prompt_bytes",
  "max_tokens",
] as const;

export type RlsDescriptorKey = (typeof RLS_DESCRIPTOR_KEYS)[number];

export interface RlsFacts {
  readonly domain: string;
  readonly model: string;
  readonly requestClass: string | undefined;
  readonly tenant: string | undefined;
  readonly promptTokens: number | undefined;
  readonly promptBytes: number | undefined;
  readonly maxTokens: number | undefined;
  /** Requests this call stands for (hits_addend, 0 → 1). */
  readonly hits: number;
}

const KNOWN = new Set<string>(RLS_DESCRIPTOR_KEYS);
const MAX_COUNT = 0x7fffffff;

function count(key: string, value: string): number {
  if (!/^\d{1,10}$/.test(value) || Number(value) > MAX_COUNT) {
    throw new RlsRequestError(`descriptor entry ${key}=${JSON.stringify(value)} must be an integer ≥ 0`);
  }
  return Number(value);
}

/** @throws RlsRequestError with a message fit for the gRPC status details. */
export function parseRlsRequest(request: RateLimitRequest): RlsFacts {
  if (request.descriptors.length === 0) {
    throw new RlsRequestError("RateLimitRequest has no descriptors (at least one with a `model` entry)");
  }
  const values = new Map<RlsDescriptorKey, string>();
  for (const [d, descriptor] of request.descriptors.entries()) {
    if (descriptor.entries.length === 0) throw new RlsRequestError(`descriptors[${d}] has no entries`);
    for (const [e, entry] of descriptor.entries.entries()) {
      if (entry.key === "" || entry.value === "") {
        throw new RlsRequestError(`descriptors[${d}].entries[${e}] needs a non-empty key and value`);
      }
      if (!KNOWN.has(entry.key)) continue;
      const key = entry.key as RlsDescriptorKey;
      const seen = values.get(key);
      if (seen !== undefined && seen !== entry.value) {
        throw new RlsRequestError(
          `descriptor key ${key} given twice with different values (${JSON.stringify(seen)}, ${JSON.stringify(entry.value)})`,
        );
      }
      values.set(key, entry.value);
    }
  }
  const model = values.get("model");
  if (model === undefined) {
    throw new RlsRequestError(
      "no descriptor entry `model`: add a rate limit action with descriptor_key `model` (generic_key or request_headers)",
    );
  }
  const hits = request.hitsAddend === 0 ? 1 : request.hitsAddend;
  if (hits > MAX_RLS_HITS) {
    throw new RlsRequestError(`hits_addend ${request.hitsAddend} is over the maximum ${MAX_RLS_HITS}`);
  }
  const numeric = (key: RlsDescriptorKey) => {
    const v = values.get(key);
    return v === undefined ? undefined : count(key, v);
  };
  return {
    domain: request.domain,
    model,
    requestClass: values.get("class"),
    tenant: values.get("tenant"),
    promptTokens: numeric("prompt_tokens"),
    promptBytes: numeric("prompt_bytes"),
    maxTokens: numeric("max_tokens"),
    hits,
  };
}
