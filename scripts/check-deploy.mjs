#!/usr/bin/env node
// Validates the deployment artifacts under deploy/ with what exists offline (run by `npm test`):
//   1. every YAML file parses, the Grafana dashboard is well-formed JSON;
//   2. the kustomize base and overlays are rendered by this script (the kustomize subset the manifests
//      use; anything else fails) and, when kubectl or kustomize is installed, by kustomize too — the two
//      renderings must agree; every rendered object is validated against the Kubernetes OpenAPI schemas
//      (npm package `kubernetes-models`) and against Sluice's own rules: every `sluice <command>` flag,
//      config-file key and SLUICE_* variable exists in that command's --help; probes hit /healthz and
//      /readyz on the admin port; resources, non-root securityContext, grace period above
//      --shutdown-timeout; Services and PodDisruptionBudgets select a workload; ConfigMaps exist;
//   3. `promtool check rules`, `promtool test rules` and `promtool check config` (Debian package
//      `prometheus`);
//   4. every metric name in the alert rules, their tests and the dashboard is defined in packages/*/src.
// A missing promtool is reported as SKIP with the reason (never a silent pass); with --require-tools
// (npm test) a SKIP fails the run. Exit code 0 = no failure, 1 = failures, 2 = usage.
//   node scripts/check-deploy.mjs [--require-tools]
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { parseAllDocuments, parse as parseYaml, stringify as stringifyYaml } from "yaml";

const require = createRequire(import.meta.url);

const root = new URL("..", import.meta.url).pathname;
const args = process.argv.slice(2);
const unknownArgs = args.filter((a) => a !== "--require-tools");
if (unknownArgs.length > 0) {
  process.stderr.write(
    `check-deploy: unknown argument(s) ${unknownArgs.join(" ")}; usage: [--require-tools]\n`,
  );
  process.exit(2);
}
const requireTools = args.includes("--require-tools");

const results = { ok: 0, fail: 0, skip: 0 };
const ok = (what) => {
  results.ok++;
  process.stdout.write(`ok    ${what}\n`);
};
const fail = (what, why) => {
  results.fail++;
  process.stdout.write(`FAIL  ${what}: ${why}\n`);
};
const skip = (what, why) => {
  results.skip++;
  process.stdout.write(`SKIP  ${what}: ${why}\n`);
};
const rel = (p) => relative(root, p);

function walk(dir, keep, out = []) {
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === "dist" || name.startsWith(".")) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, keep, out);
    else if (keep(p)) out.push(p);
  }
  return out.sort();
}

