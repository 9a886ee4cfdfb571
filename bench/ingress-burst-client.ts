// Burst client of bench/ingress-sync.ts, one of several processes driven over IPC so their bursts
// start at the same wall-clock instant (they share the host clock). Requests go to a slow upstream
// through the ingresses, so an admitted request stays in flight (no answer) until `release` aborts
// it; a rejected one gets its 429 at once.
//
// Messages in:  { type: "warm", urls, perUrl }            open perUrl keep-alive connections per ingress
//               { type: "burst", atEpochMs, urls, perUrl, settleMs }
//               { type: "trickle", urls, ratePerS, seconds, holdMs }   admissions and releases at a steady pace
//               { type: "count" }                         requests held now (no answer yet)
//               { type: "release" }                       abort every held request
//               { type: "exit" }
// Messages out: { type: "ready" } once, then one reply per command.

import { Agent, type ClientRequest, request } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";

export type BurstCommand =
  | { type: "warm"; urls: string[]; perUrl: number }
  | { type: "burst"; atEpochMs: number; urls: string[]; perUrl: number; settleMs: number }
  | { type: "trickle"; urls: string[]; ratePerS: number; seconds: number; holdMs: number }
  | { type: "count" }
  | { type: "release" }
  | { type: "exit" };

export interface BurstReply {
  type: "done";
  /** Requests without an answer when the burst settled: admitted and held at the upstream. */
  held: number;
  rejected: number;
  /** Answers other than 429 and errors, which make the burst invalid. */
  unexpected: number;
  firstUnexpected?: string;
  /** How late after `atEpochMs` the first and last request of this client went out, ms. */
  sendStartLateMs: number;
  sendSpreadMs: number;
}

const BODY = JSON.stringify({
  model: "bench-llm",
  messages: [{ role: "user", content: "hold" }],
  max_tokens: 16,
});
const HEADERS = {
  "content-type": "application/json",
  "content-length": Buffer.byteLength(BODY),
  "x-sluice-class": "critical",
};

const agents = new Map<string, Agent>();
function agentFor(url: string, sockets: number): Agent {
  let agent = agents.get(url);
  if (!agent || agent.maxSockets < sockets) {
    agent?.destroy();
    agent = new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
    agents.set(url, agent);
  }
  return agent;
}

const held = new Set<ClientRequest>();

interface Outcome {
  status: number | undefined;
  error?: string;
}

/** Sends one request; `onAnswer` gets its status (or error). The request stays in `held` until answered. */
function send(url: string, agent: Agent, onAnswer: (o: Outcome) => void): ClientRequest {
  const target = new URL(`${url}/v1/chat/completions`);
  const req = request(
    {
      hostname: target.hostname,
      port: target.port,
      path: target.pathname,
      method: "POST",
      agent,
      headers: HEADERS,
    },
    (res) => {
      held.delete(req);
      res.resume();
      onAnswer({ status: res.statusCode });
    },
  );
  req.on("error", (error) => {
    if (!held.has(req)) return; // our own abort
    held.delete(req);
    onAnswer({ status: undefined, error: error.message });
  });
  held.add(req);
  req.end(BODY);
  return req;
}

async function warm(urls: string[], perUrl: number): Promise<void> {
  await Promise.all(
    urls.flatMap((url) => {
      const agent = agentFor(url, perUrl);
      return Array.from(
        { length: perUrl },
        () =>
          new Promise<void>((resolve) => {
            const req = request(`${url}/v1/models`, { agent }, (res) => {
              res.resume();
              res.on("end", resolve);
            });
            req.on("error", () => resolve());
            req.end();
          }),
      );
    }),
  );
}

async function burst(c: Extract<BurstCommand, { type: "burst" }>): Promise<BurstReply> {
  const reply: BurstReply = {
    type: "done",
    held: 0,
    rejected: 0,
    unexpected: 0,
    sendStartLateMs: 0,
    sendSpreadMs: 0,
  };
  const onAnswer = (o: Outcome) => {
    if (o.status === 429) reply.rejected += 1;
    else {
      reply.unexpected += 1;
      reply.firstUnexpected ??= o.error ?? `status ${o.status}`;
    }
  };
  const agentsByUrl = c.urls.map((url) => agentFor(url, c.perUrl));
  const waitMs = c.atEpochMs - Date.now() - 5;
  if (waitMs > 0) await sleep(waitMs);
  while (Date.now() < c.atEpochMs) {
    // spin the last few ms: timers are ±1 ms
  }
  const firstMs = Date.now();
  const before = held.size;
  // Round-robin over the ingresses so each sees the burst from the first request on.
  for (let i = 0; i < c.perUrl; i++) {
    for (let u = 0; u < c.urls.length; u++) send(c.urls[u] as string, agentsByUrl[u] as Agent, onAnswer);
  }
  reply.sendStartLateMs = firstMs - c.atEpochMs;
  reply.sendSpreadMs = Date.now() - firstMs;
  await sleep(c.settleMs);
  reply.held = held.size - before;
  return reply;
}

async function trickle(c: Extract<BurstCommand, { type: "trickle" }>): Promise<BurstReply> {
  const reply: BurstReply = {
    type: "done",
    held: 0,
    rejected: 0,
    unexpected: 0,
    sendStartLateMs: 0,
    sendSpreadMs: 0,
  };
  const total = Math.round(c.ratePerS * c.seconds);
  const startMs = performance.now();
  for (let i = 0; i < total; i++) {
    const due = startMs + (i * 1000) / c.ratePerS;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const url = c.urls[i % c.urls.length] as string;
    const req = send(url, agentFor(url, 64), (o) => {
      if (o.status === 429) reply.rejected += 1;
      else if (o.status !== undefined || o.error) {
        reply.unexpected += 1;
        reply.firstUnexpected ??= o.error ?? `status ${o.status}`;
      }
    });
    // Admitted requests are held by the upstream: cancel each after holdMs (a release at the ingress).
    setTimeout(() => {
      if (held.delete(req)) {
        reply.held += 1;
        req.destroy();
      }
    }, c.holdMs);
  }
  await sleep(c.holdMs + 100);
  return reply;
}

function releaseAll(): number {
  const n = held.size;
  for (const req of held) {
    held.delete(req);
    req.destroy();
  }
  return n;
}

if (!process.send) {
  console.error("bench/ingress-burst-client.ts is driven by bench/ingress-sync.ts over IPC");
  process.exit(2);
}
process.on("message", (message: BurstCommand) => {
  const reply = (value: object) => process.send?.(value);
  switch (message.type) {
    case "warm":
      void warm(message.urls, message.perUrl).then(() => reply({ type: "done" }));
      break;
    case "burst":
      void burst(message).then(reply);
      break;
    case "trickle":
      void trickle(message).then(reply);
      break;
    case "count":
      reply({ type: "done", held: held.size });
      break;
    case "release":
      reply({ type: "done", released: releaseAll() });
      break;
    case "exit":
      releaseAll();
      for (const agent of agents.values()) agent.destroy();
      process.disconnect();
      break;
  }
});
process.send({ type: "ready" });
