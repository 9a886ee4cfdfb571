// Which class a request runs in. The class decides which share of every limit the request may use,
// so a client must not be able to promote itself: the `x-sluice-class` header is honoured as given
// only for tenants the policy marks `trusted`; anyone else may use it only to lower their class
// (volunteering to be shed earlier is harmless). This is more permissive than the proto comment
// ("untrusted headers are ignored") on purpose: lowering never hurts other tenants.

import type { ClassObjectives, ResolvedPolicy, TenantMapping } from "./types.js";

/** What the ingress knows about the caller before reading the body. */
export interface ClassRequest {
  /** Value of the `x-sluice-class` header, if any. */
  readonly headerClass?: string | undefined;
  /** Tenant id given by a trusted upstream (e.g. an Envoy descriptor), if any. */
  readonly tenant?: string | undefined;
  /** Lowercase hex SHA-256 of the bearer API key, if any. */
  readonly apiKeySha256?: string | undefined;
}

export type ClassSource = "header" | "tenant" | "default";

export interface ResolvedClass {
  readonly objectives: ClassObjectives;
  /** The matched tenant, or undefined for an anonymous request. */
  readonly tenant: TenantMapping | undefined;
  /** What decided the class: an honoured header, the tenant mapping, or the policy default. */
  readonly source: ClassSource;
}

export interface ClassResolver {
  resolve(request: ClassRequest): ResolvedClass;
}

/** Builds the lookup tables of one policy revision once; `resolve` is then O(1). */
export function createClassResolver(policy: ResolvedPolicy): ClassResolver {
  const classes = new Map<string, ClassObjectives>();
  for (const c of policy.classes) classes.set(c.name, c);
  const byTenant = new Map<string, TenantMapping>();
  const byKey = new Map<string, TenantMapping>();
  for (const t of policy.tenants) {
    byTenant.set(t.tenant, t);
    for (const k of t.apiKeySha256) byKey.set(k, t);
  }
  const defaultClass = classes.get(policy.defaultClass);
  if (defaultClass === undefined)
    throw new Error(`policy default class ${policy.defaultClass} is not a class`);

  return {
    resolve(request) {
      // The API key is the credential; a tenant id alone is only used when no key matched.
      const tenant =
        (request.apiKeySha256 === undefined ? undefined : byKey.get(request.apiKeySha256.toLowerCase())) ??
        (request.tenant === undefined ? undefined : byTenant.get(request.tenant));
      const base = tenant === undefined ? defaultClass : (classes.get(tenant.requestClass) ?? defaultClass);
      const baseSource: ClassSource = tenant === undefined ? "default" : "tenant";
      // Unknown header names are ignored: they fall back to the class the request would have anyway.
      const asked =
        request.headerClass === undefined ? undefined : classes.get(request.headerClass.trim().toLowerCase());
      if (asked === undefined || asked === base) return { objectives: base, tenant, source: baseSource };
      if (tenant?.trusted === true || asked.priority <= base.priority) {
        return { objectives: asked, tenant, source: "header" };
      }
      return { objectives: base, tenant, source: baseSource };
    },
  };
}

const resolvers = new WeakMap<ResolvedPolicy, ClassResolver>();

/** Convenience over `createClassResolver`, caching the resolver per policy object. */
export function resolveClass(request: ClassRequest, policy: ResolvedPolicy): ResolvedClass {
  let resolver = resolvers.get(policy);
  if (resolver === undefined) {
    resolver = createClassResolver(policy);
    resolvers.set(policy, resolver);
  }
  return resolver.resolve(request);
}