function which(tool) {
  const r = spawnSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function run(cmd, argv, options = {}) {
  const r = spawnSync(cmd, argv, { encoding: "utf8", cwd: root, maxBuffer: 64 * 1024 * 1024, ...options });
  return { status: r.status ?? 1, out: `${r.stdout ?? ""}${r.stderr ?? ""}`, stdout: r.stdout ?? "" };
}

// ── 1. YAML and JSON parse ─────────────────────────────────────────────────────────────────────────
const deployDir = join(root, "deploy");
const yamlFiles = [...walk(deployDir, (p) => /\.ya?ml$/.test(p)), join(root, "docker-compose.yml")];
for (const file of yamlFiles) {
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  const errors = docs.flatMap((d) => d.errors.map((e) => e.message));
  if (errors.length > 0) fail(`YAML ${rel(file)}`, errors.join("; "));
  else ok(`YAML ${rel(file)} parses (${docs.length} document${docs.length === 1 ? "" : "s"})`);
}
const dashboardFile = join(deployDir, "grafana", "sluice-dashboard.json");
let dashboard;
try {
  dashboard = JSON.parse(readFileSync(dashboardFile, "utf8"));
  checkDashboard(dashboard);
} catch (err) {
  fail(`JSON ${rel(dashboardFile)}`, err instanceof Error ? err.message : String(err));
}

function checkDashboard(d) {
  const problems = [];
  if (typeof d.uid !== "string" || d.uid === "") problems.push("no uid");
  if (typeof d.title !== "string" || d.title === "") problems.push("no title");
  if (!Array.isArray(d.panels) || d.panels.length === 0) problems.push("no panels");
  const ids = new Set();
  for (const panel of d.panels ?? []) {
    if (ids.has(panel.id)) problems.push(`duplicate panel id ${panel.id}`);
    ids.add(panel.id);
    if (panel.type === "row") continue;
    if (panel.gridPos === undefined) problems.push(`panel "${panel.title}" has no gridPos`);
    if (!Array.isArray(panel.targets) || panel.targets.length === 0)
      problems.push(`panel "${panel.title}" has no targets`);
    for (const t of panel.targets ?? []) {
      if (typeof t.expr !== "string" || t.expr === "")
        problems.push(`panel "${panel.title}" has an empty query`);
    }
  }
  if (problems.length > 0) fail(`dashboard ${rel(dashboardFile)}`, problems.join("; "));
  else ok(`dashboard ${rel(dashboardFile)}: ${ids.size} panels, unique ids, every panel has queries`);
}

// ── 2. Kubernetes manifests ────────────────────────────────────────────────────────────────────────
const k8sDir = join(deployDir, "k8s");
const kustomizations = walk(k8sDir, (p) => p.endsWith("kustomization.yaml")).map(dirname);
const kubectl = which("kubectl");
const kustomizeBin = which("kustomize");
const helpCache = new Map();

for (const dir of kustomizations) {
  // Rendered offline by this script (the subset of kustomize Sluice's manifests use), so a machine
  // without kubectl — CI — still validates everything; with kubectl the two renderings must agree.
  let rendered;
  try {
    rendered = renderKustomization(dir);
    ok(`render ${rel(dir)} offline (${rendered.length} resources)`);
  } catch (err) {
    fail(`render ${rel(dir)} offline`, err instanceof Error ? err.message : String(err));
    continue;
  }
  if (kubectl !== undefined || kustomizeBin !== undefined) {
    const r = kubectl !== undefined ? run(kubectl, ["kustomize", dir]) : run(kustomizeBin, ["build", dir]);
    if (r.status !== 0) fail(`kustomize build ${rel(dir)}`, r.out.trim());
    else {
      const official = parseAllDocuments(r.stdout)
        .map((d) => d.toJS())
        .filter(Boolean);
      const diff = compareRenderings(official, rendered);
      if (diff === undefined)
        ok(
          `kustomize build ${rel(dir)} (${kubectl !== undefined ? "kubectl kustomize" : "kustomize"}) = offline rendering`,
        );
      else fail(`kustomize build ${rel(dir)} vs offline rendering`, diff);
    }
  }
  validateSchemas(rel(dir), rendered);
  checkManifests(rel(dir), rendered);
}

/**
 * The kustomize features Sluice's manifests use — resources (files and directories), namespace,
 * labels (pairs / includeSelectors / includeTemplates), configMapGenerator (files, envs, literals,
 * behavior merge), images, replicas — applied in kustomize's order (bases first). Any other field
 * fails loudly instead of being ignored. Generated ConfigMaps keep their plain name (kustomize adds
 * a content hash and rewrites references; compareRenderings strips it).
 */
function renderKustomization(dir) {
  const k = parseYaml(readFileSync(join(dir, "kustomization.yaml"), "utf8")) ?? {};
  const supported = new Set([
    "apiVersion",
    "kind",
    "namespace",
    "labels",
    "resources",
    "configMapGenerator",
    "images",
    "replicas",
  ]);
  for (const key of Object.keys(k)) {
    if (!supported.has(key))
      throw new Error(`${rel(dir)}/kustomization.yaml: field "${key}" is not supported offline`);
  }
  const out = [];
  for (const entry of k.resources ?? []) {
    const p = join(dir, entry);
    if (statSync(p).isDirectory()) out.push(...renderKustomization(p));
    else
      out.push(
        ...parseAllDocuments(readFileSync(p, "utf8"))
          .map((d) => d.toJS())
          .filter(Boolean),
      );
  }
  for (const gen of k.configMapGenerator ?? []) {
    const data = {};
    for (const f of gen.files ?? []) data[f.split("/").at(-1)] = readFileSync(join(dir, f), "utf8");
    for (const f of gen.envs ?? []) {
      for (const line of readFileSync(join(dir, f), "utf8").split("\n")) {
        const t = line.trim();
        if (t === "" || t.startsWith("#")) continue;
        const eq = t.indexOf("=");
        if (eq < 0) throw new Error(`${rel(join(dir, f))}: "${t}" is not KEY=value`);
        data[t.slice(0, eq)] = t.slice(eq + 1);
      }
    }
    for (const lit of gen.literals ?? []) {
      const eq = lit.indexOf("=");
      data[lit.slice(0, eq)] = lit.slice(eq + 1);
    }
    const existing = out.find((r) => r.kind === "ConfigMap" && r.metadata.name === gen.name);
    if (gen.behavior === "merge" || gen.behavior === "replace") {
      if (existing === undefined)
        throw new Error(`configMapGenerator ${gen.name}: nothing to ${gen.behavior}`);
      existing.data = gen.behavior === "merge" ? { ...existing.data, ...data } : data;
    } else {
      if (existing !== undefined) throw new Error(`configMapGenerator ${gen.name}: generated twice`);
      out.push({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: gen.name }, data });
    }
  }
  for (const r of out) {
    if (k.namespace !== undefined) r.metadata.namespace = k.namespace;
    for (const l of k.labels ?? []) {
      r.metadata.labels = { ...r.metadata.labels, ...l.pairs };
      const tpl = r.spec?.template;
      if (l.includeTemplates && tpl !== undefined) {
        tpl.metadata = tpl.metadata ?? {};
        tpl.metadata.labels = { ...tpl.metadata.labels, ...l.pairs };
      }
      if (l.includeSelectors) throw new Error("labels.includeSelectors is not supported offline");
    }
    for (const c of [
      ...(r.spec?.template?.spec?.containers ?? []),
      ...(r.spec?.template?.spec?.initContainers ?? []),
    ]) {
      for (const img of k.images ?? []) {
        const m = /^([^:@]+)(.*)$/.exec(c.image ?? "");
        if (m === null || m[1] !== img.name) continue;
        c.image = `${img.newName ?? img.name}${img.newTag !== undefined ? `:${img.newTag}` : m[2]}`;
      }
    }
    const rep = (k.replicas ?? []).find((x) => x.name === r.metadata.name);
    if (rep !== undefined && ["Deployment", "StatefulSet", "ReplicaSet"].includes(r.kind))
      r.spec.replicas = rep.count;
  }
  return out;
}

