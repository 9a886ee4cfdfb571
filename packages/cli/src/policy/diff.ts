// Field-level diff of two policy documents (proto3 JSON): one line per leaf that was added,
// removed or changed, addressed by the same paths validation errors use (`classes[1].name`).

export type DiffChange =
  | { readonly op: "added"; readonly path: string; readonly after: unknown }
  | { readonly op: "removed"; readonly path: string; readonly before: unknown }
  | { readonly op: "changed"; readonly path: string; readonly before: unknown; readonly after: unknown };

type Leaves = Map<string, unknown>;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Flattens to path → leaf; an empty object or list is itself a leaf so it is not lost. */
function flatten(value: unknown, path: string, out: Leaves): Leaves {
  if (Array.isArray(value) && value.length > 0) {
    for (const [i, item] of value.entries()) flatten(item, `${path}[${i}]`, out);
  } else if (isObject(value) && Object.keys(value).length > 0) {
    for (const [k, v] of Object.entries(value)) flatten(v, path === "" ? k : `${path}.${k}`, out);
  } else if (path !== "") {
    out.set(path, value);
  }
  return out;
}

/** Changes from `before` to `after`, in path order. */
export function diffPolicies(before: unknown, after: unknown): DiffChange[] {
  const a = flatten(before, "", new Map());
  const b = flatten(after, "", new Map());
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort(comparePaths);
  const out: DiffChange[] = [];
  for (const path of paths) {
    const inA = a.has(path);
    const inB = b.has(path);
    if (inA && !inB) out.push({ op: "removed", path, before: a.get(path) });
    else if (!inA && inB) out.push({ op: "added", path, after: b.get(path) });
    else if (JSON.stringify(a.get(path)) !== JSON.stringify(b.get(path))) {
      out.push({ op: "changed", path, before: a.get(path), after: b.get(path) });
    }
  }
  return out;
}

/** Orders `classes[2]` before `classes[10]`, otherwise lexically. */
function comparePaths(x: string, y: string): number {
  const pad = (p: string) => p.replace(/\[(\d+)\]/g, (_, n: string) => `[${n.padStart(6, "0")}]`);
  const px = pad(x);
  const py = pad(y);
  return px < py ? -1 : px > py ? 1 : 0;
}

/** `~ ingress.kvOvercommit: 1.25 -> 1.5`, `+ description: "x"`, `- tenants[0].tenant: "a"` */
export function renderDiff(changes: readonly DiffChange[]): string[] {
  const show = (v: unknown) => JSON.stringify(v);
  return changes.map((c) => {
    if (c.op === "added") return `+ ${c.path}: ${show(c.after)}`;
    if (c.op === "removed") return `- ${c.path}: ${show(c.before)}`;
    return `~ ${c.path}: ${show(c.before)} -> ${show(c.after)}`;
  });
}
