// Analysis written after reading the tables that bench/sim-levels.ts produced (kept beside the script so a
// regenerated section keeps it; re-read it against new tables whenever the simulator or core changes).
export const SIM_LEVELS_NOTES = `### Reading the tables (2026-11-25 13:24 UTC run, runs are deterministic)

**Against the targets.** At 2× capacity \`sluice-l1l2l3\` has the highest goodput of every policy on every
trace (conversation 20.68 req/s vs best baseline \`dynamo-busy\` 17.37; synthetic 10.66 vs 10.37; Azure 19.28
vs \`dynamo-ema\` 18.88) and attains ≥ 99 % of its admitted requests on all three (99.69 % / 99.97 % /
99.47 %). At 4× it still leads on goodput everywhere (32.71 / 21.10 / 37.14 req/s) with attainment 97.53 % /
99.34 % / 96.63 % — the ≥ 99 % target is met at 4× only on mooncake_synthetic.
"goodput / max" is above 100 % everywhere because the light-load capacity is the largest load at which
\`none\` stays within 1 % of its light-load attainment, not the largest goodput the cluster sustains; read the
"≥ 90 % of max-sustainable at 2×" target against "goodput / offered": 98.6 % (conversation), 99.7 %
(synthetic), 99.1 % (Azure).

**What changed since the first run of this section.** The L3 ITL guard
(\`packages/core/src/engine-scheduler/engine-decision.ts\`) now prices the steps that will carry a newcomer's
uncached prompt (⌈uncached / max_num_batched_tokens⌉ chunk steps, each ≈ 170 ms at 8192 tokens with the
Dynamo fit) and spreads them over each running request's remaining output tokens, and L3's prefill seed is
calibrated at the engine's chunk size (≈ 53.7k tok/s at 8192, not the 65.8k of 1000-token chunks). The
simulator passes each request's output length as its \`max_tokens\` — what the replay client sends too
(\`max_tokens\` = \`min_tokens\` = the trace's output length); in real serving \`max_tokens\` is only an upper
bound, so a response that stops early at EOS is protected less than the guard assumes. Before the change the
full system attained 98.93 % / 99.92 % / 97.81 % at 2× and 87.1 % / 96.8 % / 92.2 % at 4×.

**What still misses.** The remaining misses are mostly mean-ITL misses of very short responses (2–10 tokens),
for which a single 170 ms prefill step already breaks a 100 ms mean; and at 4× on conversation, L3 rejects
16 % on predicted TTFT while L2's hold queue lets through work that later waits. The sidecar publishes the
model's marginal prefill rate (1/slope) as \`prefillTokensPerS\`, which router and aggregator use as the
effective rate (optimistic when decode interleaves) — left as found.

**Level by level.** \`sluice-l1\` alone barely acts (conversation 4×: attainment 49 %): kv_overcommit 1.25
admits 25 % more KV than exists by design, and L1's cluster-predicted TTFT (pending prefill ÷ rate on the
least-loaded engine) does not see requests waiting for KV blocks. L2 is what recovers goodput: prefix-aware
placement raises the prefix-cache hit rate from 8.3 % to 23.4 % (conversation, 2×) and from 12.7 % to
49.9 % (synthetic, 2×) over least-loaded routing (Azure prompts are unique: 0 %), and the hold queue turns
busy moments into short waits. L3 is what keeps the admitted requests on time under heavy overload
(\`sluice-l3\` alone: 96.9 % / 99.6 % / 96.3 % at 4×). \`dynamo-busy\` at its starting thresholds (0.85,
1.5 × max_num_batched_tokens) reacts to load that is already queued (conversation 4×: attainment 38.5 %);
\`dynamo-ema\` reacts to TTFTs that already happened and then sheds most traffic (conversation 4×: 71 %
rejected, attainment 44 %). Neither baseline was swept here (\`--busy-thresholds\`, \`--ema-tau-ms\`,
\`--ema-thresholds\` exist for that).

**Not simulated here:** several ingress instances with sync lag (frontend-sync), several router replicas;
per-class mixes are in the eval section (\`npm run bench:report\`).`;