/** undefined when kustomize's output equals the offline rendering up to ConfigMap hash suffixes. */
function compareRenderings(official, offline) {
  const key = (r) => `${r.kind}/${r.metadata?.namespace ?? ""}/${r.metadata?.name}`;
  const hashes = new Map();
  for (const r of official) {
    if (r.kind !== "ConfigMap") continue;
    const plain = r.metadata.name.replace(/-[a-z0-9]{10}$/, "");
    hashes.set(r.metadata.name, plain);
  }
  const strip = (value) => {
    if (typeof value === "string") return hashes.get(value) ?? value;
    if (Array.isArray(value)) return value.map(strip);
    if (value !== null && typeof value === "object")
      return Object.fromEntries(Object.entries(value).map(([k2, v]) => [k2, strip(v)]));
    return value;
  };
  const a = new Map(official.map((r) => [key(strip(r)), strip(r)]));
  const b = new Map(offline.map((r) => [key(r), r]));
  for (const k2 of new Set([...a.keys(), ...b.keys()])) {
    if (!a.has(k2)) return `${k2} only in the offline rendering`;
    if (!b.has(k2)) return `${k2} only in kustomize's output`;
    const x = canonical(a.get(k2));
    const y = canonical(b.get(k2));
    if (x !== y) return `${k2} differs:\n  kustomize: ${x.slice(0, 600)}\n  offline:   ${y.slice(0, 600)}`;
  }
  return undefined;
}

function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object")
    return `{${Object.keys(value)
      .sort()
      .map((k2) => `${JSON.stringify(k2)}:${canonical(value[k2])}`)
      .join(",")}}`;
  return JSON.stringify(value);
}

/**
 * Every rendered object against the Kubernetes OpenAPI schemas (package `kubernetes-models`: types,
 * required fields, enums — like kubeconform without --strict, so unknown fields are not flagged).
 */
function validateSchemas(where, resources) {
  for (const r of resources) {
    const [group, version] = r.apiVersion.includes("/") ? r.apiVersion.split("/") : ["", r.apiVersion];
    const modulePath = `kubernetes-models/${group === "" ? "" : `${group}/`}${version}/${r.kind}`;
    let Model;
    try {
      Model = require(modulePath)[r.kind];
    } catch {
      fail(
        `schema ${where} ${r.kind}/${r.metadata?.name}`,
        `no Kubernetes schema for ${r.apiVersion} ${r.kind}`,
      );
      continue;
    }
    try {
      new Model(r).validate();
      ok(`schema ${where} ${r.kind}/${r.metadata.name} (${r.apiVersion})`);
    } catch (err) {
      fail(`schema ${where} ${r.kind}/${r.metadata?.name}`, err instanceof Error ? err.message : String(err));
    }
  }
}

