// Node 20 ships `Symbol.asyncDispose` only from 20.4 on, and some embedders strip it; TypeScript's
// `await using` lowering looks it up at run time, so make sure it exists before any handle is built.
// `Symbol.for("nodejs.asyncDispose")` is the symbol Node itself uses, so both agree.
const symbolCtor = Symbol as unknown as { asyncDispose?: symbol };
symbolCtor.asyncDispose ??= Symbol.for("nodejs.asyncDispose");

export {};
