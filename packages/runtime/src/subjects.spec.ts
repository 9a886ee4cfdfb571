import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { SubjectTokenError, subjects, workerIdOfSubject } from "./subjects.js";

describe("subjects", () => {
  it("builds the DESIGN §3 subjects under sluice.v1.{namespace}", () => {
    const s = subjects("prod");
    assert.equal(s.prefix, "sluice.v1.prod");
    assert.equal(s.all, "sluice.v1.prod.>");
    assert.equal(s.engineLoad("w-1"), "sluice.v1.prod.engine.w-1.load");
    assert.equal(s.engineKv("w-1"), "sluice.v1.prod.engine.w-1.kv");
    assert.equal(s.allEngineLoad, "sluice.v1.prod.engine.*.load");
    assert.equal(s.allEngineKv, "sluice.v1.prod.engine.*.kv");
    assert.equal(s.ingressState, "sluice.v1.prod.ingress.state");
    assert.equal(s.routerSync, "sluice.v1.prod.router.sync");
    assert.equal(s.clusterLoad, "sluice.v1.prod.cluster.load");
    assert.equal(s.events("router", "rejected"), "sluice.v1.prod.events.router.rejected");
    assert.equal(s.eventsFilter(), "sluice.v1.prod.events.*.*");
    assert.equal(s.eventsFilter({ outcome: "rejected" }), "sluice.v1.prod.events.*.rejected");
    assert.equal(subjects().prefix, "sluice.v1.default");
  });

  it("refuses tokens that would change a subject's shape", () => {
    for (const bad of ["", "a.b", "*", ">", "a b"]) {
      assert.throws(() => subjects().engineLoad(bad), SubjectTokenError, JSON.stringify(bad));
    }
    assert.throws(() => subjects("team.a"), /namespace "team.a" cannot be a NATS subject token/);
    assert.throws(() => subjects().events("router", "*"), SubjectTokenError);
  });

  it("extracts the worker id of engine subjects only", () => {
    const s = subjects();
    assert.equal(workerIdOfSubject(s.engineLoad("w7"), s), "w7");
    assert.equal(workerIdOfSubject(s.engineKv("w7"), s), "w7");
    assert.equal(workerIdOfSubject(s.routerSync, s), undefined);
    assert.equal(workerIdOfSubject("sluice.v1.default.engine.w7.other", s), undefined);
  });
});