function checkManifests(where, resources) {
  const problems = [];
  const byKind = (kind) => resources.filter((r) => r.kind === kind);
  const configMaps = new Map(byKind("ConfigMap").map((c) => [c.metadata.name, c]));
  const workloads = resources.filter((r) => ["Deployment", "StatefulSet", "DaemonSet"].includes(r.kind));
  const name = (r) => `${r.kind}/${r.metadata?.name}`;

  for (const r of resources) {
    if (!r.apiVersion || !r.kind || !r.metadata?.name)
      problems.push(`a resource lacks apiVersion/kind/metadata.name`);
  }
  for (const w of workloads) {
    const spec = w.spec ?? {};
    const pod = spec.template?.spec ?? {};
    const tplLabels = spec.template?.metadata?.labels ?? {};
    if (!matches(spec.selector?.matchLabels, tplLabels))
      problems.push(`${name(w)}: selector does not match its pod labels`);
    if (pod.securityContext?.runAsNonRoot !== true)
      problems.push(`${name(w)}: pod securityContext.runAsNonRoot is not true`);
    for (const v of pod.volumes ?? []) {
      if (v.configMap && !configMaps.has(v.configMap.name))
        problems.push(
          `${name(w)}: volume ${v.name} uses ConfigMap ${v.configMap.name}, which is not rendered`,
        );
    }
    const annotations = spec.template?.metadata?.annotations ?? {};
    for (const c of pod.containers ?? []) {
      const where2 = `${name(w)} container ${c.name}`;
      for (const kind of ["cpu", "memory"]) {
        if (c.resources?.requests?.[kind] === undefined) problems.push(`${where2}: no ${kind} request`);
        if (kind === "memory" && c.resources?.limits?.[kind] === undefined)
          problems.push(`${where2}: no memory limit`);
      }
      if (c.securityContext?.allowPrivilegeEscalation !== false)
        problems.push(`${where2}: allowPrivilegeEscalation is not false`);
      for (const e of c.envFrom ?? []) {
        if (e.configMapRef && !configMaps.has(e.configMapRef.name))
          problems.push(`${where2}: envFrom ConfigMap ${e.configMapRef.name} is not rendered`);
      }
      if (c.image !== "sluice" && !/\/sluice(:|@|$)|^sluice(:|@)/.test(c.image ?? "")) continue;
      problems.push(...checkSluiceContainer(where2, c, pod, annotations, configMaps));
    }
  }
  for (const s of byKind("Service")) {
    const target = workloads.find((w) => matches(s.spec?.selector, w.spec?.template?.metadata?.labels ?? {}));
    if (target === undefined) {
      problems.push(`${name(s)}: its selector matches no workload`);
      continue;
    }
    const ports = (target.spec.template.spec.containers ?? []).flatMap((c) => c.ports ?? []);
    for (const p of s.spec.ports ?? []) {
      if (typeof p.targetPort === "string" && !ports.some((cp) => cp.name === p.targetPort))
        problems.push(`${name(s)}: targetPort ${p.targetPort} is no container port of ${name(target)}`);
    }
  }
  for (const pdb of byKind("PodDisruptionBudget")) {
    const target = workloads.find((w) =>
      matches(pdb.spec?.selector?.matchLabels, w.spec?.template?.metadata?.labels ?? {}),
    );
    if (target === undefined) problems.push(`${name(pdb)}: its selector matches no workload`);
    else if ((target.spec.replicas ?? 1) < 2 && pdb.spec.maxUnavailable === undefined)
      problems.push(
        `${name(pdb)}: minAvailable with ${target.spec.replicas ?? 1} replica blocks every drain`,
      );
  }
  for (const w of workloads) {
    const labels = w.spec?.template?.metadata?.labels ?? {};
    if (!byKind("PodDisruptionBudget").some((pdb) => matches(pdb.spec?.selector?.matchLabels, labels)))
      problems.push(`${name(w)}: no PodDisruptionBudget selects it`);
  }
  if (problems.length > 0) for (const p of problems) fail(`manifests ${where}`, p);
  else
    ok(
      `manifests ${where}: ${resources.length} resources, ${workloads.length} workloads follow the rules (flags, probes, resources, securityContext, grace period, selectors)`,
    );
}

