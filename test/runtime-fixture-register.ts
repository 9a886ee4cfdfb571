// Child process for test/runtime-etcd-session.test.ts: registers under a session lease, says so on
// stdout, and then waits to be SIGKILLed (so nothing can revoke the lease on the way out).
import { openEtcdSession } from "@sluice/runtime";

const [endpoints, prefix, id, ttl] = process.argv.slice(2);
if (endpoints === undefined || prefix === undefined || id === undefined || ttl === undefined) {
  console.error("usage: runtime-fixture-register.ts <endpoints> <prefix> <id> <leaseTtlSec>");
  process.exit(2);
}
const session = await openEtcdSession({ endpoints: endpoints.split(","), prefix, leaseTtlSec: Number(ttl) });
const key = await session.register("fixture", id, { addresses: { none: "-" }, version: "test" });
process.stdout.write(`registered ${key}\n`);
setInterval(() => undefined, 60_000);
