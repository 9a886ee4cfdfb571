// Reading of the eval tables, written after the run it cites (kept beside the script so a regenerated section
// keeps it; re-read it against new tables whenever the simulator or core changes).
export const EVAL_NOTES = `### Reading the tables (2026-11-25 14:34–15:17 UTC run; runs are deterministic)

**How this run was made.** The machine was shared (load average 18–37), so the three traces ran as separate
worker processes: mooncake_synthetic and azure_code_2023 in full, mooncake_conversation as a 15-minute slice
with 8 sampled rejections (\`--quick\`; the full trace did not fit the sitting). From the CPU seconds the
workers used (Azure 88 s in full; the conversation slice 143 s), a full \`npm run bench:report\` needs about
10 min of wall time on a quiet 2-core machine (the conversation trace is the long lane); the lead's quiet
re-run replaces the slice.

**Targets at 2× capacity.** The full system meets all three on every trace: goodput 200 % of the
max-sustainable goodput (the literal target, ≥ 90 %; goodput / offered is 98.4 % / 99.7 % / 99.3 %), SLO
attainment of admitted requests 99.93 % (conversation slice) / 99.97 % (synthetic) / 99.50 % (Azure), and
the highest goodput of every policy: 16.69 vs 15.61 req/s for the best baseline (\`none\`) on the
conversation slice, 10.66 vs 10.37 (\`none\`) on synthetic, 19.32 vs 18.89 (\`dynamo-busy\`) on Azure. The
margins on synthetic and Azure are small (+3 %, +2 %) because at 2× these traces leave little to save: \`none\`
already serves 97 % of offered requests within objectives; the gap opens at 4× (Azure 37.17 vs 35.11, synthetic
21.10 vs 15.36, conversation slice 29.24 vs 13.17).

**The baselines, tuned.** Swept at 2× for goodput, \`static\` and \`dynamo-busy\` both end at their loosest
setting on every trace (static limit 146 / 32 / 454, prefill threshold 3 × max_num_batched_tokens): any
limit tight enough to act rejects more good requests than it saves, so the tuned baselines are close to
\`none\` at 2× and pay for it at 4× (\`dynamo-busy\` on the conversation slice: 39 % attainment). The
KV-block threshold never binds here (1 Mi tokens of KV per engine never fills).

**False rejections.** Samples are small (rejections are rare at 2×: 0.2–1.9 % of requests for the sluice
policies), so the intervals are wide. \`sluice-l1l2l3\`: 0/8 strict on the conversation slice (and none of
the 8 would have met its own objectives), 2/13 on synthetic, 3/12 on Azure — there all 12 would have met
their objectives, but only 6 at no net cost to others: L3 rejects at the margin, where admitting one more
request is roughly zero-sum. \`dynamo-ema\` on Azure: 11/11 false, as expected of a limiter that reacts to
past latencies. \`static\` and \`dynamo-busy\` reject requests that would have met their objectives (8/8,
21/21, 30/30 "forced met") but almost never without cost to others (0–1 strict), i.e. they shed the right
amount at the wrong requests. "Forced met" alone, the naive counterfactual, would call most of them false.

**Retry-After is the weak spot.** Retried once after their Retry-After, only 4–20 % of the sluice policies'
L2 \`hold_timeout\` rejections get in at 2× on the Mooncake traces (median Retry-After 1.3–2.9 s), 3 % / 15 %
even at 1× (where the full system still rejects 1.2 % / 0.3 % by hold timeout), and 22–50 % at 4×, where
the median Retry-After of several policies is the 100 ms floor (\`rejection.retry_after_min_ms\`). Only
L3's \`predicted_ttft\` rejections on Azure at 2× were all admitted on retry (10/10). \`sluice-l1\` at 4×
on synthetic gets 70 % of its retries in, but only 1.4 % of them meet their objectives. Likely causes
(not verified request by request): the router's \`hold_timeout\` Retry-After is the best worker's drain at
expiry, which is 0 — then the floor — when the request could be routed right then, and the requests that
time out are disproportionately long prompts, for which every engine is still "busy" when they come back.
Either way the fix belongs in core's Retry-After (e.g. the hold queue's own drain time, or the time until
the request's own predicted TTFT fits), not in the simulator; under sustained overload no Retry-After can
make every retry succeed.

**Wasted prefill.** The full system wastes 0.3–0.5 % of the prefill it computes at 2× (\`none\`: 3–23 %)
and 1.6–3.2 % at 4× (\`none\`: 11–103 %; above 100 % because the figure counts whole prompts including cache
hits, an upper bound). No rejection in the simulator wastes prefill (all levels decide before compute) and
no run preempted.

**Per class (20 / 60 / 20 %, at 2×).** Sheddable traffic is rejected most on Azure (\`sluice-l1l2l3\`: 2.7 %,
others 0 %), but not on the Mooncake traces, where the full system rejects 1.8–4.3 % of critical requests
and no sheddable ones. That is the objectives at work, not a priority inversion: critical's 1 s TTFT cannot
be met for long prompts (≥ 48 k tokens even on an idle engine; \`none\` meets it for only 26 % of critical
requests on the conversation slice), and the admitted critical requests meet it 98.7–100 % of the time,
while sheddable's 10 s TTFT is met for every admitted sheddable request. Load-based shedding by class
(the classes' limit shares at L1) does not engage at 2× because L2/L3 keep in-flight load below those
limits; a 4× class-mix run would show it and is not in this report.`;