function matches(selector, labels) {
  if (selector === undefined || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** `sluice <command> --help`, from the package's launch function run straight from the sources. */
function commandHelp(command) {
  if (helpCache.has(command)) return helpCache.get(command);
  const launchers = {
    ingress: ["@sluice/ingress", "launchIngress"],
    router: ["@sluice/router", "launchRouter"],
    "engine-scheduler": ["@sluice/engine-scheduler", "launchEngineScheduler"],
    aggregator: ["@sluice/aggregator", "launchAggregator"],
    "mock-engine": ["@sluice/mock-engine", "launchMockEngine"],
  };
  const launcher = launchers[command];
  let help;
  if (launcher === undefined) help = { error: `unknown sluice command "${command}"` };
  else {
    const [pkg, fn] = launcher;
    const script = `const m = await import(${JSON.stringify(pkg)}); let text = ""; const code = await m.${fn}({ argv: ["--help"], env: {}, stdout: { write: (t) => { text += t; } } }); process.stdout.write(text); process.exitCode = code;`;
    const r = run(process.execPath, [
      "--conditions=sluice-src",
      "--import",
      "tsx",
      "--input-type=module",
      "-e",
      script,
    ]);
    help =
      r.status === 0 && r.stdout.includes("--")
        ? {
            flags: new Set([...r.stdout.matchAll(/--([a-z][a-z0-9-]*)/g)].map((m) => m[1])),
            env: new Set([...r.stdout.matchAll(/\b(SLUICE_[A-Z0-9_]+)/g)].map((m) => m[1])),
          }
        : { error: `sluice ${command} --help failed (exit ${r.status}): ${r.out.trim().slice(0, 400)}` };
  }
  helpCache.set(command, help);
  return help;
}

function durationMs(text) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text ?? "");
  if (m === null) return undefined;
  return Number(m[1]) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[m[2]];
}

