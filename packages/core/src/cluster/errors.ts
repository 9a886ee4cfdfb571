// Errors of the cluster aggregation core. The aggregator process turns input errors into a
// dropped-and-counted snapshot, and option errors into a start-up failure (exit 2).

/** Aggregation options are invalid (thrown at start-up). */
export class ClusterAggregateConfigError extends Error {
  override readonly name = "ClusterAggregateConfigError";
}
