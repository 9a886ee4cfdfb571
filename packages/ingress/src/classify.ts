// Class and tenant of a request (issue 4 §2), through core's class resolution: the tenant comes from
// the API key's SHA-256 matched against the policy; `x-sluice-class` is honoured as given for trusted
// tenants (or every client with --trust-class-header), otherwise only to lower a request's class.

import { createHash } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { type ResolvedPolicy, resolveClass } from "@sluice/core";

export const CLASS_HEADER = "x-sluice-class";

export interface Classification {
  requestClass: string;
  /** Tenant id, "" when anonymous. */
  tenant: string;
}

export function apiKeyOf(headers: IncomingHttpHeaders): string | undefined {
  const auth = headers.authorization;
  if (typeof auth === "string" && /^bearer\s+/i.test(auth))
    return auth.replace(/^bearer\s+/i, "").trim() || undefined;
  const key = headers["api-key"] ?? headers["x-api-key"];
  return typeof key === "string" && key !== "" ? key : undefined;
}

export function classify(
  headers: IncomingHttpHeaders,
  policy: ResolvedPolicy,
  trustClassHeader: boolean,
): Classification {
  const header = headers[CLASS_HEADER];
  const headerClass = typeof header === "string" ? header.trim().toLowerCase() : undefined;
  const key = policy.tenants.length > 0 ? apiKeyOf(headers) : undefined;
  const apiKeySha256 = key === undefined ? undefined : createHash("sha256").update(key).digest("hex");
  const resolved = resolveClass({ headerClass, apiKeySha256 }, policy);
  const tenant = resolved.tenant?.tenant ?? "";
  if (trustClassHeader && headerClass !== undefined && policy.classes.some((c) => c.name === headerClass)) {
    return { requestClass: headerClass, tenant };
  }
  return { requestClass: resolved.objectives.name, tenant };
}