function checkSluiceContainer(where, c, pod, annotations, configMaps) {
  const problems = [];
  const argv = [...(c.command ?? []), ...(c.args ?? [])];
  const command = argv[0];
  const help = commandHelp(command);
  if (help.error) return [`${where}: ${help.error}`];
  const settings = new Map();
  for (const arg of argv.slice(1)) {
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(arg);
    if (m === null) {
      problems.push(`${where}: argument "${arg}" is not --flag=value (the manifests always use that form)`);
      continue;
    }
    if (!help.flags.has(m[1])) problems.push(`${where}: sluice ${command} has no flag --${m[1]}`);
    settings.set(m[1], m[2]);
    for (const ref of (m[2] ?? "").matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) {
      if (!(c.env ?? []).some((e) => e.name === ref[1]))
        problems.push(`${where}: --${m[1]} uses $(${ref[1]}), which the container does not define`);
    }
  }
  // Config files given with --config: keys must be settings of this command.
  const configPath = settings.get("config");
  if (configPath !== undefined) {
    const mount = (c.volumeMounts ?? []).find((vm) => configPath.startsWith(`${vm.mountPath}/`));
    const volume = mount && (pod.volumes ?? []).find((v) => v.name === mount.name);
    const cm = volume?.configMap && configMaps.get(volume.configMap.name);
    const file = cm?.data?.[configPath.slice(mount.mountPath.length + 1)];
    if (file === undefined) problems.push(`${where}: --config=${configPath} is not in a mounted ConfigMap`);
    else {
      const doc = parseYaml(file) ?? {};
      for (const key of Object.keys(doc)) {
        const kebab = key.replace(/[A-Z]/g, (ch) => `-${ch.toLowerCase()}`);
        if (!help.flags.has(kebab))
          problems.push(`${where}: ${configPath} sets "${key}", no setting of sluice ${command}`);
      }
      const shutdown = doc["shutdown-timeout"] ?? doc.shutdownTimeout;
      if (shutdown !== undefined && !settings.has("shutdown-timeout"))
        settings.set("shutdown-timeout", shutdown);
    }
  }
  const envNames = [
    ...(c.env ?? []).map((e) => e.name),
    ...(c.envFrom ?? []).flatMap((e) => Object.keys(configMaps.get(e.configMapRef?.name)?.data ?? {})),
  ];
  for (const env of envNames) {
    if (env.startsWith("SLUICE_") && !help.env.has(env))
      problems.push(`${where}: sluice ${command} reads no ${env}`);
  }
  // Probes: liveness /healthz and readiness /readyz on the admin port.
  const adminFromEnv = (c.envFrom ?? [])
    .map((e) => configMaps.get(e.configMapRef?.name)?.data?.SLUICE_ADMIN_PORT)
    .find((v) => v !== undefined);
  const adminPort = Number(settings.get("admin-port") ?? adminFromEnv);
  const named = (port) =>
    typeof port === "string" ? c.ports?.find((p) => p.name === port)?.containerPort : port;
  if (!Number.isInteger(adminPort) || adminPort === 0) problems.push(`${where}: no fixed admin port`);
  const probe = (kind, path) => {
    const p = c[kind]?.httpGet;
    if (p === undefined) problems.push(`${where}: no ${kind} httpGet`);
    else if (p.path !== path || named(p.port) !== adminPort)
      problems.push(
        `${where}: ${kind} is ${p.path} on port ${p.port}, expected ${path} on the admin port ${adminPort}`,
      );
  };
  probe("livenessProbe", "/healthz");
  probe("readinessProbe", "/readyz");
  if (
    annotations["prometheus.io/scrape"] === "true" &&
    Number(annotations["prometheus.io/port"]) !== adminPort
  )
    problems.push(
      `${where}: prometheus.io/port ${annotations["prometheus.io/port"]} is not the admin port ${adminPort}`,
    );
  // The kubelet must not SIGKILL a drain: grace > preStop sleep + --shutdown-timeout (default 10 s).
  const shutdownMs = durationMs(settings.get("shutdown-timeout") ?? "10s");
  const preStop = c.lifecycle?.preStop?.exec?.command ?? [];
  const preStopMs = preStop[0] === "sleep" ? Number(preStop[1]) * 1000 : 0;
  const graceMs = (pod.terminationGracePeriodSeconds ?? 30) * 1000;
  if (shutdownMs === undefined) problems.push(`${where}: --shutdown-timeout is not a duration`);
  else if (graceMs <= shutdownMs + preStopMs)
    problems.push(
      `${where}: terminationGracePeriodSeconds ${graceMs / 1000} s is not above preStop ${preStopMs / 1000} s + --shutdown-timeout ${shutdownMs / 1000} s`,
    );
  if (c.securityContext?.readOnlyRootFilesystem !== true)
    problems.push(`${where}: root filesystem is writable`);
  return problems;
}

// ── 3. promtool ────────────────────────────────────────────────────────────────────────────────────
const promDir = join(deployDir, "prometheus");
const promtool = which("promtool");
if (promtool === undefined) {
  const why = "promtool is not on PATH (Debian package `prometheus`: apt-get install -y prometheus)";
  skip("promtool check rules deploy/prometheus/alerts.yml", why);
  skip("promtool test rules deploy/prometheus/alerts.test.yml", why);
  skip("promtool check config deploy/prometheus/prometheus.yml", why);
} else {
  const rules = run(promtool, ["check", "rules", join(promDir, "alerts.yml")]);
  if (rules.status === 0) ok(`promtool check rules: ${/(\d+) rules found/.exec(rules.out)?.[0] ?? "ok"}`);
  else fail("promtool check rules deploy/prometheus/alerts.yml", rules.out.trim());
  const tests = run(promtool, ["test", "rules", join(promDir, "alerts.test.yml")]);
  if (tests.status === 0) ok("promtool test rules deploy/prometheus/alerts.test.yml");
  else fail("promtool test rules deploy/prometheus/alerts.test.yml", tests.out.trim());
  checkPromConfig(promtool);
}

function checkPromConfig(tool) {
  const file = join(promDir, "prometheus.yml");
  const full = run(tool, ["check", "config", file]);
  if (full.status === 0) {
    ok("promtool check config deploy/prometheus/prometheus.yml");
    return;
  }
  // Debian builds Prometheus without the Kubernetes service discovery; check everything else there
  // and say plainly that the kubernetes_sd_configs blocks went unchecked.
  if (!/field kubernetes_sd_configs not found/.test(full.out)) {
    fail("promtool check config deploy/prometheus/prometheus.yml", full.out.trim());
    return;
  }
  const doc = parseYaml(readFileSync(file, "utf8"));
  for (const job of doc.scrape_configs ?? []) delete job.kubernetes_sd_configs;
  const dir = mkdtempSync(join(tmpdir(), "sluice-prom-"));
  try {
    writeFileSync(join(dir, "prometheus.yml"), stringifyYaml(doc));
    writeFileSync(join(dir, "alerts.yml"), readFileSync(join(promDir, "alerts.yml")));
    const stripped = run(tool, ["check", "config", join(dir, "prometheus.yml")]);
    if (stripped.status === 0)
      ok("promtool check config deploy/prometheus/prometheus.yml (without kubernetes_sd_configs)");
    else fail("promtool check config deploy/prometheus/prometheus.yml", stripped.out.trim());
    // A build limitation of an installed tool, not a missing tool: noted, not counted as a skip.
    process.stdout.write(
      "NOTE  kubernetes_sd_configs not checked: this promtool was built without Kubernetes service discovery (Debian package); upstream promtool checks them\n",
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ── 4. Metric names exist in the sources ───────────────────────────────────────────────────────────
const defined = definedMetrics();
const references = new Map();
const addRefs = (text, source) => {
  for (const m of text.matchAll(/\b(sluice_[a-z0-9_]+|vllm:[a-z0-9_:]+)/g)) {
    if (!references.has(m[1])) references.set(m[1], new Set());
    references.get(m[1]).add(source);
  }
};
addRefs(readFileSync(join(promDir, "alerts.yml"), "utf8"), "alerts.yml");
addRefs(readFileSync(join(promDir, "alerts.test.yml"), "utf8"), "alerts.test.yml");
if (dashboard !== undefined) {
  const exprs = (dashboard.panels ?? []).flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ""));
  const vars = (dashboard.templating?.list ?? []).map((v) => JSON.stringify(v.query ?? ""));
  addRefs([...exprs, ...vars].join("\n"), "sluice-dashboard.json");
}
let unknown = 0;
for (const [name, sources] of [...references].sort()) {
  const base = name.replace(/_(bucket|sum|count)$/, "");
  const ok1 = defined.get(name) !== undefined && defined.get(name) !== "histogram";
  const ok2 = base !== name && defined.get(base) === "histogram";
  if (!ok1 && !ok2) {
    unknown++;
    const hint = defined.get(name) === "histogram" ? " (a histogram: use _bucket, _sum or _count)" : "";
    fail(`metric ${name}`, `used in ${[...sources].join(", ")} but not defined in packages/*/src${hint}`);
  }
}
if (defined.size === 0) fail("metric definitions", "found none in packages/*/src — the scan is broken");
else if (unknown === 0)
  ok(
    `metric names: ${references.size} referenced in alerts and dashboard, all among ${defined.size} defined`,
  );

/** name → type, from `.counter({ name: … })`-style definitions (literals, constants, the prefix template). */
function definedMetrics() {
  const files = walk(
    join(root, "packages"),
    (p) => /\/src\/.*\.ts$/.test(p) && !/\.spec\.ts$|\/gen\//.test(p),
  );
  const sources = files.map((f) => readFileSync(f, "utf8"));
  const constants = new Map();
  for (const text of sources) {
    for (const m of text.matchAll(/\bconst ([A-Z][A-Z0-9_]*)\s*=\s*"([^"]+)"/g)) constants.set(m[1], m[2]);
  }
  const out = new Map();
  const call =
    /(counter|gauge|histogram|Counter|Gauge|Histogram)\(\{\s*name:\s*(?:"([^"]+)"|([A-Z][A-Z0-9_]*)|`\$\{([A-Z_]+)\}([a-z0-9_]+)`)/g;
  for (const text of sources) {
    for (const m of text.matchAll(call)) {
      const type = m[1].toLowerCase();
      const name = m[2] ?? (m[3] ? constants.get(m[3]) : `${constants.get(m[4]) ?? ""}${m[5]}`);
      if (name) out.set(name, type);
    }
  }
  return out;
}

// ── summary ────────────────────────────────────────────────────────────────────────────────────────
process.stdout.write(`\ncheck-deploy: ${results.ok} ok, ${results.fail} failed, ${results.skip} skipped\n`);
if (results.skip > 0 && requireTools)
  process.stdout.write("check-deploy: --require-tools: skips count as failures\n");
process.exit(results.fail > 0 || (requireTools && results.skip > 0) ? 1 : 0);
